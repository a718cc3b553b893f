"""``photoscout doctor``: is everything well, and if not, what fixes it.

Each check returns findings (severity, what, the command that fixes it). Severities: ``error`` (something does not
work: search, a model, the database), ``warning`` (something will bite: a stuck job, low disk, photos without
outputs), ``info`` (facts: versions, devices). Healthy means no error and no warning.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from photoscout.config import Settings
from photoscout.database import Database, indexes, migrations, scalar
from photoscout.database.schema import shown
from photoscout.database.vectors import pgvector_version
from photoscout.jobs.states import JobStatus
from photoscout.library import roots
from photoscout.models import MODEL_TYPES, artifacts
from photoscout.registry import lifecycle

LOW_DISK_FRACTION = 0.05
LOW_DISK_BYTES = 2_000_000_000
KIND = {"embedding": "embed", "detector": "detect", "ocr": "ocr", "captioning": "caption", "few_shot": "features"}


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    check: str
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def healthy(findings: list[Finding]) -> bool:
    return not any(f.severity in ("error", "warning") for f in findings)


def unreachable(settings: Settings, why: str) -> list[Finding]:
    """What the doctor says when the database cannot even be opened."""
    fix = "photoscout db status (check database_url)" if settings.database_url else "photoscout db start"
    return [Finding("error", "database", f"the database cannot be reached: {why}", fix)]


def examine(db: Database, settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings += check(db, settings)
        except Exception as exc:  # noqa: BLE001 - one check failing must not hide the others
            findings.append(Finding("error", check.__name__.lstrip("_"), f"the check itself failed: {exc}"))
    return findings


def _database(db: Database, settings: Settings) -> list[Finding]:
    with db.connection() as conn:
        row = conn.execute("SHOW server_version").fetchone()
        version = pgvector_version(conn)
        pending = migrations.pending(conn)
    out = [Finding("info", "database", f"PostgreSQL {row[0] if row else '?'}, pgvector "
                   f"{'.'.join(map(str, version)) if version else 'missing'}"
                   f" ({'embedded' if settings.uses_embedded_db else 'external'})")]
    if pending:
        out.append(Finding("error", "migrations", f"{len(pending)} schema migration(s) not applied",
                           "run any photoscout command with a user allowed to change the schema"))
    return out


def _active_models(db: Database, settings: Settings) -> list[Finding]:
    out = []
    for type_ in MODEL_TYPES:
        if lifecycle.active(db, type_) is not None:
            continue
        if type_ == "embedding":
            out.append(Finding("error", "models", "no active embedding model: search cannot work",
                               "photoscout models install-builtin"))
        elif type_ in ("ocr", "detector", "few_shot"):
            out.append(Finding("info", "models", f"no active {type_} model (optional)"))
    return out


def _coverage_and_indexes(db: Database, settings: Settings) -> list[Finding]:
    out = []
    with db.connection() as conn:
        photos = scalar(conn, f"SELECT count(*) FROM photos p WHERE {shown()}")
        for m in [m for m in lifecycle.list_models(db) if m.status == "active"]:
            lacking = scalar(conn, f"SELECT count(*) FROM photos p WHERE {shown()} AND NOT EXISTS (SELECT 1 "
                             "FROM photo_model_runs r WHERE r.photo_id = p.id AND r.model_id = %s)", (m.id,))
            if lacking:
                severity = "error" if m.type == "embedding" and lacking == photos else "warning"
                out.append(Finding(severity, "coverage", f"{m.ref} (active {m.type}) has not run on {lacking} of "
                                   f"{photos} photos", f"photoscout jobs start {KIND[m.type]} --model {m.ref} "
                                                       "--missing-only"))
            if m.type == "embedding":
                dims = conn.execute("SELECT DISTINCT coalesce(vector_dims(embedding), vector_dims("
                                    "embedding_half::vector)) FROM photo_embeddings WHERE model_id = %s",
                                    (m.id,)).fetchall()
                wrong = [d[0] for d in dims if d[0] != int(m.config.get("dim", 0))]
                if wrong:
                    out.append(Finding("error", "embeddings", f"{m.ref} has vectors of dimension "
                                       f"{', '.join(map(str, wrong))}, not {m.config.get('dim')}",
                                       f"photoscout jobs start embed --model {m.ref}"))
                if photos - lacking and not indexes.exists(db, m):
                    out.append(Finding("error", "index", f"{m.ref} has no vector index: searches scan every vector",
                                       f"photoscout models reindex {m.ref}"))
    return out


def _orphans(db: Database, settings: Settings) -> list[Finding]:
    from photoscout.database.schema import OUTPUT_TABLES

    out = []
    with db.connection() as conn:
        for m in [m for m in lifecycle.list_models(db) if m.status == "disabled"]:
            rows = sum(scalar(conn, f"SELECT count(*) FROM {t} WHERE model_id = %s", (m.id,)) for t in OUTPUT_TABLES)
            if rows:
                out.append(Finding("warning", "orphans", f"{m.ref} is disabled but {rows} rows of its outputs "
                                   "remain", "photoscout prune"))
    return out


def _artifacts(db: Database, settings: Settings) -> list[Finding]:
    out = []
    for m in [m for m in lifecycle.list_models(db) if m.status != "disabled"]:
        try:
            problems = artifacts.verify(m.artifact_dir(settings), quick=True)
        except artifacts.ArtifactError as exc:
            problems = [artifacts.Problem(m.ref, str(exc))]
        if problems:
            builtin = m.backend in ("conse", "rapidocr", "tesseract", "mtcnn", "effnet-prototypes", "random-vectors")
            fix = f"photoscout models install-builtin {m.ref}" if builtin else \
                f"photoscout models register {m.ref} --from FOLDER (a fresh copy of its files)"
            out.append(Finding("error" if m.status == "active" else "warning", "artifacts",
                               f"{m.ref}: " + "; ".join(map(str, problems[:3])), fix))
    return out


def _jobs(db: Database, settings: Settings) -> list[Finding]:
    out = []
    with db.connection() as conn:
        for job_id, model, expired, leased, pending in conn.execute(
            "SELECT j.id, m.name || '@' || m.version, "
            "count(*) FILTER (WHERE u.state = 'leased' AND u.lease_expires_at < now()), "
            "count(*) FILTER (WHERE u.state = 'leased' AND u.lease_expires_at >= now()), "
            "count(*) FILTER (WHERE u.state = 'pending') FROM jobs j JOIN model_registry m ON m.id = j.model_id "
            "JOIN job_units u ON u.job_id = j.id WHERE j.status = %s GROUP BY j.id, m.name, m.version",
            (JobStatus.RUNNING.value,)):
            if expired or (pending and not leased):
                out.append(Finding("warning", "jobs", f"job {job_id} ({model}) is running but no worker is working "
                                   f"on it ({expired} unit(s) with an expired lease, {pending} waiting)",
                                   f"photoscout jobs run {job_id}  (or start a worker: photoscout worker)"))
    return out


def _broker(db: Database, settings: Settings) -> list[Finding]:
    if not settings.broker_url:
        return []
    from kombu import Connection

    from photoscout.config import hide_password

    try:
        with Connection(settings.broker_url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the finding
        return [Finding("error", "broker", f"the Celery broker {hide_password(settings.broker_url)} cannot be "
                        f"reached: {type(exc).__name__}: {exc}",
                        "start Redis or RabbitMQ, or fix broker_url (jobs with --executor celery wait meanwhile)")]
    return [Finding("info", "broker", f"the Celery broker {hide_password(settings.broker_url)} answers")]


def _disk(db: Database, settings: Settings) -> list[Finding]:
    out = []
    places = [settings.home] + ([settings.pgdata_dir] if settings.uses_embedded_db else [])
    for place in places:
        du = shutil.disk_usage(place if place.exists() else settings.home)
        if du.free < LOW_DISK_BYTES or du.free < du.total * LOW_DISK_FRACTION:
            out.append(Finding("warning", "disk", f"only {du.free / 1e9:.1f} GB free on the volume of {place}",
                               "photoscout disk; photoscout prune --dry-run"))
    return out


def _thumbnails(db: Database, settings: Settings) -> list[Finding]:
    out = []
    with db.connection() as conn:
        stored = conn.execute("SELECT DISTINCT thumbnail FROM photos WHERE thumbnail IS NOT NULL AND status = 'ok'")
        lacking = sum(1 for (t,) in stored if not (settings.thumbnails_dir / t).is_file())
        used = {t for (t,) in conn.execute("SELECT thumbnail FROM photos WHERE thumbnail IS NOT NULL")}
        missing = scalar(conn, "SELECT count(*) FROM photos WHERE status = 'missing'")
    if lacking:
        out.append(Finding("warning", "thumbnails", f"{lacking} photos have no thumbnail file",
                           "photoscout index FOLDER --repair-thumbnails"))
    orphaned = 0
    if settings.thumbnails_dir.is_dir():
        for path in settings.thumbnails_dir.glob("*/*.jpg"):
            if path.relative_to(settings.thumbnails_dir).as_posix() not in used:
                orphaned += 1
    if orphaned:
        out.append(Finding("warning", "thumbnails", f"{orphaned} thumbnails belong to no photo", "photoscout prune"))
    if missing:
        out.append(Finding("info", "photos", f"{missing} photos' files are gone (kept as missing)",
                           "photoscout index FOLDER (if they are back), or photoscout prune --missing-for DAYS"))
    return out


def _devices(db: Database, settings: Settings) -> list[Finding]:
    from photoscout.models.onnx_runtime import device_report

    return [Finding("info", "device", device_report(settings.device))]


def _roots(db: Database, settings: Settings) -> list[Finding]:
    """A root held back by its last scan (it looked unmounted): nothing was marked missing; say how to confirm."""
    return [Finding("warning", "roots", r["message"], f"photoscout index {r['path']} --confirm-missing")
            for r in roots.held_back(db)]


CHECKS: list[Callable[[Database, Settings], list[Finding]]] = [
    _database, _active_models, _coverage_and_indexes, _orphans, _artifacts, _jobs, _broker, _disk, _thumbnails,
    _devices, _roots]
