"""All pgvector driver code in one place: the adapters registered on every pooled connection."""

from __future__ import annotations

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import tuple_row

MIN_PGVECTOR = (0, 7, 0)


def configure_connection(conn: psycopg.Connection) -> None:
    """Pool ``configure`` hook: numpy arrays <-> vector / halfvec / sparsevec."""
    register_vector(conn)
    conn.commit()


def reset_connection(conn: psycopg.Connection) -> None:
    """Pool ``reset`` hook: a connection goes back as it came (tuple rows, transactions, no session locks)."""
    conn.row_factory = tuple_row
    conn.autocommit = False
    conn.execute("SELECT pg_advisory_unlock_all()")
    conn.commit()


def pgvector_version(conn: psycopg.Connection) -> tuple[int, ...] | None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        return None
    return tuple(int(p) for p in str(row[0]).split(".")[:3] if p.isdigit())
