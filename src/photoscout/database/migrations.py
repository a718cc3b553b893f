"""Versioned SQL migrations: ``sql/NNNN_name.sql``, applied in order, recorded in ``schema_migrations``. A PostgreSQL
advisory lock keeps two processes from migrating at once, so an older home upgrades itself the first time a newer
photoscout opens it. The pending migrations of one upgrade are applied in one transaction: an upgrade interrupted
(a kill, a power cut, a failing statement) leaves the schema as it was, usable by the old photoscout, and the new one
applies them again at its next start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from photoscout.common.errors import DatabaseUnavailable

_LOCK_KEY = 0x70686F74  # "phot"
_NAME_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in (resources.files("photoscout.database") / "sql").iterdir():
        m = _NAME_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    return found


def applied(conn: psycopg.Connection) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def pending(conn: psycopg.Connection) -> list[Migration]:
    done = applied(conn)
    return [m for m in available() if m.version not in done]


def refuse_newer(conn: psycopg.Connection) -> None:
    """A database whose schema a newer photoscout wrote (a downgrade) is not used: this code would misread it."""
    known = max(m.version for m in available())
    newest = max(applied(conn), default=0)
    if newest > known:
        raise DatabaseUnavailable(
            f"the database's schema is at version {newest:04d}, newer than this photoscout knows (up to {known:04d}): "
            "a newer photoscout wrote it. Upgrade photoscout, or restore a backup made with this version.")


def _name(mig: Migration | None) -> str:
    return f"{mig.version:04d}_{mig.name}" if mig else "(none)"


def migrate(conn: psycopg.Connection, *, target: int | None = None) -> list[Migration]:
    """Apply pending migrations (up to ``target``) and return those applied. ``conn`` must be in autocommit."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        refuse_newer(conn)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = []
        mig: Migration | None = None
        try:
            with conn.transaction():  # all of this upgrade, or none of it
                for mig in pending(conn):
                    if target is not None and mig.version > target:
                        break
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (mig.version, mig.name)
                    )
                    done.append(mig)
        except psycopg.errors.FeatureNotSupported as exc:
            raise DatabaseUnavailable(f"migration {_name(mig)} failed (nothing of this upgrade was applied): "
                                      f"{exc}") from exc
        except (psycopg.errors.UndefinedFile, psycopg.errors.InsufficientPrivilege) as exc:
            raise DatabaseUnavailable(
                f"migration {_name(mig)} failed (nothing of this upgrade was applied): {exc}".rstrip()
                + "\nphotoscout needs the pgvector extension (>= 0.7) installed in this PostgreSQL server, and a"
                " role allowed to CREATE EXTENSION vector (or an administrator who ran it once)."
            ) from exc
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
