"""Database access: embedded or external PostgreSQL + pgvector, a connection pool, migrations.

    db = Database(settings)
    with db:                       # starts the embedded server if needed, migrates, opens the pool
        with db.connection() as conn:
            conn.execute(...)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem, InvalidParameter
from photoscout.config import Settings
from photoscout.database import migrations
from photoscout.database.embedded import EmbeddedServer
from photoscout.database.vectors import MIN_PGVECTOR, configure_connection, pgvector_version, reset_connection

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "photoscout"


def redact(url: str) -> str:
    """A URL safe to print: the password replaced by ***."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<invalid database URL>"
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> int:
    """The first column of the first row as an integer (0 when there is none): counts and sizes."""
    row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def machine_failed(exc: psycopg.Error) -> bool:
    """The server answered, but its machine failed it: insufficient resources (class 53: disk full, out of memory)
    or a system error (class 58: I/O error)."""
    return (exc.sqlstate or "")[:2] in ("53", "58")


def cannot_write(exc: psycopg.Error) -> EnvironmentProblem:
    """The database's disk is full or failing: the transaction was rolled back (nothing half-written), and the
    machine must be fixed before going on."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EnvironmentProblem(f"the database cannot write: {first}; nothing of this step was stored. Free space on "
                              "the database's disk (or fix it), then run the command again")


# Called with (url, schema version now, version it will migrate to) before an existing library is migrated.
BeforeMigrate = Callable[[str, int, int], None]


class Database:
    def __init__(self, settings: Settings, *, before_migrate: BeforeMigrate | None = None) -> None:
        self.settings = settings
        self.before_migrate = before_migrate
        self.embedded: EmbeddedServer | None = None
        self.url: str | None = None
        self.pool: ConnectionPool | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def open(self) -> Database:
        if self.pool is not None:
            return self
        if self.settings.uses_embedded_db:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.embedded = EmbeddedServer.of(self.settings, keep_running=self.settings.embedded_keep_running)
            self.embedded.acquire(EMBEDDED_DB_NAME)
            self.url = self.embedded.url(EMBEDDED_DB_NAME)
        else:
            assert self.settings.database_url is not None
            self.url = self.settings.database_url
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                todo, done = migrations.pending(conn), migrations.applied(conn)
                if todo and done and self.before_migrate is not None:  # an existing library, a newer photoscout
                    migrations.refuse_newer(conn)
                    self.before_migrate(self.url, max(done), todo[-1].version)
                for mig in migrations.migrate(conn):
                    log.info("applied migration %04d_%s", mig.version, mig.name)
                self._check_pgvector(conn)
        except psycopg.OperationalError as exc:
            self._release_embedded()
            if machine_failed(exc):
                raise cannot_write(exc) from exc
            raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact(self.url)}: {exc}".strip()) from exc
        except BaseException:
            self._release_embedded()
            raise
        self.pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.settings.pool_max_size,
            configure=configure_connection,
            reset=reset_connection,
            check=ConnectionPool.check_connection,
            reconnect_timeout=300,
            open=True,
            name="photoscout",
        )
        return self

    def revive(self) -> bool:
        """Start the embedded server again if it died (killed, crashed); True when it had to. The pool reconnects
        by itself; an external server is its own service's to restart."""
        if self.embedded is None or self.embedded.is_running():
            return False
        log.warning("the embedded PostgreSQL server is not running; starting it again")
        self.embedded.acquire(EMBEDDED_DB_NAME)
        return True

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self._release_embedded()

    def __enter__(self) -> Database:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- use --------------------------------------------------------------------------------------
    @contextmanager
    def connection(self, timeout: float = 60.0) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; the block runs in a transaction committed on success."""
        if self.pool is None:
            raise RuntimeError("Database is not open")
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield conn
        except psycopg.OperationalError as exc:
            if machine_failed(exc):
                raise cannot_write(exc) from exc
            raise DatabaseUnavailable(f"database connection failed: {exc}".strip()) from exc
        except psycopg.DataError as exc:  # a value the database cannot hold (a NUL character, an out-of-range number)
            raise InvalidParameter(f"a value was refused by the database: {exc}".strip()) from exc

    def describe(self) -> dict[str, Any]:
        with self.connection() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            version = pgvector_version(conn)
        return {
            "url": redact(self.url or ""),
            "embedded": self.embedded is not None,
            "server_version": row[0] if row else None,
            "pgvector_version": ".".join(map(str, version)) if version else None,
        }

    # -- internals ------------------------------------------------------------------------------
    def _check_pgvector(self, conn: psycopg.Connection) -> None:
        version = pgvector_version(conn)
        if version is None:
            raise DatabaseUnavailable("the pgvector extension is not installed in this database (run migrations)")
        if version < MIN_PGVECTOR:
            raise DatabaseUnavailable(
                f"pgvector {'.'.join(map(str, version))} is too old; photoscout needs >= "
                + ".".join(map(str, MIN_PGVECTOR))
            )

    def _release_embedded(self) -> None:
        if self.embedded is not None:
            self.embedded.release()
