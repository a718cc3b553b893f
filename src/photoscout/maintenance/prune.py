"""Reclaiming disk on the user's word.

``prune_model``: one model version's stored outputs, its vector index and its artifact files go; its registry entry,
status history and evaluation results stay (status ``disabled``, reason ``pruned``), so the record of what was
active when, and why, survives. Refused for the active version and while a job for it is pending or running.

``plan`` / ``run``: the library as a whole (``photoscout prune``): deprecated versions (never the active one nor the
current rollback target unless named), disabled versions' leftover outputs and artifacts, thumbnails and previews no
photo uses any more, and - only when asked - photos missing for longer than a given time. ``plan`` is what a dry
run shows; ``run`` removes exactly that, then vacuums the tables it touched and measures the bytes freed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from photoscout.common.errors import PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.database.schema import OUTPUT_TABLES
from photoscout.jobs.states import UNFINISHED, values
from photoscout.models import artifacts
from photoscout.registry import decisions, lifecycle
from photoscout.registry.lifecycle import RegisteredModel


@dataclass
class PruneReport:
    model: str
    rows: dict[str, int]
    table_bytes: int
    index_bytes: int
    artifact_bytes: int
    was_rollback_target: bool

    @property
    def total_bytes(self) -> int:
        return self.table_bytes + self.index_bytes + self.artifact_bytes

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "total_bytes": self.total_bytes}


def prune_model(db: Database, settings: Settings, ref: str, *, reason: str = "pruned by user",
                vacuum: bool = True) -> PruneReport:
    model = lifecycle.get(db, ref)
    folder = model.artifact_dir(settings)  # inside models/, or refused before anything is deleted
    if model.status == "active":
        raise PhotoscoutError(f"{model.ref} is the active {model.type} model; promote or roll back to another "
                              "version first")
    target = lifecycle.rollback_target(db, model.type, model.purpose)
    index_bytes = indexes.size_bytes(db, model)
    rows: dict[str, int] = {}
    table_bytes = 0
    with db.connection() as conn:
        # The version's row is locked: writers of outputs take it shared (``analysis.store``), so a batch in
        # flight either commits before the delete (and its rows go too) or finds the version disabled.
        conn.execute("SELECT 1 FROM model_registry WHERE id = %s FOR UPDATE", (model.id,))
        _refuse_while_working(conn, model)
        for table in OUTPUT_TABLES:
            row = conn.execute(f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t "
                               "WHERE model_id = %s", (model.id,)).fetchone()
            assert row is not None
            rows[table] = int(row[0])
            table_bytes += int(row[1])
        for table in OUTPUT_TABLES:  # one transaction: all the version's outputs go, or none
            conn.execute(f"DELETE FROM {table} WHERE model_id = %s", (model.id,))
        conn.execute("DELETE FROM jobs WHERE model_id = %s", (model.id,))
        if model.status != "disabled":  # the prune entry of the decision log says it all
            lifecycle.set_status_in(conn.cursor(), model, "disabled", f"pruned: {reason}")
    indexes.drop(db, model)
    artifact_bytes = artifacts.size_bytes(folder)
    if folder.is_symlink():  # a link inside models/: the link goes, not what it points to
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    report = PruneReport(model.ref, rows, table_bytes, index_bytes, artifact_bytes,
                         target is not None and target.id == model.id)
    decisions.append(settings, f"pruned {model.ref} ({model.type})", [
        f"reason: {reason}",
        f"reclaimed {report.total_bytes / 1e6:.1f} MB: outputs {table_bytes / 1e6:.1f} MB "
        f"({sum(rows.values())} rows), index {index_bytes / 1e6:.1f} MB, artifacts {artifact_bytes / 1e6:.1f} MB",
        "it was the rollback target: rollback to it is no longer possible" if report.was_rollback_target else
        "it was not the rollback target",
        "registry entry, history and evaluation results are kept (status disabled)",
    ])
    if vacuum:
        _vacuum(db, [t for t, n in rows.items() if n])
    return report


def _vacuum(db: Database, tables: list[str], *, full: bool = False) -> None:
    """Make the pages of deleted rows reusable (``full``: rewrite the tables, giving the space back to the file
    system; each table is locked while it is rewritten, so searches wait for it)."""
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:  # VACUUM cannot run in a transaction
        for table in dict.fromkeys(tables):
            conn.execute(f"VACUUM ({'FULL, ' if full else ''}ANALYZE) {table}")


def _refuse_while_working(conn: Any, model: RegisteredModel) -> None:
    """Refused while a job of the version may still run: unfinished jobs, or a unit a worker still holds (a
    cancelled job's unit in flight)."""
    jobs = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE model_id = %s AND status = ANY(%s)",
                                       (model.id, values(UNFINISHED)))]
    if jobs:
        raise PhotoscoutError(f"{model.ref} has unfinished job(s) {', '.join(map(str, jobs))}; "
                              "cancel them first (photoscout jobs cancel ID)")
    busy = conn.execute("SELECT u.job_id, max(u.lease_expires_at) FROM job_units u JOIN jobs j ON j.id = u.job_id "
                        "WHERE j.model_id = %s AND u.state = 'leased' AND u.lease_expires_at > now() "
                        "GROUP BY u.job_id", (model.id,)).fetchall()
    if busy:
        raise PhotoscoutError(f"a worker is still finishing work of {model.ref} (job "
                              f"{', '.join(str(r[0]) for r in busy)}, lease until {max(r[1] for r in busy):%H:%M:%S});"
                              " try again when it is done")


