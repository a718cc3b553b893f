"""Built-in model benchmark (issue #3).

Figures printed (medians of --runs):
  * embedding (ConSE: EfficientNet-Lite0 + MiniLM labels) on 4000x3000 JPEGs, 2 cores: photos/s end to end
    (decode, preprocess, inference, database write), in two ways: reading the thumbnail the scan made (what
    ``index`` does) and decoding the original (JPEG draft mode); and the model-forward-only rate measured in the same
    run on the same batches, with the ratio;
  * OCR (RapidOCR PP-OCRv6) photos/s on documents and on screenshots from photos-dev;
  * on a mixed library (photos-dev sample): the share of photos the OCR gate sends to OCR, the text photos it
    misses, and OCR's share of model time with and without the gate.

Usage: .venv/bin/python -m benchmarks.bench_models [--photos 200] [--runs 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.genlib import DATASET, generate
from photoscout.analysis.decode import load_images, prefetched
from photoscout.analysis.photos import PhotoRow, pending_photos
from photoscout.analysis.runner import run_models
from photoscout.app import Photoscout
from photoscout.common.imaging import load_rgb
from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.library import scanner
from photoscout.models.cache import ModelCache
from photoscout.models.conse import preprocess
from photoscout.registry import lifecycle


def _reset(db: Database, model_id: int) -> None:
    with db.connection() as conn:
        for table in ("photo_embeddings", "photo_analysis", "photo_model_runs"):
            conn.execute(f"DELETE FROM {table} WHERE model_id = %s", (model_id,))


def bench_embedding(db: Database, settings, photos: list[PhotoRow], runs: int) -> None:  # type: ignore[no-untyped-def]
    emb = lifecycle.active(db, "embedding")
    assert emb is not None
    models = ModelCache(settings)
    model = models.get(emb)
    model.load()
    bs = settings.batch_size
    thumb_rates, orig_rates, fwd_rates = [], [], []
    no_thumb = [PhotoRow(p.id, p.path_raw, p.format, p.camera_make, p.width, p.height, None) for p in photos]
    for run in range(runs):
        for rows, rates in ((photos, thumb_rates), (no_thumb, orig_rates)):
            _reset(db, emb.id)
            t = time.perf_counter()
            batches = [rows[start: start + bs] for start in range(0, len(rows), bs)]
            for batch, loaded in prefetched(settings, batches):  # as ``index`` does: decode ahead
                run_models(db, settings, models, [emb], batch, loaded=loaded)
            rates.append(len(rows) / (time.perf_counter() - t))
        images, _ = load_images(settings, photos)
        batches = [preprocess([images[p.id] for p in photos[s: s + bs]]) for s in range(0, len(photos), bs)]
        session = model.cnn.session  # type: ignore[attr-defined]
        t = time.perf_counter()
        for b in batches:
            session.run(["features", "probs"], {"pixels": b})
        fwd_rates.append(len(photos) / (time.perf_counter() - t))
        print(f"  run {run + 1}: end to end {thumb_rates[-1]:.1f} photos/s (thumbnail), "
              f"{orig_rates[-1]:.1f} (original); forward only {fwd_rates[-1]:.1f}")
    thumb, orig, fwd = (statistics.median(x) for x in (thumb_rates, orig_rates, fwd_rates))
    print(f"embedding, 4000x3000 JPEG, batch {bs}: end to end {thumb:.1f} photos/s reading the scan's thumbnail "
          f"({thumb / fwd:.2f} of forward-only {fwd:.1f}/s; target >= 0.7), {orig:.1f} photos/s decoding originals "
          f"({orig / fwd:.2f})")


def bench_ocr(db: Database, settings, runs: int) -> None:  # type: ignore[no-untyped-def]
    ocr_reg = lifecycle.active(db, "ocr")
    assert ocr_reg is not None
    ocr = ModelCache(settings).get(ocr_reg)
    rows = list(csv.DictReader(open(DATASET / "manifest.csv")))
    for category in ("documents", "screenshots"):
        files = [DATASET / r["file"] for r in rows if r["category"] == category][::10][:12]
        rates = []
        for _ in range(runs):
            t = time.perf_counter()
            for f in files:
                ocr.read([load_rgb(str(f), 1600, 1600)])  # type: ignore[attr-defined]
            rates.append(len(files) / (time.perf_counter() - t))
        print(f"OCR on {category}: {statistics.median(rates):.2f} photos/s ({len(files)} photos, median of {runs})")


def bench_gate(db: Database, settings, lib: Path) -> None:  # type: ignore[no-untyped-def]
    """Index a mixed sample with all models; time per model type; what the gate decided."""
    rows = {str(lib / r["file"]): r for r in csv.DictReader(open(DATASET / "manifest.csv"))}
    scanner.scan(db, settings, [lib])
    models = ModelCache(settings)
    active = [m for m in lifecycle.list_models(db) if m.status == "active"]
    timings: dict[str, float] = {}
    for reg in sorted(active, key=lambda m: m.type != "embedding"):
        todo = pending_photos(db, reg.id)
        t = time.perf_counter()
        for start in range(0, len(todo), settings.batch_size):
            run_models(db, settings, models, [reg], todo[start: start + settings.batch_size])
        timings[reg.type] = time.perf_counter() - t
    with db.connection() as conn:
        outcome = {p: o for p, o in conn.execute(
            "SELECT p.path, r.outcome FROM photo_model_runs r JOIN photos p ON p.id = r.photo_id "
            "JOIN model_registry m ON m.id = r.model_id WHERE m.type = 'ocr'")}
    text = [p for p in outcome if rows[p]["category"] in ("documents", "screenshots")]
    other = [p for p in outcome if p not in text]
    ran = [p for p in outcome if outcome[p] == "done"]
    missed = [p for p in text if outcome[p] != "done"]
    ocr_per_photo = timings["ocr"] / max(1, len(ran))
    without_gate = ocr_per_photo * len(outcome)  # an upper bound: photos without text are cheaper to OCR
    total = sum(timings.values())
    print(f"mixed library of {len(outcome)} photos ({len(text)} documents/screenshots): OCR ran on {len(ran)} "
          f"({len(ran) / len(outcome):.0%}), skipped {len(other) - sum(outcome[p] == 'done' for p in other)} of "
          f"{len(other)} photos without text, missed {len(missed)} text photos")
    print("model time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
          + f"; OCR {timings['ocr'] / total:.0%} of it with the gate (without it, at the same per-photo cost, about "
          f"{without_gate / (total - timings['ocr'] + without_gate):.0%} and {without_gate:.0f}s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mixed", type=int, default=4, help="take every N-th photo of photos-dev for the gate figure")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    cam_dir = a.workdir / "camera-4000x3000"
    generate(cam_dir, a.photos, 4000, 3000, seed=1)
    home = a.workdir / "models-home"
    import shutil

    if home.exists():
        import subprocess
        import sys

        subprocess.run([str(Path(sys.executable).with_name("photoscout")), "--home", str(home), "db", "stop"],
                       capture_output=True)
        shutil.rmtree(home)
    settings = load_settings(home)
    settings.ensure_dirs()
    with Database(settings) as db:
        Photoscout(settings, db=db).install_builtin()
        scanner.scan(db, settings, [cam_dir])
        emb = lifecycle.active(db, "embedding")
        assert emb is not None
        photos = pending_photos(db, emb.id)[: a.photos]
        print(f"{len(photos)} photos 4000x3000; thumbnails {settings.thumbnail_size}px; threads = all cores")
        bench_embedding(db, settings, photos, a.runs)
        bench_ocr(db, settings, a.runs)
    mixed = a.workdir / "mixed"
    if not mixed.exists():
        for i, r in enumerate(csv.DictReader(open(DATASET / "manifest.csv"))):
            if i % a.mixed == 0:
                (mixed / r["file"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(DATASET / r["file"], mixed / r["file"])
    home2 = a.workdir / "gate-home"
    shutil.rmtree(home2, ignore_errors=True)
    s2 = load_settings(home2)
    s2.ensure_dirs()
    with Database(s2) as db:
        Photoscout(s2, db=db).install_builtin(wheels_dir=settings.data_dir / "cache" / "wheels")
        bench_gate(db, s2, mixed)


if __name__ == "__main__":
    main()
