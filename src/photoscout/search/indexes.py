"""One HNSW index per embedding model version: a partial expression index
``((embedding::vector(D)) vector_cosine_ops) WHERE model_id = N`` built with CREATE INDEX CONCURRENTLY (searches
and writes go on meanwhile), dropped with the version."""

from __future__ import annotations

import logging

import psycopg

from photoscout.database import Database
from photoscout.registry.lifecycle import RegisteredModel

log = logging.getLogger(__name__)
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def column(model: RegisteredModel) -> tuple[str, str]:
    """The SQL expression holding a version's vectors and its cosine operator class: ``storage = "halfvec"`` in a
    version's config keeps half-precision vectors (half the bytes in table and index)."""
    dim = int(model.config["dim"])
    if model.config.get("storage") == "halfvec":
        return f"(embedding_half::halfvec({dim}))", "halfvec_cosine_ops"
    return f"(embedding::vector({dim}))", "vector_cosine_ops"


def index_name(model: RegisteredModel) -> str:
    return f"photo_embeddings_hnsw_m{model.id}"


def exists(db: Database, model: RegisteredModel) -> bool:
    with db.connection() as conn:
        row = conn.execute("SELECT indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                           "WHERE c.relname = %s", (index_name(model),)).fetchone()
    return bool(row and row[0])


def ensure(db: Database, model: RegisteredModel) -> bool:
    """Build the version's index if it is missing (or left invalid by an interrupted build). True if built now."""
    if model.type != "embedding" or exists(db, model):
        return False
    expr, opclass = column(model)
    name = index_name(model)
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:  # CONCURRENTLY cannot run in a transaction
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        conn.execute(f"CREATE INDEX CONCURRENTLY {name} ON photo_embeddings USING hnsw "
                     f"({expr} {opclass}) WITH (m = {HNSW_M}, "
                     f"ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE model_id = {int(model.id)}")
    log.info("built %s", name)
    return True


def size_bytes(db: Database, model: RegisteredModel) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT pg_relation_size(c.oid) FROM pg_class c WHERE c.relname = %s",
                           (index_name(model),)).fetchone()
    return int(row[0]) if row else 0


def drop(db: Database, model: RegisteredModel) -> None:
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(model)}")
