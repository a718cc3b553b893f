"""The photos a model works on: the readable ones it has not run on yet, or given ones by id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from photoscout.database import Database
from photoscout.database.schema import shown


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path_raw: bytes
    format: str | None
    camera_make: str | None
    width: int | None
    height: int | None
    thumbnail: str | None


_COLUMNS = "p.id, p.path_raw, p.format, p.camera_make, p.width, p.height, p.thumbnail"


def _photo(row: Sequence[Any]) -> PhotoRow:
    return PhotoRow(row[0], bytes(row[1]), row[2], row[3], row[4], row[5], row[6])


def pending_photos(db: Database, model_id: int, photo_ids: Iterable[int] | None = None,
                   limit: int | None = None) -> list[PhotoRow]:
    """Photos (status ok) the model has not run on yet."""
    sql = (f"SELECT {_COLUMNS} FROM photos p WHERE {shown()} AND NOT EXISTS "
           "(SELECT 1 FROM photo_model_runs r WHERE r.photo_id = p.id AND r.model_id = %s)")
    params: list[Any] = [model_id]
    if photo_ids is not None:
        sql += " AND p.id = ANY(%s)"
        params.append(list(photo_ids))
    sql += " ORDER BY p.id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    with db.connection() as conn:
        return [_photo(r) for r in conn.execute(sql, params)]


def photos_by_id(db: Database, ids: Sequence[int]) -> list[PhotoRow]:
    with db.connection() as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM photos p WHERE p.id = ANY(%s) AND {shown()} "
                            "ORDER BY p.id", (list(ids),))
        return [_photo(r) for r in rows]


def done_count(db: Database, model_id: int) -> int:
    """Photos the model has run on successfully."""
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM photo_model_runs WHERE model_id = %s AND outcome = 'done'",
                           (model_id,)).fetchone()
    return int(row[0]) if row else 0
