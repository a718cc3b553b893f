"""Decoding a batch of photos for the models, once per batch: from the scan's thumbnail when it is large enough
(the scan already paid for decoding the original), else from the original with JPEG draft decoding; the next
batch is decoded while the models run on this one."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from photoscout.analysis.photos import PhotoRow
from photoscout.common.imaging import load_rgb
from photoscout.config import Settings

MODEL_MIN_SIDE = 256  # what the image models need on the shorter side
BASE_MAX_SIDE = 640

# decoded images by photo id, and why the others could not be decoded
Loaded = tuple[dict[int, Image.Image], dict[int, str]]


def load_base(settings: Settings, p: PhotoRow) -> Image.Image:
    if p.thumbnail:
        thumb = settings.thumbnails_dir / p.thumbnail
        if thumb.is_file():
            with Image.open(thumb) as im:
                if min(im.size) >= MODEL_MIN_SIDE * 0.95 or (p.width and max(p.width, p.height or 0) <= max(im.size)):
                    im.load()
                    return im.convert("RGB")
    return load_rgb(settings.map_path(p.path_raw), max_side=BASE_MAX_SIDE, min_side=MODEL_MIN_SIDE)


def load_images(settings: Settings, photos: Sequence[PhotoRow]) -> Loaded:
    images: dict[int, Image.Image] = {}
    failures: dict[int, str] = {}

    def one(p: PhotoRow) -> tuple[int, Image.Image | None, str | None]:
        try:
            return p.id, load_base(settings, p), None
        except FileNotFoundError:
            return p.id, None, "vanished: the file is gone"
        except Exception as exc:  # noqa: BLE001 - any decoder error is a per-photo failure, the batch goes on
            return p.id, None, f"unreadable: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        for pid, im, err in pool.map(one, photos):
            if im is not None:
                images[pid] = im
            else:
                failures[pid] = err or "unreadable"
    return images, failures


def prefetched(settings: Settings,
               batches: Sequence[Sequence[PhotoRow]]) -> Iterator[tuple[Sequence[PhotoRow], Loaded]]:
    """Yield each batch with its decoded images, decoding the next batch while the caller runs models on this one
    (ONNX Runtime and Pillow both release the GIL)."""
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load_images, settings, batches[0])
        for i, batch in enumerate(batches):
            loaded = future.result()
            if i + 1 < len(batches):
                future = pool.submit(load_images, settings, batches[i + 1])
            yield batch, loaded
