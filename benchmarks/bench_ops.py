"""Local operations benchmark (issue #12) at 100k photos on 2 cores.

The library: photos-dev's 1,086 real photos embedded by the built-in ConSE version (a real job), plus synthetic
photos whose outputs (vector, analysis, model run) are written through the same batch writer a job uses
(``analysis.store``): vectors perturbed from the real ones, analyses copied from them.

Figures printed:
* bytes per photo of an embedding version in half precision (the built-in) and full precision, table and vector
  index, at --size photos; the estimate made before writing each version against the size measured after;
* prune of one version at --size photos, plain (pages kept for reuse) and compact (tables rewritten): wall time,
  bytes freed on disk (measured before and after), deleted row bytes, and searches answered meanwhile (2 clients);
* dump of the library while 2 clients search, and restore into a fresh home: times, file size, and the same results.

Usage: .venv/bin/python -m benchmarks.bench_ops [--size 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from pgvector import HalfVector

from benchmarks.genlib import DATASET, install_builtins
from photoscout.analysis.store import Outputs, as_array, store
from photoscout.app import Photoscout
from photoscout.config import load_settings
from photoscout.database import indexes
from photoscout.jobs import store as jobs
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.maintenance import disk, estimate
from photoscout.registry import lifecycle, local

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
V1 = "conse-effnetl0-minilm@v1.0.0"
QUERIES = ["pizza", "a laptop", "a receipt", "a dog", "food", "a car", "a screenshot", "a person"]


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def fill(core: Photoscout, ref: str, source: str, ids: list[int], real: dict[str, np.ndarray], rng: Any) -> float:
    """Write a version's outputs for ``ids`` as a job's batches would: vectors perturbed from ``source``'s."""
    from psycopg.types.json import Jsonb

    model = lifecycle.get(core.db, ref)
    src = lifecycle.get(core.db, source)
    with core.db.connection() as conn:
        analyses = conn.execute("SELECT labels, category_scores, text_likelihood, cues FROM photo_analysis "
                                "WHERE model_id = %s", (src.id,)).fetchall()
    half = model.config.get("storage") == "halfvec"
    base = real["vectors"]
    started = time.perf_counter()
    for start in range(0, len(ids), 32):
        out = Outputs()
        for pid in ids[start: start + 32]:
            vec = base[rng.integers(0, len(base))] + rng.normal(size=base.shape[1]).astype(np.float32) * 0.02
            vec /= np.linalg.norm(vec)
            labels, scores, tl, cues = analyses[rng.integers(0, len(analyses))]
            out.add("embedding_half" if half else "embedding", pid, model.id, model.name, model.version,
                    HalfVector(vec) if half else vec)
            out.add("analysis", pid, model.id, Jsonb(labels), Jsonb(scores), tl, Jsonb(cues))
            out.ran(pid, model.id, "done")
        store(core.db, out)
    indexes.ensure(core.db, model)
    return time.perf_counter() - started


def searching(core: Photoscout, stop: threading.Event, tally: dict[str, int]) -> None:
    i = 0
    while not stop.is_set():
        try:
            core.search(QUERIES[i % len(QUERIES)], limit=10)
            tally["answered"] += 1
        except Exception:  # noqa: BLE001 - counted
            tally["failed"] += 1
        i += 1


