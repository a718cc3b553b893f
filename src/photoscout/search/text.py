"""The rankings a query's words give through the text inside photos: PostgreSQL full-text search over the active
OCR model's text (and, where that finds too little, the longer words inside the text with spaces and punctuation
squeezed out), and the OCR text's meaning (embedded by the version's text side) close to the query's."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
from pgvector import HalfVector

from photoscout.registry import lifecycle
from photoscout.search.filters import Filters
from photoscout.search.query import Query
from photoscout.search.results import Hit

SQUEEZED_MIN = 5  # query words this long are also looked for inside OCR text with spaces and punctuation squeezed out
Conn = psycopg.Connection[Any]


def ocr_matches(conn: Conn, query: Query, filters: Filters, limit: int) -> list[tuple[int, str]]:
    """Full-text search of OCR text: any of the query's terms or words they begin ("total" finds "totals"),
    best-covered photos first, each with a snippet. Where that finds fewer than ``limit`` photos, the query's longer
    words are also looked for inside the OCR text with everything but letters and digits squeezed out: OCR splits
    words ("TOT AL") and runs them together ("SUBTOTAL"), and full-text search misses both."""
    terms = list(query.terms)
    if not terms:
        return []
    where, params = filters.sql()
    rows = conn.execute(
        f"SELECT t.photo_id, ts_headline('simple', t.text, q, '"
        f"MaxWords=12, MinWords=3, StartSel=«, StopSel=»') FROM photo_text t "
        f"JOIN photos p ON p.id = t.photo_id JOIN model_registry m ON m.id = t.model_id "
        f"AND m.status = 'active', to_tsquery('simple', %s) q "
        f"WHERE t.tsv @@ q AND {where} ORDER BY ts_rank(t.tsv, q, 1) DESC LIMIT %s",
        [" | ".join(f"{t}:*" for t in terms), *params, limit]).fetchall()
    inside = [t for t in terms if len(t) >= SQUEEZED_MIN]
    if inside and len(rows) < limit:  # the squeezed text is scanned (no index): only when needed
        rows += conn.execute(
            f"SELECT t.photo_id, left(regexp_replace(t.text, '\\s+', ' ', 'g'), 80) FROM photo_text t "
            f"JOIN photos p ON p.id = t.photo_id JOIN model_registry m ON m.id = t.model_id "
            f"AND m.status = 'active' WHERE {where} AND t.squeezed LIKE ANY(ARRAY("  # ARRAY(): once, not by row
            f"SELECT '%%' || ocr_squeeze(w) || '%%' FROM unnest(%s::text[]) w WHERE ocr_squeeze(w) <> '')) "
            f"AND t.photo_id <> ALL(%s) ORDER BY length(t.squeezed), t.photo_id LIMIT %s",
            [*params, inside, [r[0] for r in rows], limit - len(rows)]).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def meaning_matches(conn: Conn, reg: lifecycle.RegisteredModel, vector: np.ndarray, filters: Filters,
                    limit: int) -> list[tuple[int, float]]:
    """Photos whose OCR text, embedded by this version's text side, is closest to the query (exact scan: only
    photos with text have such a vector)."""
    dim = int(reg.config["dim"])
    where, params = filters.sql()
    rows = conn.execute(
        f"SELECT t.photo_id, 1 - ((t.embedding::halfvec({dim})) <=> %s) FROM photo_text_embeddings t "
        f"JOIN photos p ON p.id = t.photo_id WHERE t.model_id = {int(reg.id)} AND {where} "
        f"ORDER BY (t.embedding::halfvec({dim})) <=> %s LIMIT %s",
        [HalfVector(vector), *params, HalfVector(vector), limit]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def keyword_matches(conn: Conn, query: Query, filters: Filters, limit: int) -> list[tuple[int, str]]:
    """Photos whose XMP keywords or title hold one of the query's words (whole words, case ignored), the best rated
    first, each with its keywords. Only described photos are read (a partial index holds them)."""
    terms = [t for t in query.terms if t.isalnum()]
    if not terms:
        return []
    where, params = filters.sql()
    pattern = r"\m(" + "|".join(terms) + r")s?\M"  # the query's words: letters and digits only
    rows = conn.execute(
        f"SELECT p.id, array_to_string(p.tags, ', ') || coalesce(' - ' || p.title, '') FROM photos p "
        f"WHERE (p.tags <> '{{}}' OR p.title IS NOT NULL) AND {where} AND EXISTS (SELECT 1 FROM "
        f"unnest(array_append(p.tags, p.title)) w WHERE w ~* %s) ORDER BY p.rating DESC NULLS LAST, p.id LIMIT %s",
        [*params, pattern, limit]).fetchall()
    return [(int(r[0]), str(r[1])[:120]) for r in rows]


def listed(conn: Conn, filters: Filters, offset: int, limit: int, *, oldest_first: bool = False) -> list[Hit]:
    """The photos the filters let through, newest (or oldest) first: a query of filters only (``tag:holiday
    rating>=4``, ``-screenshots``)."""
    where, params = filters.sql(listing=True)
    direction = "ASC" if oldest_first else "DESC"
    rows = conn.execute(
        f"SELECT p.id, p.path, p.thumbnail, p.categories, p.taken_at, p.rating, array_to_string(p.tags, ', ') "
        f"FROM photos p WHERE {where} ORDER BY p.taken_at {direction} NULLS LAST, p.id {direction} "
        f"LIMIT %s OFFSET %s",
        [*params, limit, offset]).fetchall()
    return [Hit(int(pid), path, 0.0, [w for w in (f"rated {rating}" if rating is not None else "",
                                                 f"tagged: {tags}" if tags else "") if w],
                None, thumb, list(cats), taken.isoformat() if taken else None)
            for pid, path, thumb, cats, taken, rating, tags in rows]


def count_listed(conn: Conn, filters: Filters) -> int:
    """How many photos the filters let through (what ``listed`` pages through)."""
    where, params = filters.sql(listing=True)
    row = conn.execute(f"SELECT count(*) FROM photos p WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0
