"""Marks that teach: the photos a user marked ✓ and ✗ for a query become a few-shot class of that query's words
(``learn``), kept in ``learned_queries``; the next search for those words ranks the library by it as one more list
of the fusion (``ranking``: "like the photos you marked"). The class is a direction in the active few-shot model's
feature space (the EfficientNet features every photo already has): the mean of the ✓ photos' unit features, less
half the mean of the ✗ photos'. A query is known by its words (``query.words``), whatever its punctuation."""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg

from photoscout.common.errors import InvalidParameter, NotFound, PhotoscoutError
from photoscout.database import Database
from photoscout.registry import lifecycle
from photoscout.search import query as queries
from photoscout.search.filters import Filters

MIN_RELEVANT = 2  # ✓ marks a query needs before it can be learned
NEGATIVE_SHARE = 0.5  # how much the ✗ photos' mean is taken away
Conn = psycopg.Connection[Any]


def key(text: str) -> str:
    """A query as its words ("Headphones!" and "headphones" are one query)."""
    return " ".join(queries.words(text))


def _unit_mean(conn: Conn, model_id: int, ids: list[int]) -> tuple[np.ndarray | None, int]:
    rows = conn.execute("SELECT features FROM photo_features WHERE model_id = %s AND photo_id = ANY(%s)",
                        (model_id, ids)).fetchall()
    if not rows:
        return None, 0
    feats = np.stack([np.asarray(r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0], np.float32)
                      for r in rows])
    feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    mean = feats.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12), len(rows)


def learn(db: Database, text: str, relevant: list[int], not_relevant: list[int]) -> dict[str, Any]:
    """Make (or remake) the query's class from its marked photos; what it was made of."""
    k = key(text)
    if not k:
        raise InvalidParameter("a query to learn needs words", "query")
    model = lifecycle.active(db, "few_shot")
    if model is None:
        raise PhotoscoutError("no active few_shot model (run: photoscout models install-builtin)")
    with db.connection() as conn:
        pos, n_pos = _unit_mean(conn, model.id, relevant)
        if pos is None or n_pos < MIN_RELEVANT:
            raise InvalidParameter(f"mark at least {MIN_RELEVANT} results ✓ for {text!r} first ({n_pos} so far)",
                                   "query")
        neg, n_neg = _unit_mean(conn, model.id, not_relevant)
        direction = pos - NEGATIVE_SHARE * neg if neg is not None else pos
        direction = direction / max(float(np.linalg.norm(direction)), 1e-12)
        conn.execute(
            "INSERT INTO learned_queries (query_key, query, model_id, direction, relevant, not_relevant) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (query_key) DO UPDATE SET query = EXCLUDED.query, "
            "model_id = EXCLUDED.model_id, direction = EXCLUDED.direction, relevant = EXCLUDED.relevant, "
            "not_relevant = EXCLUDED.not_relevant, updated_at = now()",
            (k, " ".join(text.split()), model.id, direction.astype(np.float32), n_pos, n_neg))
    return {"query": " ".join(text.split()), "key": k, "model": model.ref, "relevant": n_pos,
            "not_relevant": n_neg}


def forget(db: Database, text: str) -> None:
    with db.connection() as conn:
        if not conn.execute("DELETE FROM learned_queries WHERE query_key = %s", (key(text),)).rowcount:
            raise NotFound(f"nothing learned for {text!r}")


def known(db: Database) -> list[dict[str, Any]]:
    with db.connection() as conn:
        rows = conn.execute("SELECT q.query, m.name || '@' || m.version, q.relevant, q.not_relevant, q.updated_at "
                            "FROM learned_queries q JOIN model_registry m ON m.id = q.model_id "
                            "ORDER BY q.query").fetchall()
    return [{"query": q, "model": ref, "relevant": pos, "not_relevant": neg, "updated_at": at.isoformat()}
            for q, ref, pos, neg, at in rows]


def keys(conn: Conn) -> set[str]:
    """The queries learned with the active few-shot model (the engine remembers them, so a search for any other
    query asks the database nothing more)."""
    return {r[0] for r in conn.execute(
        "SELECT q.query_key FROM learned_queries q JOIN model_registry m ON m.id = q.model_id "
        "AND m.status = 'active'")}


def ranking(conn: Conn, text: str, filters: Filters, limit: int) -> list[tuple[int, float]]:
    """The photos most like the query's marked ✓ photos (and least like its ✗ ones), if the query was learned with
    the active few-shot model; none otherwise. An exact scan of the photos' features."""
    row = conn.execute(
        "SELECT q.model_id, q.direction FROM learned_queries q JOIN model_registry m ON m.id = q.model_id "
        "AND m.status = 'active' WHERE q.query_key = %s", (key(text),)).fetchone()
    if row is None:
        return []
    where, params = filters.sql()
    rows = conn.execute(
        f"SELECT f.photo_id, -(l2_normalize(f.features) <#> %s) AS score FROM photo_features f "
        f"JOIN photos p ON p.id = f.photo_id WHERE f.model_id = %s AND {where} ORDER BY score DESC LIMIT %s",
        [row[1], int(row[0]), *params, limit]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]
