"""Scan benchmark (issue #2).

Figures printed (medians of --runs):
  * scan throughput on camera-sized 4000x3000 JPEGs: hash + EXIF + thumbnail + insert, photos/s, end to end
    through the library (fresh database each run) and through the CLI;
  * the file-reading work alone (no database) in the same run, as a bound: the share of it the full scan reaches;
  * re-scan of an unchanged 10,000-photo library: seconds in the library, and CLI wall time (process start,
    embedded PostgreSQL start/stop included).

Usage: .venv/bin/python -m benchmarks.bench_scan [--photos 200] [--library 10000] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.genlib import generate
from photoscout.common.imaging import configure_pillow
from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.library import scanner
from photoscout.library.imagefile import read_image

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))


def _fresh_home(root: Path, name: str) -> Path:
    home = root / name
    if home.exists():
        subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
        shutil.rmtree(home)
    return home


def bench_read_only(files: list[Path], thumbs: Path, workers: int) -> float:
    shutil.rmtree(thumbs, ignore_errors=True)
    thumbs.mkdir(parents=True)
    func = functools.partial(read_image, thumbnails_dir=str(thumbs), thumb_size=256)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=configure_pillow, initargs=(178_956_970,)) as pool:
        pool.map(configure_pillow, [178_956_970] * workers)  # workers up before timing
        t = time.perf_counter()
        for _ in pool.imap_unordered(func, [os.fsencode(f) for f in files], chunksize=4):
            pass
        return len(files) / (time.perf_counter() - t)


def bench_scan_library(lib: Path, root: Path, run: int) -> float:
    home = _fresh_home(root, f"scan-home-{run}")
    settings = load_settings(home)
    settings.ensure_dirs()
    with Database(settings) as db:
        summary = scanner.scan(db, settings, [lib])
    assert summary.errors == 0, summary.error_files[:3]
    return summary.new / summary.elapsed_s


def bench_scan_cli(lib: Path, root: Path, n: int) -> float:
    home = _fresh_home(root, "scan-home-cli")
    t = time.perf_counter()
    subprocess.run([PHOTOSCOUT, "--home", str(home), "index", str(lib), "--no-progress"], check=True,
                   capture_output=True)
    return n / (time.perf_counter() - t)


def bench_rescan(lib: Path, root: Path, runs: int) -> tuple[float, float, float, int]:
    home = _fresh_home(root, "rescan-home")
    settings = load_settings(home)
    settings.ensure_dirs()
    with Database(settings) as db:
        first = scanner.scan(db, settings, [lib])
        lib_times = []
        for _ in range(runs):
            s = scanner.scan(db, settings, [lib])
            assert s.processed == 0 and s.unchanged == first.found
            lib_times.append(s.elapsed_s)
    cli_times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([PHOTOSCOUT, "--home", str(home), "index", str(lib), "--json"], check=True,
                             capture_output=True, text=True)
        cli_times.append(time.perf_counter() - t)
        assert json.loads(out.stdout)["processed"] == 0
    return first.elapsed_s, statistics.median(lib_times), statistics.median(cli_times), first.found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=200, help="camera-sized photos for the throughput figure")
    ap.add_argument("--library", type=int, default=10_000, help="photos in the re-scan library")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    workers = os.cpu_count() or 1

    t = time.perf_counter()
    cam = generate(a.workdir / "camera-4000x3000", a.photos, 4000, 3000, seed=1)[: a.photos]
    mb = sum(f.stat().st_size for f in cam) / len(cam) / 1e6
    print(f"library: {len(cam)} JPEGs 4000x3000, {mb:.1f} MB each (ready in {time.perf_counter() - t:.0f}s); "
          f"{workers} cores")

    read_rates, scan_rates = [], []
    for run in range(a.runs):
        read_rates.append(bench_read_only(cam, a.workdir / "thumbs-readonly", workers))
        scan_rates.append(bench_scan_library(a.workdir / "camera-4000x3000", a.workdir, run))
        print(f"  run {run + 1}: reading only {read_rates[-1]:.1f} photos/s, full scan {scan_rates[-1]:.1f} photos/s")
    cli_rate = bench_scan_cli(a.workdir / "camera-4000x3000", a.workdir, len(cam))
    read_m, scan_m = statistics.median(read_rates), statistics.median(scan_rates)
    print(f"scan throughput (hash+EXIF+thumbnail+insert), 4000x3000 JPEG: median {scan_m:.1f} photos/s "
          f"(target >= 40); reading alone {read_m:.1f} photos/s, ratio {scan_m / read_m:.2f}; "
          f"CLI end to end incl. start-up {cli_rate:.1f} photos/s")

    t = time.perf_counter()
    generate(a.workdir / f"library-{a.library}", a.library, 320, 240, seed=2, quality=80)
    print(f"re-scan library: {a.library} photos (ready in {time.perf_counter() - t:.0f}s)")
    first, lib_s, cli_s, found = bench_rescan(a.workdir / f"library-{a.library}", a.workdir, a.runs)
    print(f"first scan of {found}: {first:.1f}s; unchanged re-scan: median {lib_s:.2f}s in the library, "
          f"{cli_s:.2f}s CLI wall time (target < 5 s); {first / cli_s:.0f}x faster than the first scan")


if __name__ == "__main__":
    main()
