"""One service per library: ``serve`` and ``run`` hold ``<home>/data/service.lock`` (an exclusive ``flock``) while
they run, and write who they are into it. A second one on the same home is refused and told which process holds it.
The kernel drops the lock of a process that dies (SIGKILL, power cut), so a stale lock never blocks a restart.
Only the holder writes ``server.json`` (``client.announce``), and only the process that wrote it removes it."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from photoscout.common.errors import EnvironmentProblem, PhotoscoutError
from photoscout.config import Settings


def lock_file(settings: Settings) -> Path:
    return settings.data_dir / "service.lock"


def holder(settings: Settings) -> dict[str, Any] | None:
    """Who holds the lock now (pid, mode, url, started_at), or None when no service runs on this home."""
    path = lock_file(settings)
    try:
        fh = open(path, "r+")  # noqa: SIM115 - probed and closed below
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc.strerror}") from exc
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info: dict[str, Any] = json.loads(fh.read() or "{}")
            except ValueError:
                info = {}
            return info or {"pid": None}
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None


def describe(info: dict[str, Any]) -> str:
    where = f" at {info['url']}" if info.get("url") else ""
    since = f", since {info['started_at']}" if info.get("started_at") else ""
    return f"photoscout {info.get('mode') or 'service'} (pid {info.get('pid')}{where}{since})"


class ServiceLock:
    """Held for the life of a ``serve`` or ``run``: ``with ServiceLock(settings, "serve"):``."""

    def __init__(self, settings: Settings, mode: str) -> None:
        self.settings = settings
        self.mode = mode
        self._fh: IO[str] | None = None
        self.info: dict[str, Any] = {}

    def acquire(self) -> ServiceLock:
        self.settings.ensure_dirs()
        path = lock_file(self.settings)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fh = os.fdopen(fd, "r+")
        except OSError as exc:
            raise EnvironmentProblem(f"cannot open {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(fh.read() or "{}")
            except ValueError:
                info = {}
            fh.close()
            raise PhotoscoutError(f"{describe(info)} already serves this library ({self.settings.home}); stop it "
                                  "first, or use it: one service per library") from None
        self._fh = fh
        self.info = {"pid": os.getpid(), "mode": self.mode, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._write()
        return self

    def announce(self, url: str) -> None:
        """The address the holder serves (shown to a second one that is refused)."""
        self.info["url"] = url
        self._write()

    def _write(self) -> None:
        assert self._fh is not None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(json.dumps(self.info))
        self._fh.flush()

    def release(self) -> None:
        if self._fh is not None:
            try:
                self._fh.seek(0)
                self._fh.truncate()
            except OSError:
                pass
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ServiceLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
