"""Jobs started from the web run in the server process, one at a time, on the local executor (a worker thread;
searches go on). Their progress lives in the database like any job's, so the pages and the CLI see the same; an
error that stops one is kept here for the page to show, and the job can be resumed or retried."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from photoscout.app import Photoscout
from photoscout.errors import PhotoscoutError

log = logging.getLogger(__name__)


class Background:
    def __init__(self, core: Photoscout) -> None:
        self.core = core
        self.errors: dict[int, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photoscout-job")

    def _submit(self, job_id: int, fn: Callable[[], Any]) -> None:
        self.errors.pop(job_id, None)

        def run() -> None:
            try:
                fn()
            except PhotoscoutError as exc:
                self.errors[job_id] = str(exc)
            except Exception as exc:  # kept for the page; the job itself records what it finished
                log.exception("job %s stopped", job_id)
                self.errors[job_id] = f"stopped by an unexpected error: {type(exc).__name__}"

        self._pool.submit(run)

    def run_job(self, job_id: int) -> None:
        self._submit(job_id, lambda: self.core.run_job(job_id, tasks=1))

    def resume_job(self, job_id: int) -> None:
        self.core.job(job_id)  # 404 now, not in the thread
        self._submit(job_id, lambda: self.core.resume_job(job_id, tasks=1))

    def retry_failed(self, job_id: int) -> None:
        self.core.job(job_id)
        self._submit(job_id, lambda: self.core.retry_failed(job_id))

    def shutdown(self) -> None:
        """Stop taking work and drop what is queued. A job in flight runs on until it ends (the process waits for
        it at exit); stopped harder, it keeps its finished units and resumes with ``jobs resume``."""
        self._pool.shutdown(wait=False, cancel_futures=True)
