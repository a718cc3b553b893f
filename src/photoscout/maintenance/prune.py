"""Pruning one model version: its stored outputs, its vector index and its artifact files go; its registry entry,
status history and evaluation results stay (status ``disabled``, reason ``pruned``), so the record of what was
active when, and why, survives. Refused for the active version and while a job for it is pending or running."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import psycopg

from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.database.schema import OUTPUT_TABLES
from photoscout.errors import PhotoscoutError
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


def prune_model(db: Database, settings: Settings, ref: str, *, reason: str = "pruned by user") -> PruneReport:
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
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:  # VACUUM cannot run in a transaction
        conn.execute("VACUUM (ANALYZE) photo_embeddings")  # the freed pages become reusable
    return report


def _refuse_while_working(conn: Any, model: RegisteredModel) -> None:
    """Refused while a job of the version may still run: unfinished jobs, or a unit a worker still holds (a
    cancelled job's unit in flight)."""
    jobs = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE model_id = %s AND status IN "
                                       "('pending', 'running', 'paused')", (model.id,))]
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
