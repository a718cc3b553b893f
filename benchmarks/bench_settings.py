"""The trade-off settings and their measured effect (issue #12), on this machine.

* ``batch_size`` (8, 32, 64) and ``threads`` (1, all cores): ConSE embedding throughput end to end (decode from the
  scan's thumbnails, model, database write), photos/s, median of --runs;
* ``scan_workers`` (1, all cores): scan throughput on --camera JPEGs of 2000x1500, photos/s (worker processes cost
  about a second to start, so small scans gain nothing);
* ``ocr`` (auto, always, off): time of the OCR model on a mixed sample of photos-dev and how many of its documents
  and screenshots end up with text;
* ``device``: where models run here (no GPU on CI: the CPU).

Usage: .venv/bin/python -m benchmarks.bench_settings [--photos 192] [--runs 3] [--camera 200] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.genlib import DATASET, generate
from photoscout.analysis.decode import prefetched
from photoscout.analysis.photos import pending_photos
from photoscout.analysis.runner import run_models
from photoscout.app import Photoscout
from photoscout.config import Settings, load_settings
from photoscout.database import Database
from photoscout.library import scanner
from photoscout.models.cache import ModelCache
from photoscout.models.onnx_runtime import device_report
from photoscout.registry import lifecycle

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))


def reset(db: Database, model_id: int) -> None:
    with db.connection() as conn:
        for table in ("photo_embeddings", "photo_analysis", "photo_model_runs", "photo_text",
                      "photo_text_embeddings"):
            conn.execute(f"DELETE FROM {table} WHERE model_id = %s", (model_id,))


def embedding_rate(db: Database, settings: Settings, runs: int) -> float:
    emb = lifecycle.active(db, "embedding")
    assert emb is not None
    models = ModelCache(settings)
    models.get(emb).load()
    rates = []
    for _ in range(runs):
        reset(db, emb.id)
        photos = pending_photos(db, emb.id)
        batches = [photos[i: i + settings.batch_size] for i in range(0, len(photos), settings.batch_size)]
        started = time.perf_counter()
        for batch, loaded in prefetched(settings, batches):
            run_models(db, settings, models, [emb], batch, loaded=loaded)
        rates.append(len(photos) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=192)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--camera", type=int, default=200, help="camera-sized photos for the scan_workers figure")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    home = a.workdir / "settings-home"
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop", "--force"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text("embedded_keep_running = true\n")
    rows = list(csv.DictReader(open(DATASET / "manifest.csv")))
    sample = a.workdir / "settings-sample"
    shutil.rmtree(sample, ignore_errors=True)
    step = max(1, len(rows) // a.photos)
    for r in rows[::step][: a.photos]:
        (sample / r["file"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATASET / r["file"], sample / r["file"])
    base = load_settings(home)
    print(f"{device_report(base.device)}")
    with Photoscout(base) as core:
        core.install_builtin()
        scanner.scan(core.db, base, [sample])
        print(f"embedding (ConSE) on {a.photos} photos of photos-dev, end to end, photos/s (median of {a.runs}):")
        for batch in (8, 32, 64):
            for threads in (1, 0):
                s = load_settings(home, batch_size=batch, threads=threads)
                print(f"  batch_size {batch:3d}, threads {threads or 'all'}: "
                      f"{embedding_rate(core.db, s, a.runs):6.1f}")

        ocr = lifecycle.active(core.db, "ocr")
        emb = lifecycle.active(core.db, "embedding")
        assert ocr is not None and emb is not None
        text_files = {str(sample / r["file"]) for r in rows if r["category"] in ("documents", "screenshots")
                      and (sample / r["file"]).exists()}
        print(f"OCR on the same sample ({len(text_files)} documents and screenshots among {a.photos} photos):")
        for mode in ("auto", "always", "off"):
            s = load_settings(home, ocr=mode)
            reset(core.db, ocr.id)
            reset(core.db, emb.id)
            from photoscout.jobs.enrich import enrich

            started = time.perf_counter()
            enrich(core.db, s)
            took = time.perf_counter() - started
            with core.db.connection() as conn:
                found = {r[0] for r in conn.execute("SELECT p.path FROM photo_text t JOIN photos p ON p.id = "
                                                    "t.photo_id WHERE t.model_id = %s AND t.text <> ''", (ocr.id,))}
            print(f"  ocr = {mode:6s}: indexing took {took:6.1f}s; documents/screenshots with text "
                  f"{len(found & text_files)} of {len(text_files)}; other photos with text {len(found - text_files)}")

    camera = a.workdir / "settings-camera"
    if not camera.exists():
        generate(camera, a.camera, 2000, 1500, seed=5)
    print(f"scan of {a.camera} JPEGs 2000x1500 (hash, EXIF, thumbnail, insert), photos/s (median of runs):")
    for workers in (1, 0):
        rates = []
        for _ in range(a.runs):
            with Photoscout(load_settings(home, scan_workers=workers)) as core:
                with core.db.connection() as conn:
                    conn.execute("DELETE FROM photos WHERE path LIKE %s", (f"{camera}/%",))
                shutil.rmtree(core.settings.thumbnails_dir, ignore_errors=True)  # each run writes its thumbnails
                started = time.perf_counter()
                summary = scanner.scan(core.db, core.settings, [camera])
                rates.append(summary.new / (time.perf_counter() - started))
        print(f"  scan_workers {workers or 'all'}: {statistics.median(rates):6.1f}")
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop", "--force"], capture_output=True)


if __name__ == "__main__":
    main()
