"""Nearest neighbours among the photos' vectors of one model version: through the version's IVFFlat index with
pgvector's iterative index scan so filters still return ``limit`` results, or an exact scan when the filter is
selective (the planner thinks it keeps fewer photos than ``EXACT_BELOW``). Where the index holds the vector's leading
part, it gives candidates that the whole vector re-ranks.

An exact scan orders by an expression the vector index cannot give (``(v <=> q) + 0``) with sequential scans off:
the planner finds the filter's few photos through their own indexes (a category's GIN) and reads each one's vector
by its key. (Index scans off instead, as before, joined every vector by hash: 1,000 photos of a 100k library in
50-60 ms; left to itself the planner read every photo's row, 30-50 ms at 100k, ten times that at 1M.)"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psycopg
from pgvector import HalfVector

from photoscout.database import Database, indexes
from photoscout.registry import lifecycle
from photoscout.search.filters import Filters

EXACT_BELOW = 2000  # filtered candidate sets smaller than this are scanned exactly (cheap and exact)
# a planner's estimate under this many times EXACT_BELOW is checked by counting (up to EXACT_BELOW): it guesses a
# category no photo has as 0.5% of the library (4,600 of 1M), and an index scan for photos that are not there reads
# every probed vector and its photo (14k of each: 180-400 ms at 1M)
COUNT_BELOW = 20 * EXACT_BELOW
# candidates a leading-part index gives, re-ranked by the whole vector: for a ranking twice the rows wanted and at
# least 400 (recall@10 0.98 against the exact order on dense near-copies, tests/test_jobs.py); a supporting ranking
# (it probes fewer lists anyway) re-orders the rows it finds
RERANK_FACTOR, RERANK_MIN = 2, 400
ESTIMATE_TTL = 60.0  # seconds a planner's estimate of a filter is reused
# a supporting ranking (no widening) checks at most this many of the query's nearest photos against its filter: the
# probed lists of a 1M library hold 10k photos, each checked against its photo row when few are in the category
# (the screenshots of "settings dialog": 13,356 checked, none found, 87 ms); 1,000 still finds 10 photos of a
# category that holds 1% of the nearest
SUPPORT_CANDIDATES = 1000
Conn = psycopg.Connection[Any]


def custom_plans(conn: Conn) -> None:
    """The rest of this transaction: every statement planned for its own values, and no parallel workers. psycopg
    prepares a statement run five times on a connection, and PostgreSQL may then plan it once for any values (a
    generic plan), blind to a filter's selectivity: a 10%-filtered 768-d search at 100k photos took p50 41 ms instead
    of 11. Starting parallel workers costs ~10 ms, more than a search's own work. (Writes keep their reused plans.)"""
    conn.execute("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
                 "set_config('max_parallel_workers_per_gather', '0', true)")