# -- the library as a whole -----------------------------------------------------------------------------------
@dataclass
class PrunePlan:
    versions: list[dict[str, Any]] = field(default_factory=list)  # model, status, why, rows, bytes
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # disabled models' folders still on disk
    thumbnails: list[str] = field(default_factory=list)  # relative to data/thumbnails (and previews/)
    thumbnail_bytes: int = 0
    previews: list[str] = field(default_factory=list)
    preview_bytes: int = 0
    missing_photos: list[int] = field(default_factory=list)
    kept: list[dict[str, str]] = field(default_factory=list)  # what was left, and why

    @property
    def empty(self) -> bool:
        return not (self.versions or self.artifacts or self.thumbnails or self.previews or self.missing_photos)

    @property
    def bytes(self) -> int:
        return (sum(v["bytes"] for v in self.versions) + sum(a["bytes"] for a in self.artifacts)
                + self.thumbnail_bytes + self.preview_bytes)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "bytes": self.bytes}


def plan(db: Database, settings: Settings, *, include: list[str] | None = None,
         missing_for_days: float | None = None) -> PrunePlan:
    """What ``run`` would remove (nothing is changed). ``include``: versions to prune although they are the rollback
    target or in staging (the active one never: switch first). ``missing_for_days``: also photos whose files have
    been missing for longer (never by default)."""
    from photoscout.maintenance.disk import folder_bytes, versions

    named = {lifecycle.get(db, ref).ref for ref in include or []}
    out = PrunePlan()
    usage = {v.model: v for v in versions(db, settings)}
    with db.connection() as conn:
        working = {r[0] for r in conn.execute("SELECT model_id FROM jobs WHERE status = ANY(%s) OR id IN "
                                              "(SELECT job_id FROM job_units WHERE state = 'leased' AND "
                                              "lease_expires_at > now())", (values(UNFINISHED),))}
    for m in lifecycle.list_models(db):
        u = usage[m.ref]
        if m.id in working and m.status != "active":
            out.kept.append({"model": m.ref, "why": "a job of it is unfinished (cancel it first)"})
            continue
        target = lifecycle.rollback_target(db, m.type, m.purpose)
        has_outputs = any(u.rows.values()) or indexes.exists(db, m)
        if m.status == "active":
            if m.ref in named:
                raise PhotoscoutError(f"{m.ref} is the active {m.type} model; promote or roll back to another "
                                      "version first")
            continue
        if m.ref in named or (m.status == "deprecated" and (target is None or target.id != m.id)) or (
                m.status == "disabled" and has_outputs):
            why = "named" if m.ref in named else m.status
            out.versions.append({"model": m.ref, "status": m.status, "why": why, "rows": sum(u.rows.values()),
                                 "bytes": u.total_bytes})
        elif m.status == "disabled":
            try:
                folder = m.artifact_dir(settings)
            except artifacts.ArtifactError:
                continue
            if folder.exists():
                out.artifacts.append({"model": m.ref, "path": str(folder), "bytes": folder_bytes(folder)[1]})
        elif m.status == "deprecated":
            out.kept.append({"model": m.ref, "why": "the rollback target (name it to prune it)"})
        elif has_outputs:
            out.kept.append({"model": m.ref, "why": "in staging (name it to prune it)"})
    with db.connection() as conn:
        if missing_for_days is not None:
            out.missing_photos = [r[0] for r in conn.execute(
                "SELECT id FROM photos WHERE status = 'missing' AND missing_since < now() - make_interval(secs => %s) "
                "ORDER BY id", (missing_for_days * 86400,))]
        used = {r[0] for r in conn.execute("SELECT thumbnail FROM photos WHERE thumbnail IS NOT NULL AND "
                                           "NOT (id = ANY(%s))", (out.missing_photos,))}
    for rel, size in _files(settings.thumbnails_dir):
        if rel not in used:
            out.thumbnails.append(rel)
            out.thumbnail_bytes += size
    previews = settings.data_dir / "previews"
    used_hashes = {Path(t).stem for t in used}
    for rel, size in _files(previews):
        if Path(rel).stem.split("-")[0] not in used_hashes:
            out.previews.append(rel)
            out.preview_bytes += size
    return out


