"""Reading the catalogue: counts for ``status``, listings and one photo's details."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row

from photoscout.common.errors import NotFound, PhotoscoutError
from photoscout.database import Database
from photoscout.database.schema import listed
from photoscout.library.paths import like_prefix, normalize_root

PHOTO_COLUMNS = (
    "id", "path", "folder", "status", "error", "content_hash", "size_bytes", "format", "width", "height",
    "orientation", "taken_at", "taken_at_source", "camera_make", "camera_model", "categories", "thumbnail",
    "first_seen_at", "updated_at", "missing_since", "media_kind", "stack_of", "rating", "label", "tags", "title",
    "frame_of", "frame_ms", "duration_ms",
)
LIST_FILTERS = ("ok", "missing", "error", "all")


def status(db: Database) -> dict[str, Any]:
    with db.connection() as c, c.cursor(row_factory=dict_row) as conn:
        counts = conn.execute(
            f"SELECT count(*) FILTER (WHERE {listed('photos')}) AS photos, "
            "count(*) FILTER (WHERE status = 'ok' AND media_kind <> 'frame') AS files, "
            "count(*) FILTER (WHERE status = 'ok' AND media_kind = 'frame') AS video_frames, "
            "count(*) FILTER (WHERE status = 'ok' AND media_kind = 'raw') AS raw, "
            "count(*) FILTER (WHERE status = 'ok' AND media_kind = 'video') AS videos, "
            "count(DISTINCT stack_of) FILTER (WHERE status = 'ok' AND media_kind <> 'frame') AS stacks, "
            "count(*) FILTER (WHERE status = 'missing' AND media_kind <> 'frame') AS missing, "
            "count(*) FILTER (WHERE status = 'error' AND media_kind <> 'frame') AS errors, "
            "coalesce(sum(size_bytes) FILTER (WHERE status = 'ok'), 0) AS bytes FROM photos"
        ).fetchone()
        errors_by_kind = {
            r["kind"]: r["n"] for r in conn.execute(
                "SELECT split_part(error, ':', 1) AS kind, count(*) AS n FROM photos WHERE status = 'error' "
                "GROUP BY 1 ORDER BY 2 DESC")
        }
        embeddings = list(conn.execute(
            "SELECT m.name, m.version, m.status, count(e.id) AS embeddings FROM model_registry m "
            "LEFT JOIN photo_embeddings e ON e.model_id = m.id WHERE m.type = 'embedding' "
            "GROUP BY m.id ORDER BY m.name, m.version"
        ))
        jobs = {r["status"]: r["n"] for r in conn.execute("SELECT status, count(*) AS n FROM jobs GROUP BY 1")}
        last_scan = conn.execute(
            "SELECT id, roots, status, started_at, finished_at, counts FROM scans ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert counts is not None
    if last_scan is not None:
        scan_counts = last_scan.pop("counts") or {}
        last_scan.update({k: scan_counts[k] for k in ("found", "new", "updated", "moved", "errors", "missing",
                                                      "elapsed_s") if k in scan_counts})
    return {
        "photos": counts["photos"],  # one a stack (a RAW+JPEG pair, a Live Photo)
        "files": counts["files"],
        "raw": counts["raw"],
        "videos": counts["videos"],
        "stacks": counts["stacks"],
        "video_frames": counts["video_frames"],  # searched for the videos
        "missing": counts["missing"],
        "errors": counts["errors"],
        "errors_by_kind": errors_by_kind,
        "library_bytes": int(counts["bytes"]),
        "embeddings": embeddings,
        "jobs": jobs,
        "last_scan": last_scan,
    }


def list_photos(
    db: Database, *, which: str = "ok", limit: int = 50, offset: int = 0, folder: str | None = None,
    shown_only: bool = False,
) -> list[dict[str, Any]]:
    """Files of the library in path order; ``shown_only``: one a stack, as the grid shows them."""
    if which not in LIST_FILTERS:
        raise PhotoscoutError(f"unknown filter {which!r}; use one of {', '.join(LIST_FILTERS)}")
    if limit < 1 or offset < 0:
        raise PhotoscoutError("limit must be at least 1 and offset at least 0")
    where, params = ["media_kind <> 'frame'"], []  # files only: a video's frames are not files
    if which != "all":
        where.append("status = %s")
        params.append(which)
    if shown_only:
        where.append(listed("photos"))
    if folder:
        root = os.fsdecode(normalize_root(folder))
        where.append("(path = %s OR path LIKE %s)")
        params += [root, like_prefix(root)]
    sql = f"SELECT {', '.join(PHOTO_COLUMNS)} FROM photos WHERE " + " AND ".join(where)
    sql += " ORDER BY path LIMIT %s OFFSET %s"
    with db.connection() as c, c.cursor(row_factory=dict_row) as conn:
        return [_jsonable(r) for r in conn.execute(sql, [*params, limit, offset])]


def get_photo(db: Database, ref: str | int) -> dict[str, Any]:
    """A photo by id or by path."""
    with db.connection() as c, c.cursor(row_factory=dict_row) as conn:
        if isinstance(ref, int) or str(ref).isdigit():
            row = conn.execute(f"SELECT {', '.join(PHOTO_COLUMNS)} FROM photos WHERE id = %s", (int(ref),)).fetchone()
        else:
            path = normalize_root(str(ref))  # as shown, or the file's resolved path (its identity)
            row = conn.execute(f"SELECT {', '.join(PHOTO_COLUMNS)} FROM photos WHERE path = %s OR path_raw = %s "
                               "ORDER BY path = %s DESC LIMIT 1",
                               (os.fsdecode(path), os.path.realpath(path), os.fsdecode(path))).fetchone()
        if row is None:
            raise NotFound(f"no photo {ref!r} in the library")
        row["embeddings"] = list(conn.execute(
            "SELECT embedding_model AS model, embedding_version AS version, "
            "coalesce(vector_dims(embedding), vector_dims(embedding_half::vector)) AS dims, updated_at "
            "FROM photo_embeddings WHERE photo_id = %s ORDER BY model_id", (row["id"],)))
        text = conn.execute("SELECT text FROM photo_text WHERE photo_id = %s ORDER BY created_at DESC LIMIT 1",
                            (row["id"],)).fetchone()
        row["ocr_text"] = text["text"] if text else None
        leader = row["stack_of"] or row["id"]  # the files of its shutter press, the one that stands for them first
        row["stack"] = list(conn.execute(
            "SELECT id, path, format, media_kind, status, stack_of IS NULL AS leads FROM photos WHERE (id = %s OR "
            "stack_of = %s) AND status = 'ok' ORDER BY stack_of IS NOT NULL, path", (leader, leader)))
        if len(row["stack"]) < 2:
            row["stack"] = []
        row["labels"] = [r["labels"] for r in conn.execute(
            "SELECT a.labels FROM photo_analysis a JOIN model_registry m ON m.id = a.model_id "
            "WHERE a.photo_id = %s AND m.status = 'active'", (row["id"],))][:1]
        row["faces"] = list(conn.execute(
            "SELECT d.label, d.score, d.box FROM detections d JOIN model_registry m ON m.id = d.model_id "
            "WHERE d.photo_id = %s AND m.status = 'active' ORDER BY d.score DESC", (row["id"],)))
    return _jsonable(row)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, list):
            v = [_jsonable(x) if isinstance(x, dict) else x for x in v]
        out[k] = v
    return out


def ids_for_paths(db: Database, paths: list[str]) -> list[int]:
    """The readable photos at these paths (paths no longer in the library are left out)."""
    if not paths:
        return []
    with db.connection() as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM photos WHERE path = ANY(%s) AND status = 'ok'",
                                                (list(paths),))]
