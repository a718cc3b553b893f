"""Jobs started from the web run in the server process, one at a time, on the local executor (a worker thread;
searches go on). Their progress lives in the database like any job's, so the pages and the CLI see the same; an
error that stops one is kept as the job's ``last_error`` (shown by every face), and the job can be resumed or
retried."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from photoscout.app import Photoscout
from photoscout.common.errors import PhotoscoutError

log = logging.getLogger(__name__)


class Background:
    def __init__(self, core: Photoscout) -> None:
        self.core = core
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photoscout-job")

    def _submit(self, job_id: int, fn: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                fn()
            except PhotoscoutError as exc:
                self._note(job_id, str(exc))
            except Exception as exc:  # the job itself records what it finished
                log.exception("job %s stopped", job_id)
                self._note(job_id, f"stopped by an unexpected error: {type(exc).__name__}")

        self._pool.submit(run)

    def _note(self, job_id: int, message: str) -> None:
        try:
            self.core.note_job_error(job_id, message)
        except Exception:  # the database itself is what failed: the server log has it
            log.warning("job %s stopped: %s (not recorded: the database did not answer)", job_id, message)

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