def with_searchers(core: Photoscout, clients: int, work: Any) -> tuple[Any, float, dict[str, int]]:
    stop, tally = threading.Event(), {"answered": 0, "failed": 0}
    threads = [threading.Thread(target=searching, args=(core, stop, tally)) for _ in range(clients)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    try:
        result = work()
    finally:
        took = time.perf_counter() - started
        stop.set()
        for t in threads:
            t.join(60)
    return result, took, tally


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    home = a.workdir / "ops-home"
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop", "--force"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text("embedded_keep_running = true\n")
    rng = np.random.default_rng(0)
    with Photoscout.open(home) as core:
        install_builtins(core.db, core.settings, V1)
        scanner.scan(core.db, core.settings, [DATASET])
        Worker(core.db, core.settings).run(jobs.create_job(core.db, kind="embed", model_ref=V1)["id"])
        v1 = lifecycle.get(core.db, V1)
        with core.db.connection() as conn:
            real = {"vectors": np.stack([as_array(v) for (v,) in conn.execute(
                "SELECT coalesce(embedding, embedding_half::vector) FROM photo_embeddings WHERE model_id = %s",
                (v1.id,))])}
            t = time.perf_counter()
            cur = conn.cursor()
            n_syn = a.size - len(real["vectors"])
            with cur.copy("COPY photos (path, path_raw, folder, status) FROM STDIN") as copy:
                for i in range(n_syn):
                    path = f"/bench/synthetic/{i // 1000:03d}/IMG_{i:06d}.jpg"
                    copy.write_row((path, path.encode(), path.rsplit("/", 1)[0], "ok"))
            synthetic = [r[0] for r in cur.execute("SELECT id FROM photos WHERE path LIKE '/bench/%%' ORDER BY id")]
        estimate_v1 = estimate.estimate(core.db, core.settings, v1, a.size, measure=False)
        took = fill(core, V1, V1, synthetic, real, rng)
        print(f"library: {a.size:,} photos ({len(real['vectors']):,} real, {n_syn:,} synthetic written in "
              f"{took:.0f}s through the job's batch writer)")

        full, _ = local.register_folder(core.db, core.settings, ref="conse-effnetl0-minilm@v1.0.1",
                                        source_dir=v1.artifact_dir(core.settings), type_="embedding",
                                        backend="conse", config={**v1.config, "storage": "vector"})
        with core.db.connection() as conn:
            all_ids = [r[0] for r in conn.execute("SELECT id FROM photos WHERE status = 'ok' ORDER BY id")]
        estimate_full = estimate.estimate(core.db, core.settings, full, len(all_ids), measure=False)
        fill(core, full.ref, V1, all_ids, real, rng)
        usage = {v.model: v for v in disk.versions(core.db, core.settings)}
        for ref, label, est in ((V1, "halfvec", estimate_v1), (full.ref, "vector", estimate_full)):
            u = usage[ref]
            per = u.database_bytes / a.size
            print(f"{label:7s} {ref}: {per:,.0f} bytes per photo ({u.table_bytes / a.size:,.0f} table rows, "
                  f"{u.index_bytes / a.size:,.0f} vector index); estimate before writing {est.bytes_per_photo:,.0f} "
                  f"({est.bytes_basis}): {100 * (est.bytes - u.database_bytes) / u.database_bytes:+.1f}%")

        core.search("warm up")
        half_copy, _ = local.register_folder(core.db, core.settings, ref="conse-effnetl0-minilm@v1.0.2",
                                             source_dir=v1.artifact_dir(core.settings), type_="embedding",
                                             backend="conse", config=v1.config)
        fill(core, half_copy.ref, V1, all_ids, real, rng)
        for ref, compact in ((full.ref, False), (half_copy.ref, True)):
            plan = core.prune_plan(include=[ref])
            result, took, tally = with_searchers(core, 2, lambda p=plan, c=compact: core.prune(
                p, reason="benchmark", compact=c))
            print(f"prune {ref} ({'compact' if compact else 'plain'}): {took:.1f}s; freed on disk "
                  f"{mb(result.freed_bytes)}, deleted rows {mb(result.deleted_row_bytes)}; searches meanwhile "
                  f"{tally['answered']} answered, {tally['failed']} failed")

        backup = a.workdir / "ops-backup.tar"
        backup.unlink(missing_ok=True)
        info, took, tally = with_searchers(core, 2, lambda: core.dump(backup))
        print(f"dump of {info['photos']:,} photos: {took:.1f}s, {mb(info['bytes'])} (models included; "
              f"{tally['answered']} searches answered meanwhile, {tally['failed']} failed)")
        before = {q: [h.photo_id for h in core.search(q, limit=10).hits] for q in QUERIES}
    fresh = a.workdir / "ops-restored"
    subprocess.run([PHOTOSCOUT, "--home", str(fresh), "db", "stop", "--force"], capture_output=True)
    shutil.rmtree(fresh, ignore_errors=True)
    settings = load_settings(fresh, embedded_keep_running=True)
    with Photoscout(settings) as restored_core:
        t = time.perf_counter()
        restored_core.restore(backup)
        took = time.perf_counter() - t
        same = {q: [h.photo_id for h in restored_core.search(q, limit=10).hits] for q in QUERIES} == before
        print(f"restore into a fresh home: {took:.1f}s (indexes rebuilt); the same results for "
              f"{len(QUERIES)} queries: {same}")
    for h in (home, fresh):
        subprocess.run([PHOTOSCOUT, "--home", str(h), "db", "stop", "--force"], capture_output=True)


if __name__ == "__main__":
    main()
