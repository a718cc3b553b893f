"""Jobs benchmark (issue #4): an embedding job (built-in ConSE, a staging v1.1.0 beside the active v1.0.0) over
4000x3000 JPEGs on 2 cores.

Figures printed (medians of --runs where repeated):
  * photos/s with one local worker (``jobs run``), and with two Celery worker processes on Redis;
  * rework after a SIGKILL of a local worker at ~50%: photos computed twice;
  * job-table overhead: wall time of the job minus the time of the same model work called directly on the same
    batches (no claims, leases, heartbeats, counters), as a share of the job's wall time.

Usage: .venv/bin/python -m benchmarks.bench_jobs [--photos 200] [--runs 3] [--broker redis://127.0.0.1:6379/12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.genlib import generate, install_builtins
from photoscout.analysis.decode import prefetched
from photoscout.analysis.photos import pending_photos
from photoscout.analysis.runner import run_models
from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.jobs import store
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle, local

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
V2 = "conse-effnetl0-minilm@v1.1.0"


def reset(db: Database) -> None:
    model = lifecycle.get(db, V2)
    with db.connection() as conn:
        for table in ("photo_embeddings", "photo_analysis", "photo_model_runs"):
            conn.execute(f"DELETE FROM {table} WHERE model_id = %s", (model.id,))
        conn.execute("DELETE FROM jobs")


def wait_done(db: Database, job_id: int) -> dict:
    while True:
        job = store.get_job(db, job_id)
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--broker", default="redis://127.0.0.1:6379/12")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    cam = a.workdir / "camera-4000x3000"
    generate(cam, a.photos, 4000, 3000, seed=1)
    home = a.workdir / "jobs-home"
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f'broker_url = "{a.broker}"\nembedded_keep_running = true\n')
    settings = load_settings(home)
    settings.ensure_dirs()
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
    with Database(settings) as db:
        install_builtins(db, settings, "conse-effnetl0-minilm@v1.0.0")
        v1 = lifecycle.get(db, "conse-effnetl0-minilm@v1.0.0")
        local.register_folder(db, settings, ref=V2, source_dir=v1.artifact_dir(settings), type_="embedding",
                              backend="conse", config={**v1.config, "top_t": 5})
        scanner.scan(db, settings, [cam])
        n = len(pending_photos(db, lifecycle.get(db, V2).id))
        print(f"{n} photos 4000x3000, unit size {settings.job_unit_size}, 2 cores")

        local_rates, overheads = [], []
        models = ModelCache(settings)
        worker = Worker(db, settings, models=models)
        for run in range(a.runs):
            reset(db)
            job = store.create_job(db, kind="embed", model_ref=V2, unit_size=settings.job_unit_size)
            t = time.perf_counter()
            worker.run(job["id"])
            job_s = time.perf_counter() - t
            assert store.get_job(db, job["id"])["status"] == "completed"
            reset(db)
            reg = lifecycle.get(db, V2)
            photos = pending_photos(db, reg.id)
            bs = settings.job_unit_size
            t = time.perf_counter()
            for batch, loaded in prefetched(settings, [photos[i: i + bs] for i in range(0, len(photos), bs)]):
                run_models(db, settings, models, [reg], batch, loaded=loaded)
            direct_s = time.perf_counter() - t
            local_rates.append(n / job_s)
            overheads.append(max(0.0, (job_s - direct_s) / job_s))
            print(f"  run {run + 1}: local worker {n / job_s:.1f} photos/s; same work without job tables "
                  f"{n / direct_s:.1f}/s")

        from celery import Celery

        Celery(broker=a.broker).control.purge()
        procs = [subprocess.Popen([PHOTOSCOUT, "worker", "--loglevel", "WARNING"], env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            time.sleep(10)  # workers start and load their models
            celery_rates = []
            for _ in range(a.runs):
                reset(db)
                job = store.create_job(db, kind="embed", model_ref=V2, unit_size=settings.job_unit_size)
                t = time.perf_counter()
                from photoscout.jobs.celery_app import enqueue

                enqueue(settings, job["id"], tasks=2)
                wait_done(db, job["id"])
                celery_rates.append(n / (time.perf_counter() - t))
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait()

        reset(db)
        job = store.create_job(db, kind="embed", model_ref=V2, unit_size=settings.job_unit_size)
        proc = subprocess.Popen([PHOTOSCOUT, "jobs", "run", str(job["id"]), "--json"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while store.get_job(db, job["id"])["progress"]["fraction"] < 0.5:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        Worker(db, settings, models=models).run(job["id"])
        done = store.get_job(db, job["id"])
        with db.connection() as conn:
            row = conn.execute("SELECT coalesce(sum(cardinality(photo_ids) * (attempts - 1)), 0) FROM job_units "
                               "WHERE job_id = %s", (job["id"],)).fetchone()
        print(f"embedding job throughput: one local worker {statistics.median(local_rates):.1f} photos/s; two Celery "
              f"worker processes (Redis) {statistics.median(celery_rates):.1f} photos/s")
        print(f"rework after a SIGKILL at 50%: {row[0] if row else '?'} photos recomputed "
              f"({done['retried_units']} unit(s) of {done['units']}); job {done['status']}")
        print(f"job-table overhead: {statistics.median(overheads):.1%} of wall time")
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)


if __name__ == "__main__":
    main()
