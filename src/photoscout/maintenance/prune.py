"""Pruning one model version: its stored outputs, its vector index and its artifact files go; its registry entry,
status history and evaluation results stay (status ``disabled``, reason ``pruned``), so the record of what was
active when, and why, survives. Refused for the active version and while a job for it is pending or running."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import psycopg

from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.database.schema import OUTPUT_TABLES
from photoscout.errors import PhotoscoutError
from photoscout.registry import artifacts, decisions, lifecycle


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
    if model.status == "active":
        raise PhotoscoutError(f"{model.ref} is the active {model.type} model; promote or roll back to another "
                              "version first")
    with db.connection() as conn:
        jobs = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE model_id = %s AND status IN "
                                           "('pending', 'running', 'paused')", (model.id,))]
    if jobs:
        raise PhotoscoutError(f"{model.ref} has unfinished job(s) {', '.join(map(str, jobs))}; "
                              "cancel them first (photoscout jobs cancel ID)")
    target = lifecycle.rollback_target(db, model.type, model.purpose)
    index_bytes = indexes.size_bytes(db, model)
    rows: dict[str, int] = {}
    table_bytes = 0
    with db.connection() as conn:
        for table in OUTPUT_TABLES:
            row = conn.execute(f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t "
                               "WHERE model_id = %s", (model.id,)).fetchone()
            assert row is not None
            rows[table] = int(row[0])
            table_bytes += int(row[1])
        for table in OUTPUT_TABLES:  # one transaction: all the version's outputs go, or none
            conn.execute(f"DELETE FROM {table} WHERE model_id = %s", (model.id,))
        conn.execute("DELETE FROM jobs WHERE model_id = %s", (model.id,))
    indexes.drop(db, model)
    folder = model.artifact_dir(settings)
    artifact_bytes = artifacts.size_bytes(folder)
    if folder.exists():
        shutil.rmtree(folder)
    if model.status != "disabled":
        lifecycle.disable(db, model.ref, reason=f"pruned: {reason}", log=False)  # the prune entry says it all
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