def _files(folder: Path) -> list[tuple[str, int]]:
    found = []
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            if name.startswith("."):  # a thumbnail being written
                continue
            try:
                found.append((path.relative_to(folder).as_posix(), path.lstat().st_size))
            except OSError:
                pass
    return found


@dataclass
class PruneResult:
    removed: PrunePlan
    reports: list[PruneReport]
    footprint_before: int
    footprint_after: int
    compacted: bool

    @property
    def freed_bytes(self) -> int:
        """Measured: the database's size plus the home's files, before minus after."""
        return self.footprint_before - self.footprint_after

    @property
    def deleted_row_bytes(self) -> int:
        """Bytes of the rows deleted. Without ``compact`` PostgreSQL keeps most of their pages for new rows (they
        are free inside the database, not on the disk)."""
        return sum(r.table_bytes for r in self.reports)

    def as_dict(self) -> dict[str, Any]:
        return {"removed": self.removed.as_dict(), "versions": [r.as_dict() for r in self.reports],
                "footprint_before": self.footprint_before, "footprint_after": self.footprint_after,
                "freed_bytes": self.freed_bytes, "deleted_row_bytes": self.deleted_row_bytes,
                "compacted": self.compacted}


def footprint(db: Database, settings: Settings) -> int:
    """What the library takes: the database's size and the files under the home."""
    from photoscout.maintenance.disk import folder_bytes

    with db.connection() as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0] if row else 0) + folder_bytes(settings.data_dir / "thumbnails")[1] + folder_bytes(
        settings.data_dir / "previews")[1] + folder_bytes(settings.models_dir)[1]


def run(db: Database, settings: Settings, chosen: PrunePlan, *, reason: str = "pruned by user",
        compact: bool = False) -> PruneResult:
    """Remove what ``chosen`` (a ``plan``) lists, vacuum the touched tables (``compact``: rewrite them, giving the
    space back to the file system) and measure the bytes freed."""
    before = footprint(db, settings)
    reports = [prune_model(db, settings, v["model"], reason=reason, vacuum=False) for v in chosen.versions]
    touched = [t for r in reports for t, n in r.rows.items() if n]
    for item in chosen.artifacts:
        model = lifecycle.get(db, item["model"])
        folder = model.artifact_dir(settings)  # inside models/, or refused
        if model.status == "disabled":
            if folder.is_symlink():
                folder.unlink()
            elif folder.exists():
                shutil.rmtree(folder)
    if chosen.missing_photos:
        with db.connection() as conn:  # outputs go with them (ON DELETE CASCADE)
            conn.execute("DELETE FROM photos WHERE id = ANY(%s) AND status = 'missing'", (chosen.missing_photos,))
        touched += ["photos", *OUTPUT_TABLES]
    for folder, names in ((settings.thumbnails_dir, chosen.thumbnails),
                          (settings.data_dir / "previews", chosen.previews)):
        for rel in names:
            artifacts.contained(folder, rel).unlink(missing_ok=True)
    if touched or compact:
        _vacuum(db, touched or list(OUTPUT_TABLES), full=compact)
    if not chosen.empty:
        decisions.append(settings, "pruned the library", [
            f"reason: {reason}",
            f"versions: {', '.join(v['model'] for v in chosen.versions) or 'none'}",
            f"artifact folders of disabled models: {len(chosen.artifacts)}; unused thumbnails: "
            f"{len(chosen.thumbnails)}; unused previews: {len(chosen.previews)}; photos missing for long: "
            f"{len(chosen.missing_photos)}"])
    return PruneResult(chosen, reports, before, footprint(db, settings), compact)
