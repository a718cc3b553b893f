"""Writing what models produced for a batch of photos, idempotently: every output is an upsert keyed by (photo,
model version), so a retried batch overwrites and never duplicates; detections are replaced as a whole. All of a
batch, with the caller's bookkeeping (a job unit marked done), goes in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from photoscout.database import Database
from photoscout.models.base import Region

KEY = ("photo_id", "model_id")


def _upsert(table: str, columns: tuple[str, ...], also: str = "") -> str:
    """``INSERT ... ON CONFLICT (photo_id, model_id) DO UPDATE`` of ``columns``, plus ``also`` (timestamps, the
    other precision's vector column)."""
    updates = [f"{c} = EXCLUDED.{c}" for c in columns if c not in KEY] + ([also] if also else [])
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(updates)}")


_EMBEDDING = ("photo_id", "model_id", "embedding_model", "embedding_version")
# What each kind of output row is written with. A version stores its vectors at full or half precision.
UPSERTS = {
    "embedding": _upsert("photo_embeddings", (*_EMBEDDING, "embedding"), "embedding_half = NULL, updated_at = now()"),
    "embedding_half": _upsert("photo_embeddings", (*_EMBEDDING, "embedding_half"),
                              "embedding = NULL, updated_at = now()"),
    "analysis": _upsert("photo_analysis", (*KEY, "labels", "category_scores", "text_likelihood", "cues"),
                        "created_at = now()"),
    "features": _upsert("photo_features", (*KEY, "features")),
    "text_embedding": _upsert("photo_text_embeddings", (*KEY, "embedding"), "created_at = now()"),
    "text": _upsert("photo_text", (*KEY, "text", "confidence"), "created_at = now()"),
    "caption": _upsert("photo_captions", (*KEY, "caption")),
    "run": _upsert("photo_model_runs", (*KEY, "outcome", "detail"), "at = now()"),
}


@dataclass
class BatchReport:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Outputs:
    """What the models produced for one batch; ``run`` records per photo and model that it ran (done, skipped or
    failed), even when the output is empty (no face, no text)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {kind: [] for kind in UPSERTS})
    detections: list[tuple[int, int, list[Region], tuple[int, np.ndarray] | None]] = field(default_factory=list)

    def add(self, kind: str, *row: Any) -> None:
        self.rows[kind].append(row)

    def ran(self, photo_id: int, model_id: int, outcome: str, detail: str | None = None) -> None:
        self.add("run", photo_id, model_id, outcome, detail)

    def report(self) -> BatchReport:
        runs = self.rows["run"]
        return BatchReport(done=sum(1 for r in runs if r[2] == "done"),
                           skipped=sum(1 for r in runs if r[2] == "skipped"),
                           failed=[(r[0], r[3] or "") for r in runs if r[2] == "failed"])


def store(db: Database, outputs: Outputs, finalize: Callable[[Any], None] | None = None) -> None:
    """All outputs of a batch, and the caller's bookkeeping (``finalize(cursor)``), in one transaction. Outputs of a
    version that was disabled (pruned) meanwhile are not written: the versions' registry rows are read under a key
    share lock, which prune's exclusive lock waits for (status changes by activation do not conflict with it)."""
    with db.connection() as conn:
        cur = conn.cursor()
        versions = ({r[1] for rows in outputs.rows.values() for r in rows} | {d[1] for d in outputs.detections}
                    | {d[3][0] for d in outputs.detections if d[3] is not None})
        gone = {r[0] for r in cur.execute("SELECT id, status FROM model_registry WHERE id = ANY(%s) ORDER BY id "
                                          "FOR KEY SHARE", (sorted(versions),)) if r[1] == "disabled"}
        for kind, sql in UPSERTS.items():
            rows = [r for r in outputs.rows[kind] if r[1] not in gone]
            if rows:
                cur.executemany(sql, rows)
        for photo_id, model_id, regions, crops in outputs.detections:
            if model_id in gone:
                continue
            if crops is not None and crops[0] in gone:
                crops = None
            cur.execute("DELETE FROM detections WHERE photo_id = %s AND model_id = %s", (photo_id, model_id))
            for i, r in enumerate(regions):
                row = cur.execute("INSERT INTO detections (photo_id, model_id, label, score, box) VALUES "
                                  "(%s, %s, %s, %s, %s) RETURNING id",
                                  (photo_id, model_id, r.label, r.score, list(r.box))).fetchone()
                if crops is not None and row is not None:  # (embedding version, one vector per region)
                    cur.execute("INSERT INTO region_embeddings (detection_id, photo_id, model_id, embedding) "
                                "VALUES (%s, %s, %s, %s)", (row[0], photo_id, crops[0], crops[1][i]))
        if finalize is not None:
            finalize(cur)


def as_array(vec: Any) -> np.ndarray:
    """pgvector values come back as ``Vector``/``HalfVector`` objects; numpy for callers."""
    return np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)
