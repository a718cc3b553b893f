"""``photoscout db dump FILE`` / ``db restore FILE``: the library in one file, and back.

The file is a tar archive:

* ``photoscout-backup.json``: when, which photoscout, schema version and PostgreSQL version, counts;
* ``database.dump``: ``pg_dump`` in its custom format (the embedded binaries; one consistent snapshot, taken while
  searches and jobs go on): photos, every model's outputs, the registry and its history, jobs, evaluations;
* ``decision-log.md``, the user's evaluation sets (``evalsets/``), and the artifacts of every model version that is
  not disabled (``models/``), so a restored library can search at once; thumbnails with ``thumbnails=True``.

Restore goes into a fresh home (or an empty external database): the files are extracted (only into the folders
they belong to), ``pg_restore`` recreates the tables and rebuilds every index, vector indexes included, and the
migrations of this photoscout bring an older dump up to date. Moving to a newer embedded PostgreSQL major version is
a dump with the old photoscout and a restore with the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from photoscout import __version__
from photoscout.common.errors import EnvironmentProblem, PhotoscoutError
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import EMBEDDED_DB_NAME, Database, migrations, scalar
from photoscout.database.embedded import EmbeddedServer, programs
from photoscout.models import artifacts
from photoscout.registry import decisions, lifecycle

META = "photoscout-backup.json"
DUMP = "database.dump"
FOLDERS = ("models", "evalsets", "thumbnails")  # what a backup may put into a home


def _run(program: str, *args: str) -> None:
    """pg_dump or pg_restore of the embedded PostgreSQL (client programs: they run as any user)."""
    proc = subprocess.run([str(programs() / program), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PhotoscoutError(f"{program} failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")


def dump(db: Database, settings: Settings, target: Path, *, thumbnails: bool = False,
         progress: Progress | None = None) -> dict[str, Any]:
    """Write the library to ``target`` (a new file; written beside, then renamed)."""
    progress = progress or NoProgress()
    target = target.expanduser().absolute()
    if target.exists():
        raise PhotoscoutError(f"{target} exists; choose a new file name")
    assert db.url is not None
    with db.connection() as conn:
        server_version = conn.execute("SHOW server_version").fetchone()
        meta = {"photoscout": __version__, "created_at": datetime.now(UTC).isoformat(),
                "schema": max(migrations.applied(conn)),
                "postgresql": str(server_version[0]) if server_version else None,
                "photos": scalar(conn, "SELECT count(*) FROM photos"),
                "embeddings": scalar(conn, "SELECT count(*) FROM photo_embeddings"),
                "models": [m.ref for m in lifecycle.list_models(db) if m.status != "disabled"]}
    work = target.with_name(f".{target.name}.partial")
    try:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            progress.phase("dumping the database", None)
            _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}/{DUMP}",
                 f"--dbname={db.url}")
            Path(tmp, META).write_text(json.dumps(meta, indent=2))
            files = [(Path(tmp, META), META), (Path(tmp, DUMP), DUMP)]
            if decisions.path(settings).is_file():
                files.append((decisions.path(settings), decisions.FILE_NAME))
            evalsets = settings.home / "evalsets"
            files += [(p, f"evalsets/{p.name}") for p in sorted(evalsets.glob("*.toml"))] if evalsets.is_dir() else []
            for m in lifecycle.list_models(db):
                folder = m.artifact_dir(settings)
                if m.status != "disabled" and folder.is_dir():
                    files += [(p, f"models/{p.relative_to(settings.models_dir).as_posix()}")
                              for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
            if thumbnails and settings.thumbnails_dir.is_dir():
                files += [(p, f"thumbnails/{p.relative_to(settings.thumbnails_dir).as_posix()}")
                          for p in sorted(settings.thumbnails_dir.glob("*/*.jpg"))]
            progress.phase("writing the backup", len(files))
            with tarfile.open(work, "w") as tar:
                for path, name in files:
                    tar.add(path, arcname=name, recursive=False)
                    progress.advance()
        work.rename(target)
    except OSError as exc:
        work.unlink(missing_ok=True)
        raise EnvironmentProblem(f"cannot write the backup {target}: {exc.strerror}") from exc
    except BaseException:
        work.unlink(missing_ok=True)
        raise
    return {**meta, "file": str(target), "bytes": target.stat().st_size, "files": len(files)}


UPGRADE_PREFIX = "before-upgrade-"


def upgrade_snapshots(settings: Settings) -> list[Path]:
    """The dumps taken before upgrades, oldest first (``data/backups/before-upgrade-*.tar``)."""
    return sorted((settings.data_dir / "backups").glob(f"{UPGRADE_PREFIX}*.tar"))


def snapshot_before_upgrade(settings: Settings, url: str, schema: int, target: int) -> Path | None:
    """A ``db dump``-format archive of the database (and decision log, evaluation sets; the models stay in models/)
    taken before a newer photoscout migrates it from ``schema`` to ``target``; the last ``upgrade_backups`` are
    kept. ``db restore`` reads it into a fresh home. Refuses the upgrade (nothing migrated) when it cannot be
    written."""
    if settings.upgrade_backups == 0:
        return None
    folder = settings.data_dir / "backups"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target_file = folder / f"{UPGRADE_PREFIX}{schema:04d}-to-{target:04d}-{stamp}.tar"
    work = target_file.with_name(f".{target_file.name}.partial")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with psycopg.connect(url, connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            meta = {"photoscout": __version__, "created_at": datetime.now(UTC).isoformat(), "schema": schema,
                    "postgresql": str(version[0]) if version else None,
                    "photos": scalar(conn, "SELECT count(*) FROM photos"),
                    "reason": f"taken before upgrading the schema from {schema:04d} to {target:04d}"}
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}/{DUMP}",
                 f"--dbname={url}")
            Path(tmp, META).write_text(json.dumps(meta, indent=2))
            files = [(Path(tmp, META), META), (Path(tmp, DUMP), DUMP)]
            if decisions.path(settings).is_file():
                files.append((decisions.path(settings), decisions.FILE_NAME))
            evalsets = settings.home / "evalsets"
            files += [(p, f"evalsets/{p.name}") for p in sorted(evalsets.glob("*.toml"))] if evalsets.is_dir() else []
            with tarfile.open(work, "w") as tar:
                for path, name in files:
                    tar.add(path, arcname=name, recursive=False)
        work.rename(target_file)
    except (OSError, PhotoscoutError, psycopg.Error) as exc:
        work.unlink(missing_ok=True)
        raise EnvironmentProblem(
            f"photoscout {__version__} upgrades this library's schema from {schema:04d} to {target:04d} and first "
            f"dumps it to {folder}, which failed ({getattr(exc, 'strerror', None) or exc}); nothing was migrated. "
            "Free space there, or set upgrade_backups = 0 to upgrade without a dump") from exc
    for old in upgrade_snapshots(settings)[:-settings.upgrade_backups]:
        old.unlink(missing_ok=True)
    return target_file


def read_meta(source: Path) -> dict[str, Any]:
    try:
        with tarfile.open(source) as tar:
            member = tar.extractfile(META)
            if member is None:
                raise KeyError(META)
            data: dict[str, Any] = json.loads(member.read())
            return data
    except (OSError, tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise PhotoscoutError(f"{source}: not a photoscout backup ({exc})") from exc


def restore(settings: Settings, source: Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Restore a backup into this home's database, which must be empty (a fresh home, or an empty external
    database). Returns what was restored."""
    progress = progress or NoProgress()
    source = source.expanduser().absolute()
    meta = read_meta(source)
    known = max(m.version for m in migrations.available())
    if int(meta["schema"]) > known:
        raise PhotoscoutError(f"{source} was made by a newer photoscout (schema {meta['schema']:04d}; this one "
                              f"knows up to {known:04d}): upgrade photoscout first")
    settings.ensure_dirs()
    url, server = _empty_database(settings)
    try:
        with tarfile.open(source) as tar, tempfile.TemporaryDirectory(dir=settings.data_dir) as tmp:
            members = tar.getmembers()
            progress.phase("restoring files", len(members))
            for member in members:
                _extract(tar, member, settings, Path(tmp))
                progress.advance()
            progress.phase("restoring the database (indexes are rebuilt)", None)
            _run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={url}",
                 str(Path(tmp) / DUMP))
    finally:
        if server is not None:
            server.release()
    with Database(settings) as db, db.connection() as conn:  # newer migrations of this photoscout, if any
        conn.execute("ANALYZE")
        restored = {"photos": scalar(conn, "SELECT count(*) FROM photos"),
                    "embeddings": scalar(conn, "SELECT count(*) FROM photo_embeddings")}
    return {**meta, "restored": restored, "file": str(source)}


