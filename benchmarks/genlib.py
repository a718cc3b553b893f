"""Generate a realistic photo library from ../shared/datasets/photos-dev at benchmark (or test) time.

Each output is a distinct photo: a random crop / flip / colour change of a real photo, resized to a camera size,
with sensor-like noise (so JPEG sizes resemble a camera's) and EXIF (date taken, camera). Nothing is stored in the
repository; files are written where the caller says.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "photos-dev"
CAMERAS = [("Canon", "EOS 80D"), ("NIKON CORPORATION", "NIKON D750"), ("Apple", "iPhone 13"), ("SONY", "ILCE-7M3")]


def _sources() -> list[Path]:
    return sorted(p for p in DATASET.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))


def _make_one(args: tuple[Path, Path, int, int, int, int]) -> Path:
    src, dest, width, height, seed, quality = args
    rng = random.Random(seed)
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        im = im.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))
        im = im.resize((width, height), Image.Resampling.BILINEAR)
    if width * height >= 1_000_000:
        arr = np.asarray(im, dtype=np.int16)
        noise = np.random.default_rng(seed).normal(0, 5, size=arr.shape[:2] + (1,)).astype(np.int16)
        im = Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    make, model = CAMERAS[seed % len(CAMERAS)]
    exif[0x010F], exif[0x0110] = make, model
    taken = datetime(2015, 1, 1) + timedelta(minutes=rng.randint(0, 10 * 365 * 24 * 60))
    exif.get_ifd(0x8769)[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    dest.parent.mkdir(parents=True, exist_ok=True)
    im.save(dest, "JPEG", quality=quality, exif=exif)
    return dest


def generate(dest: Path, count: int, width: int = 4000, height: int = 3000, *, seed: int = 0, quality: int = 90,
             per_folder: int = 500, processes: int | None = None) -> list[Path]:
    """Write ``count`` JPEGs under ``dest`` (``per_folder`` per sub-folder); existing files are kept."""
    sources = _sources()
    jobs = []
    for i in range(count):
        target = dest / f"roll{i // per_folder:03d}" / f"IMG_{seed:02d}{i:06d}.jpg"
        if not target.exists():
            jobs.append((sources[(i * 7919 + seed) % len(sources)], target, width, height, seed * 1_000_003 + i,
                         quality))
    if jobs:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            for _ in pool.imap_unordered(_make_one, jobs, chunksize=8):
                pass
    return sorted(dest.rglob("*.jpg"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", default="4000x3000")
    a = parser.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    print(len(generate(a.dest, a.count, w, h)), "files in", a.dest)


def install_builtins(db: Any, settings: Any, embedding: str | None = None) -> None:
    """The built-in models; with ``embedding`` (NAME@VERSION) that version active instead of the default, so a
    benchmark first measured on one version stays on it when the default for new installs changes."""
    from photoscout.app import Photoscout
    from photoscout.registry import builtin, lifecycle
    from photoscout.rollout import activation

    if embedding and lifecycle.active(db, "embedding") is None:
        builtin.install(db, settings, refs=[embedding])
        activation.activate(db, settings, embedding, reason="the version this benchmark measures")
    Photoscout(settings, db=db).install_builtin()
