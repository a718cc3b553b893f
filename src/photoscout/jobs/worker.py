"""Working through jobs: the same loop for the local executor (``jobs run``) and for Celery tasks.

claim a unit -> run the job's model on its photos -> store outputs and mark the unit done in one transaction.
A heartbeat thread extends the lease while a unit runs. If the database goes away (restart, network), the worker
waits and carries on; the unit in flight is redone at worst (outputs are upserts, so nothing is duplicated).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from photoscout.analysis import categories
from photoscout.analysis.photos import photos_by_id
from photoscout.analysis.runner import run_models
from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.jobs import store
from photoscout.jobs.states import JobKind, JobStatus
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    units: int = 0
    photos: int = 0
    failed: int = 0
    db_waits: int = 0
    elapsed_s: float = 0.0
    job_ids: set[int] = field(default_factory=set)


class Heartbeat:
    def __init__(self, db: Database, unit: store.Unit, owner: str, lease: int) -> None:
        self.db, self.unit, self.owner, self.lease = db, unit, owner, lease
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"heartbeat-{unit.id}")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(max(1.0, self.lease / 3)):
            try:
                if not store.heartbeat(self.db, self.unit, self.owner, self.lease):
                    self.lost = True
                    return
            except DatabaseUnavailable:
                continue


class Worker:
    def __init__(self, db: Database, settings: Settings, *, models: ModelCache | None = None,
                 owner: str | None = None, db_wait_seconds: float = 600.0) -> None:
        self.db = db
        self.settings = settings
        self.models = models or ModelCache(settings)
        self.owner = owner or store.worker_id()
        self.db_wait_seconds = db_wait_seconds
        self._registered: dict[int, lifecycle.RegisteredModel] = {}

    def run(self, job_id: int | None = None, *, progress: Progress | None = None,
            max_units: int | None = None, wait_for_leases: bool = True) -> WorkerStats:
        """Process units until none is left to claim (of ``job_id``, or of any job)."""
        progress = progress or NoProgress()
        stats = WorkerStats()
        started = time.perf_counter()
        waited_since: float | None = None
        while max_units is None or stats.units < max_units:
            try:
                unit = store.claim(self.db, self.owner, self.settings.lease_seconds, job_id,
                                   max_attempts=self.settings.unit_max_attempts)
                if unit is None:
                    # Units still leased by others: take over those of dead local processes now, and wait for the
                    # leases of the rest to be completed or to expire (then they are claimable again).
                    _reclaimed, leased = store.reclaim_dead(self.db, job_id)
                    if _reclaimed:
                        continue
                    if leased and wait_for_leases:
                        time.sleep(1.0)
                        continue
                    break
                stats.job_ids.add(unit.job_id)
                done, failed = self.process(unit)
                waited_since = None
            except DatabaseUnavailable as exc:
                now = time.monotonic()
                waited_since = waited_since or now
                if now - waited_since > self.db_wait_seconds:
                    raise
                stats.db_waits += 1
                log.warning("database unavailable (%s); waiting", exc)
                time.sleep(min(5.0, 0.5 * stats.db_waits))
                continue
            stats.units += 1
            stats.photos += done
            stats.failed += failed
            progress.advance(done + failed)
        self._index_completed(stats.job_ids)
        stats.elapsed_s = round(time.perf_counter() - started, 3)
        return stats

    def _index_completed(self, job_ids: set[int]) -> None:
        """When an embedding job is complete, its version gets its vector index (built concurrently)."""
        for job_id in job_ids:
            job = store.get_job(self.db, job_id)
            if job["status"] == JobStatus.COMPLETED and job["kind"] == JobKind.EMBED:
                indexes.ensure(self.db, self.model(job["model_id"]))

    def model(self, model_id: int) -> lifecycle.RegisteredModel:
        if model_id not in self._registered:
            self._registered[model_id] = lifecycle.get_by_id(self.db, model_id)
        return self._registered[model_id]

    def process(self, unit: store.Unit) -> tuple[int, int]:
        reg = self.model(unit.model_id)
        photos = photos_by_id(self.db, unit.photo_ids)
        present = {p.id for p in photos}
        gone = [(pid, "photo is missing or unreadable in the library") for pid in unit.photo_ids if pid not in present]
        result: dict[str, Any] = {}

        def finalize(cur: Any, report: Any) -> None:
            failures = list(report.failed) + gone
            store.complete_in(cur, unit, self.owner, failures)
            result["failed"] = len({pid for pid, _ in failures})

        try:
            with Heartbeat(self.db, unit, self.owner, self.settings.lease_seconds):
                run_models(self.db, self.settings, self.models, [reg], photos, finalize=finalize)
        except DatabaseUnavailable:
            raise
        except EnvironmentProblem:  # the machine failed (a full disk), not the unit: give it back untried, stop
            store.release(self.db, unit, self.owner)
            raise
        except Exception as exc:  # noqa: BLE001 - a unit that raises is retried later, the worker goes on
            log.exception("unit %s of job %s failed", unit.id, unit.job_id)
            store.fail_unit(self.db, unit, self.owner, f"{type(exc).__name__}: {exc}",
                            max_attempts=self.settings.unit_max_attempts)
            return 0, len(unit.photo_ids)
        if reg.status == "active" or reg.type == "embedding":  # an embedding version has its own categories
            categories.refresh(self.db, list(present))
        failed = int(result.get("failed", 0))
        return len(unit.photo_ids) - failed, failed
