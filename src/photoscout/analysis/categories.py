"""Photo categories in the database: recomputing them from stored outputs with the rules (``category_rules.py``)
when outputs or rules change, and switching photos to the categories of the version that becomes active.

Each embedding version keeps its own categories per photo (``photo_analysis.categories``); ``photos.categories``
are the active version's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from photoscout.analysis.category_rules import DEFAULT_CATEGORIES, RULES_VERSION, categorize
from photoscout.common.progress import NoProgress, Progress
from photoscout.database import Database
from photoscout.database.schema import shown


def refresh(db: Database, photo_ids: Sequence[int], enabled: tuple[str, ...] = DEFAULT_CATEGORIES) -> int:
    """Recompute categories from the stored outputs: for every embedding version that analysed the photo (kept in
    ``photo_analysis.categories``, so a version under evaluation has its own), and ``photos.categories`` from the
    active version. OCR text, faces and few-shot classes come from the active models of those types."""
    if not photo_ids:
        return 0
    ids = list(photo_ids)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT p.id, a.model_id, a.category_scores AS scores, a.cues, coalesce(am.status = 'active', false) AS act,
              (SELECT t.text FROM photo_text t JOIN model_registry m ON m.id = t.model_id
                 AND m.status = 'active' WHERE t.photo_id = p.id LIMIT 1) AS ocr,
              (SELECT coalesce(array_agg(array_to_string(d.box, ',')), '{}') FROM detections d
                 JOIN model_registry m ON m.id = d.model_id AND m.status = 'active'
                 WHERE d.photo_id = p.id AND d.label = 'face') AS faces,
              (SELECT coalesce(array_agg(fc.name ORDER BY fc.name), '{}') FROM fewshot_classes fc
                 JOIN model_registry m ON m.id = fc.model_id AND m.status = 'active'
                 JOIN photo_features f ON f.model_id = fc.model_id AND f.photo_id = p.id
                 WHERE 1 - (f.features <=> fc.prototype) >= fc.threshold) AS fewshot
            FROM photos p
            LEFT JOIN (photo_analysis a JOIN model_registry am ON am.id = a.model_id AND am.type = 'embedding'
                       AND am.status <> 'disabled') ON a.photo_id = p.id
            WHERE p.id = ANY(%s)
            """, (ids,)).fetchall()
        per_model: list[tuple[list[str], int, int]] = []
        chosen: dict[int, list[str]] = {}
        for r in rows:
            faces = [tuple(float(v) for v in f.split(",")) for f in r["faces"]]
            signals: dict[str, Any] = {"cues_": r["cues"] or {}, "ocr_text": r["ocr"], "faces": faces,
                                       "fewshot": list(r["fewshot"]), "enabled": enabled}
            cats = categorize(category_scores=r["scores"] or {}, **signals)
            if r["model_id"] is not None:
                per_model.append((cats, r["id"], r["model_id"]))
            if r["act"] or r["id"] not in chosen:  # the active version's, else cues/OCR/faces alone
                chosen[r["id"]] = cats if (r["act"] or r["model_id"] is None) else categorize(category_scores={},
                                                                                              **signals)
        cur.executemany("UPDATE photo_analysis SET categories = %s WHERE photo_id = %s AND model_id = %s "
                        "AND categories IS DISTINCT FROM %s", [(c_, i, m, c_) for c_, i, m in per_model])
        cur.executemany("UPDATE photos SET categories = %s WHERE id = %s AND categories IS DISTINCT FROM %s",
                        [(c_, i, c_) for i, c_ in chosen.items()])
    return len(chosen)


def refresh_if_rules_changed(db: Database, chunk: int = 2000) -> int:
    """Recompute every photo's categories when the stored ones come from other rules (``RULES_VERSION``); the
    photos refreshed (0 when the rules are the same)."""
    with db.connection() as conn:
        row = conn.execute("SELECT version FROM category_rules").fetchone()
        if row is not None and row[0] == RULES_VERSION:
            return 0
        # no row: the table came with these rules, so every stored category is theirs
        ids = [] if row is None else _photo_ids(conn)
    _refresh_chunks(db, ids, chunk)
    with db.connection() as conn:
        conn.execute("INSERT INTO category_rules (version) VALUES (%s) ON CONFLICT (only_row) DO UPDATE "
                     "SET version = excluded.version", (RULES_VERSION,))
    return len(ids)


def refresh_all(db: Database, chunk: int = 2000, progress: Progress | None = None) -> int:
    """Recompute every photo's categories (an OCR, face or few-shot version became active: its outputs are the
    signals now); the photos refreshed, reported to ``progress`` chunk by chunk."""
    with db.connection() as conn:
        ids = _photo_ids(conn)
    _refresh_chunks(db, ids, chunk, progress)
    return len(ids)


def _photo_ids(conn: Any) -> list[int]:
    return [r[0] for r in conn.execute(f"SELECT id FROM photos p WHERE {shown()} ORDER BY id")]


def _refresh_chunks(db: Database, ids: list[int], chunk: int, progress: Progress | None = None) -> None:
    progress = progress or NoProgress()
    progress.phase("recomputing categories", len(ids))
    for start in range(0, len(ids), chunk):
        part = ids[start: start + chunk]
        refresh(db, part)
        progress.advance(len(part))


def follow_version(cur: Any, model_id: int) -> None:
    """Inside the transaction that makes an embedding version active: the photos take that version's categories,
    so ingestion, queries and categories switch at once."""
    cur.execute("UPDATE photos p SET categories = a.categories FROM photo_analysis a WHERE a.photo_id = p.id "
                "AND a.model_id = %s AND a.categories IS NOT NULL AND p.categories IS DISTINCT FROM a.categories",
                (model_id,))
