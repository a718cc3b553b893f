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
    dim = int(model.config["dim"])
    name = index_name(model)
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:  # CONCURRENTLY cannot run in a transaction
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        conn.execute(f"CREATE INDEX CONCURRENTLY {name} ON photo_embeddings USING hnsw "
                     f"((embedding::vector({dim})) vector_cosine_ops) WITH (m = {HNSW_M}, "
                     f"ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE model_id = {int(model.id)}")
    log.info("built %s", name)
    return True


def drop(db: Database, model: RegisteredModel) -> None:
    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index_name(model)}")