class Neighbours:
    """Remembers what a nearest-neighbour scan asks the database for besides the rows: the planner's estimate of a
    filter and a version's probes (one per long-running process, inside the engine)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._probes: dict[int, int] = {}
        self._estimates: dict[tuple[str, str], tuple[float, float]] = {}

    def clear(self) -> None:
        self._probes.clear()
        self._estimates.clear()

    def estimate(self, conn: Conn, where: str, params: list[Any]) -> float:
        """The photos a filter keeps, as far as the choice of scan needs it: the planner's estimate, counted (up to
        ``EXACT_BELOW``) where the estimate is low enough to be wrong either way; remembered for a minute."""
        key = (where, repr(params))
        now = time.monotonic()
        hit = self._estimates.get(key)
        if hit is not None and now - hit[1] < ESTIMATE_TTL:
            return hit[0]
        plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM photos p WHERE {where}", params).fetchone()
        estimate = float(plan[0][0]["Plan"]["Plan Rows"]) if plan else float(EXACT_BELOW)
        if estimate < COUNT_BELOW:  # through the filter's own indexes where it has them (a category's GIN)
            conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
            found = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM photos p WHERE {where} LIMIT {EXACT_BELOW}) s",
                                 params).fetchone()
            conn.execute("SELECT set_config('enable_seqscan', 'on', true)")
            counted = float(found[0]) if found else estimate
            estimate = counted if counted < EXACT_BELOW else max(estimate, counted)
        if len(self._estimates) > 1000:
            self._estimates.clear()
        self._estimates[key] = (estimate, now)
        return estimate

    def probes(self, reg: lifecycle.RegisteredModel) -> int:
        if reg.id not in self._probes:
            found = indexes.info(self.db, reg)
            self._probes[reg.id] = found["probes"] if found else indexes.MIN_PROBES
        return self._probes[reg.id]

    def nearest(self, conn: Conn, reg: lifecycle.RegisteredModel, query: np.ndarray, filters: Filters, limit: int,
                *, own_category: str | None = None, widen: bool = True) -> tuple[list[tuple[int, float]], bool]:
        """The ``limit`` nearest photos passing ``filters`` (photo, cosine similarity), and whether the scan was
        exact. An index scan widens (more probes, up to 8x) until ``limit`` photos pass the filter; with ``widen``
        false it probes half the usual lists and returns what passes among their nearest ``SUPPORT_CANDIDATES``
        photos (a supporting ranking: fast, possibly short). ``own_category``: the version's own categories (a
        version under evaluation)."""
        expr, _opclass = indexes.column(reg)
        q: Any = HalfVector(query) if reg.config.get("storage") == "halfvec" else query
        where, params = filters.sql()
        mid = int(reg.id)
        if own_category:
            where += (f" AND p.id IN (SELECT a.photo_id FROM photo_analysis a WHERE a.model_id = {mid} "
                      "AND a.categories @> ARRAY[%s]::text[])")
            params.append(own_category)
        filtered = filters.active or bool(own_category)
        exact = False
        if filtered:  # the planner's estimate decides: exact scan for a selective filter
            exact = self.estimate(conn, where, params) < EXACT_BELOW
        probes = self.probes(reg)
        if not widen:  # a supporting ranking: the nearest half of the usual lists, no widening
            probes = max(indexes.MIN_PROBES, probes // 2)
        custom_plans(conn)  # for the rest of the search's transaction too
        conn.execute("SELECT set_config('ivfflat.probes', %s, true), "
                     "set_config('ivfflat.iterative_scan', 'relaxed_order', true), "
                     "set_config('ivfflat.max_probes', %s, true), set_config('enable_seqscan', %s, true)",
                     (str(probes), str(max(probes * 8, 100) if widen else probes), "off" if exact else "on"))
        part_expr, _opclass, part = indexes.indexed(reg)
        qp: Any = q  # the query as the index holds it (its leading part, where the index holds that)
        if part_expr != expr:
            qp = HalfVector(query[:part]) if isinstance(q, HalfVector) else query[:part]
        if not widen and not exact:  # a supporting ranking: the nearest few photos, then the filter, re-ranked
            sql = (f"SELECT c.photo_id, c.v <=> %s AS dist FROM (SELECT e.photo_id, {expr} AS v "
                   f"FROM photo_embeddings e WHERE e.model_id = {mid} ORDER BY {part_expr} <=> %s "
                   f"LIMIT {SUPPORT_CANDIDATES}) c JOIN photos p ON p.id = c.photo_id WHERE {where} "
                   f"ORDER BY dist LIMIT %s")
            rows = conn.execute(sql, [q, qp, *params, limit]).fetchall()
        elif part_expr != expr and not exact:  # the index holds the leading part: candidates, then re-ranked
            sql = (f"SELECT c.photo_id, c.v <=> %s AS dist FROM (SELECT e.photo_id, {expr} AS v "
                   f"FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id WHERE e.model_id = {mid} "
                   f"AND {where} ORDER BY {part_expr} <=> %s LIMIT %s) c ORDER BY dist LIMIT %s")
            candidates = max(limit * RERANK_FACTOR, RERANK_MIN)
            rows = conn.execute(sql, [q, *params, qp, candidates, limit]).fetchall()
        else:  # an exact scan orders by what the index cannot give
            order = f"({expr} <=> %s) + 0" if exact else f"{expr} <=> %s"
            sql = (f"SELECT e.photo_id, {expr} <=> %s AS dist FROM photo_embeddings e "
                   f"JOIN photos p ON p.id = e.photo_id WHERE e.model_id = {mid} AND {where} "
                   f"ORDER BY {order} LIMIT %s")
            rows = conn.execute(sql, [q, *params, q, limit]).fetchall()
        if exact:  # the rest of the transaction plans as usual
            conn.execute("SELECT set_config('enable_seqscan', 'on', true)")
        if filtered and not exact:  # relaxed order: re-sort the few rows exactly
            rows.sort(key=lambda r: r[1])
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows], exact

    def within(self, conn: Conn, reg: lifecycle.RegisteredModel, query: np.ndarray, filters: Filters,
               similarity: float, limit: int) -> list[tuple[int, float]]:
        """Every photo passing ``filters`` at least ``similarity`` close (photo, cosine similarity), closest first,
        at most ``limit``: an exact scan (a search sorted by date gathers all of its matches; its order is not
        one the vector index gives, so it is never used)."""
        expr, _opclass = indexes.column(reg)
        q: Any = HalfVector(query) if reg.config.get("storage") == "halfvec" else query
        where, params = filters.sql()
        custom_plans(conn)
        rows = conn.execute(
            f"SELECT e.photo_id, 1 - ({expr} <=> %s) AS sim FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id "
            f"WHERE e.model_id = {int(reg.id)} AND {where} AND {expr} <=> %s <= %s ORDER BY sim DESC LIMIT %s",
            [q, *params, q, 1.0 - similarity, limit]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]
