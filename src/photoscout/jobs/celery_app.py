"""Celery executor: ``photoscout worker`` runs this app against the broker in ``broker_url`` (Redis or RabbitMQ).

Tasks carry only a job id and drain that job through the same job tables as the local executor (late
acknowledgement, one task at a time per worker process, retries with backoff when the database is away). A worker
that starts also drains any job with work left, so units abandoned by a killed worker are picked up at once.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem, PhotoscoutError
from photoscout.config import Settings, load_settings
from photoscout.database import Database

log = logging.getLogger(__name__)
QUEUE = "photoscout"

app = Celery("photoscout")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_state: dict[str, Any] = {}


def configure(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise PhotoscoutError("no broker configured: set broker_url (e.g. redis://127.0.0.1:6379/0) in config.toml "
                              "or PHOTOSCOUT_BROKER_URL")
    app.conf.broker_url = settings.broker_url
    _state["settings"] = settings
    return app


def _worker() -> Any:
    from photoscout.jobs.worker import Worker

    if "worker" not in _state:
        settings = _state.get("settings") or load_settings()
        db = Database(settings).open()
        _state["db"] = db
        _state["worker"] = Worker(db, settings)
    return _state["worker"]


@app.task(name="photoscout.drain_job", bind=True, autoretry_for=(DatabaseUnavailable, EnvironmentProblem),
          retry_backoff=2, retry_backoff_max=60, max_retries=20)
def drain_job(self: Any, job_id: int | None) -> dict[str, Any]:
    stats = _worker().run(job_id)
    return {"units": stats.units, "photos": stats.photos, "failed": stats.failed}


@worker_ready.connect
def _recover(**_: Any) -> None:
    drain_job.delay(None)


@worker_shutdown.connect
def _release(**_: Any) -> None:
    """A worker that stops (SIGTERM, Ctrl-C) lets go of the database: the last user stops an embedded server."""
    db = _state.pop("db", None)
    _state.pop("worker", None)
    if db is not None:
        db.close()


def run_worker(settings: Settings, *, concurrency: int = 1, loglevel: str = "INFO") -> None:
    """Run a Celery worker in this process (blocks): it takes part in jobs queued with the celery executor."""
    import os
    import socket

    if settings.uses_embedded_db and not settings.pgdata_dir.exists():
        raise PhotoscoutError("this home has no database; set database_url to the library's PostgreSQL")
    configure(settings).worker_main([
        "worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
        "--pool=solo" if concurrency == 1 else "--pool=threads", "-Q", QUEUE,
        "-n", f"photoscout-{os.getpid()}@{socket.gethostname()}", "--without-gossip", "--without-mingle"])


def enqueue(settings: Settings, job_id: int, tasks: int = 2) -> None:
    """Queue ``tasks`` drain tasks for a job (call after the job's transaction committed)."""
    configure(settings)
    for _ in range(max(1, tasks)):
        drain_job.delay(job_id)