def _empty_database(settings: Settings) -> tuple[str, EmbeddedServer | None]:
    """The database to restore into, checked to hold no photoscout tables yet."""
    server = None
    if settings.uses_embedded_db:
        server = EmbeddedServer.of(settings)
        server.acquire(EMBEDDED_DB_NAME)
        url = server.url(EMBEDDED_DB_NAME)
    else:
        assert settings.database_url is not None
        url = settings.database_url
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            used = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL OR "
                                "to_regclass('photos') IS NOT NULL").fetchone()
    except psycopg.OperationalError as exc:
        if server is not None:
            server.release()
        raise PhotoscoutError(f"cannot reach the database to restore into: {exc}") from exc
    if used and used[0]:
        if server is not None:
            server.release()
        raise PhotoscoutError("this home's database already holds a library; restore into a fresh home "
                              "(photoscout --home NEW_FOLDER db restore FILE) or an empty database")
    return url, server


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, settings: Settings, tmp: Path) -> None:
    """Only regular files, only where they belong: the dump and metadata to ``tmp``, the decision log to data/,
    the rest under its folder of the home (no absolute paths, no ``..``, no links)."""
    if not member.isfile():
        return
    name = member.name
    if name in (META, DUMP):
        where = artifacts.contained(tmp, name)
    elif name == decisions.FILE_NAME:
        where = decisions.path(settings)
    else:
        folder, _, rest = name.partition("/")
        if folder not in FOLDERS or not rest:
            return
        base = {"models": settings.models_dir, "evalsets": settings.home / "evalsets",
                "thumbnails": settings.thumbnails_dir}[folder]
        where = artifacts.contained(base, rest)
    where.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        return
    with source, open(where, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    os.utime(where, (member.mtime, member.mtime))  # manifests record modification times
