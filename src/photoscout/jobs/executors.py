"""Where a job's work runs: ``local`` (this process works through the job until no unit is left; Ctrl-C or a
crash leaves it resumable) or ``celery`` (drain tasks queued for ``photoscout worker`` processes; the job tables
coordinate them, so the caller can follow progress from the database)."""

from __future__ import annotations

from dataclasses import dataclass

from photoscout.common.errors import InvalidParameter
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.jobs import store
from photoscout.jobs.worker import Worker, WorkerStats
from photoscout.models.cache import ModelCache

EXECUTORS = ("local", "celery")


@dataclass
class Dispatched:
    executor: str
    stats: WorkerStats | None = None  # local: what this process did
    tasks: int = 0  # celery: drain tasks queued


def run_local(db: Database, settings: Settings, job_id: int | None, *, models: ModelCache | None = None,
              progress: Progress | None = None) -> WorkerStats:
    """Work through one job (or every job with work left) in this process; progress counts the job's photos,
    starting from those already done."""
    progress = progress or NoProgress()
    job = store.get_job(db, job_id) if job_id else None
    progress.phase(f"job {job_id}" if job_id else "jobs", job["total_items"] if job else None)
    if job is not None:
        progress.advance(job["progress"]["done"])
    return Worker(db, settings, models=models).run(job_id, progress=progress)


def dispatch(db: Database, settings: Settings, job_id: int, executor: str, *, tasks: int = 2,
             models: ModelCache | None = None, progress: Progress | None = None) -> Dispatched:
    """Run a job on the chosen executor (call after the job's transaction committed)."""
    if executor == "local":
        return Dispatched(executor, stats=run_local(db, settings, job_id, models=models, progress=progress))
    if executor == "celery":
        from photoscout.jobs.celery_app import enqueue

        enqueue(settings, job_id, tasks)
        return Dispatched(executor, tasks=max(1, tasks))
    raise InvalidParameter(f"unknown executor {executor!r}: use {' or '.join(EXECUTORS)}", "executor")
