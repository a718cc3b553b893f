"""One vector index per embedding model version: a partial expression index
``USING ivfflat ((embedding::vector(D)) vector_cosine_ops) WITH (lists = L) WHERE model_id = N`` (``halfvec`` for
versions stored in half precision), built with CREATE INDEX CONCURRENTLY (searches and writes go on meanwhile) when
the version's job completes, rebuilt when the version has twice the rows it was built on, dropped with the version.

IVFFlat rather than HNSW: the built-in ConSE vectors are convex combinations of 1,000 label vectors, so a library is
a set of tight clusters; on 100k such vectors HNSW (m 16, ef_construction 64) reached recall@10 0.57-0.69 even at
ef_search 1000, IVFFlat (lists 316) 0.99 at 10 probes and 1.00 at 20, and builds 5x faster
(``benchmarks/bench_search.py``). Lists: sqrt(rows); probes: sqrt(lists), at most 16 and lists / 8, at least 10
(``probes_for``); the rule and the figures an index was built with are recorded in its comment (``info``).

A version with ``index_dims`` k in its config (conse v3.1+: 1,384-d vectors whose first 384 dimensions are the ConSE
part) is indexed on its first k dimensions only (``subvector``): the index finds candidates at the cost of a 384-d
search, and the engine re-ranks them by the whole vector (``search/engine.py``). A 1,384-d index read 3.6x the
pages: p95 132 ms at 100k photos, 33 ms on the leading part (v1: 27; ``benchmarks/bench_serve.py``).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Protocol

import psycopg
from psycopg import sql

from photoscout.database import Database

log = logging.getLogger(__name__)
MIN_PROBES, MAX_PROBES = 10, 16
# recorded in each index's comment
RULE = "lists = sqrt(rows); probes = sqrt(lists), at most 16 and lists / 8, at least 10"


class Version(Protocol):
    """What an index needs to know of a model version (a registry entry has it)."""

    @property
    def id(self) -> int: ...

    @property
    def type(self) -> str: ...

    @property
    def config(self) -> dict[str, Any]: ...


def column(model: Version) -> tuple[str, str]:
    """The SQL expression holding a version's vectors and its cosine operator class: ``storage = "halfvec"`` in a
    version's config keeps half-precision vectors (half the bytes in table and index)."""
    dim = int(model.config["dim"])
    if model.config.get("storage") == "halfvec":
        return f"(embedding_half::halfvec({dim}))", "halfvec_cosine_ops"
    return f"(embedding::vector({dim}))", "vector_cosine_ops"


def indexed(model: Version) -> tuple[str, str, int]:
    """The expression the version's index is built on, its operator class and its dimensions: the whole vector, or
    its first ``index_dims`` dimensions (candidates, re-ranked by the whole vector)."""
    expr, opclass = column(model)
    dim, part = int(model.config["dim"]), int(model.config.get("index_dims") or 0)
    if not 0 < part < dim:
        return expr, opclass, dim
    kind = "halfvec" if model.config.get("storage") == "halfvec" else "vector"
    source = "embedding_half" if kind == "halfvec" else "embedding"
    return f"(subvector({source}, 1, {part})::{kind}({part}))", opclass, part


def index_name(model: Version) -> str:
    return f"photo_embeddings_ivf_m{model.id}"


def lists_for(rows: int) -> int:
    return max(1, min(int(math.sqrt(rows)), rows // 10 or 1))


def probes_for(lists: int) -> int:
    """Lists probed per search: sqrt(lists), at most 16 and an eighth of them, at least 10. At 1M photos (1,000
    lists; ``benchmarks/bench_rehearsal.py``) 16 probes gave recall@10 0.96-0.99 (384-d and 768-d, unfiltered, 10%
    and 1% filters) and sqrt(lists) = 32 probes 0.985-0.995 for twice the vectors read (nearest-neighbour p95 of a
    1%-filtered 768-d search 48 against 67 ms); lists / 8 (125) read 8x the vectors for no better recall. Measured
    to 1M photos: a larger library may want more (its index's comment records what it was built with)."""
    return min(lists, max(MIN_PROBES, min(MAX_PROBES, lists // 8, math.ceil(math.sqrt(lists)))))


def info(db: Database, model: Version) -> dict[str, Any] | None:
    """What a valid index was built with (``{"rows", "lists", "probes", "rule"}``, as recorded in its comment when
    it was built), None when there is none."""
    with db.connection() as conn:
        row = conn.execute("SELECT i.indisvalid, obj_description(c.oid, 'pg_class') FROM pg_index i "
                           "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                           (index_name(model),)).fetchone()
    if not row or not row[0]:
        return None
    try:
        data = json.loads(row[1] or "{}")
        lists = int(data["lists"])
        return {"rows": int(data["rows"]), "lists": lists, "probes": int(data.get("probes") or probes_for(lists)),
                "rule": str(data.get("rule", ""))}
    except (ValueError, KeyError, TypeError):
        return {"rows": 0, "lists": 1, "probes": 1}


def exists(db: Database, model: Version) -> bool:
    return info(db, model) is not None


def ensure(db: Database, model: Version) -> bool:
    """Build the version's index if it is missing, invalid (an interrupted build) or built on less than half of the
    version's rows. True if built now."""
    if model.type != "embedding":
        return False
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM photo_embeddings WHERE model_id = %s", (model.id,)).fetchone()
    rows = int(row[0]) if row else 0
    current = info(db, model)
    if rows == 0 or (current is not None and rows < 2 * max(current["rows"], 1)):
        return False
    expr, opclass, _dims = indexed(model)
    name = index_name(model)
    lists = lists_for(rows)
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:  # CONCURRENTLY cannot run in a transaction
        tmp = f"{name}_new"
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {tmp}")
        conn.execute(f"CREATE INDEX CONCURRENTLY {tmp} ON photo_embeddings USING ivfflat ({expr} {opclass}) "
                     f"WITH (lists = {lists}) WHERE model_id = {int(model.id)}")
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")  # the old one served searches until now
        conn.execute(f"ALTER INDEX {tmp} RENAME TO {name}")
        conn.execute(sql.SQL("COMMENT ON INDEX {} IS {}").format(
            sql.Identifier(name), sql.Literal(json.dumps({"rows": rows, "lists": lists, "probes": probes_for(lists),
                                                          "dims": _dims, "rule": RULE}))))
        # fresh statistics: the planner must know the version has rows, or it scans them all instead of the index
        conn.execute("ANALYZE photo_embeddings")
    log.info("built %s (%d rows, %d lists)", name, rows, lists)
    return True


def size_bytes(db: Database, model: Version) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT pg_relation_size(c.oid) FROM pg_class c WHERE c.relname = %s",
                           (index_name(model),)).fetchone()
    return int(row[0]) if row else 0


def drop(db: Database, model: Version) -> None:
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(model)}")
