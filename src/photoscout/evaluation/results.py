"""What an evaluation found (``EvalReport``: per query, per set, overall), storing it (``eval_runs``: one row per
set and session, plus the whole file as ``*overall*``; ``eval_query_results``: one row per query) and reading it
back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from photoscout.database import Database
from photoscout.registry.lifecycle import RegisteredModel

OVERALL = "*overall*"


@dataclass
class QueryResult:
    set: str
    text: str
    relevant: int
    metrics: dict[str, float]
    top: list[int]


@dataclass
class SetResult:
    name: str
    digest: str
    queries: list[QueryResult]
    metrics: dict[str, float]
    latency: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalReport:
    model: str
    model_id: int
    status: str
    suite: str
    suite_digest: str
    session: str
    k: int
    depth: int
    sets: list[SetResult]
    overall: dict[str, float]
    latency: dict[str, float]
    resources: dict[str, Any]
    coverage: float
    warnings: list[str]
    created_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "status": self.status, "suite": self.suite, "session": self.session, "k": self.k,
            "depth": self.depth, "coverage": self.coverage, "overall": self.overall, "latency_ms": self.latency,
            "resources": self.resources, "warnings": self.warnings, "created_at": self.created_at,
            "sets": [{"name": s.name, "digest": s.digest, "metrics": s.metrics, "latency_ms": s.latency,
                      "queries": [{"text": q.text, "relevant": q.relevant, **q.metrics} for q in s.queries]}
                     for s in self.sets],
        }

    def set_metrics(self) -> dict[str, dict[str, float]]:
        return {s.name: s.metrics for s in self.sets} | {OVERALL: self.overall}


def store(db: Database, report: EvalReport) -> None:
    with db.connection() as conn:
        cur = conn.cursor()
        for name, digest, mets, lat in [(s.name, s.digest, s.metrics, s.latency) for s in report.sets if s.queries] + [
                (OVERALL, report.suite_digest, report.overall, report.latency)]:
            row = cur.execute(
                "INSERT INTO eval_runs (model_id, set_name, set_digest, k, metrics, latency, resources, session, "
                "suite, coverage) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, created_at",
                (report.model_id, name, digest, report.k, Jsonb(mets), Jsonb(lat), Jsonb(report.resources),
                 report.session, report.suite, report.coverage)).fetchone()
            assert row is not None
            report.created_at = row[1].isoformat()
            queries = next((s.queries for s in report.sets if s.name == name), [])
            cur.executemany("INSERT INTO eval_query_results (run_id, query, metrics) VALUES (%s, %s, %s)",
                            [(row[0], q.text, Jsonb({**q.metrics, "relevant": q.relevant, "top": q.top}))
                             for q in queries])


def latest(db: Database, model: RegisteredModel) -> list[dict[str, Any]]:
    """The rows of the model's most recent evaluation session of each suite (set file) it was evaluated on, the
    newest session first: a version evaluated on photos-dev.toml and photos-dev-languages.toml is judged on both."""
    with db.connection() as conn:
        sessions = conn.execute(
            "SELECT session FROM (SELECT DISTINCT ON (suite) suite, session, created_at, id FROM eval_runs "
            "WHERE model_id = %s ORDER BY suite, created_at DESC, id DESC) s ORDER BY created_at DESC, id DESC",
            (model.id,)).fetchall()
    return [row for (session,) in sessions for row in session_rows(db, session)]


def session_rows(db: Database, session: str) -> list[dict[str, Any]]:
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(
            "SELECT r.id, r.session, r.suite, r.set_name, r.set_digest, r.k, r.metrics, r.latency, r.resources, "
            "r.coverage, r.created_at, m.name || '@' || m.version AS model FROM eval_runs r "
            "JOIN model_registry m ON m.id = r.model_id WHERE r.session = %s ORDER BY r.id", (session,)))


def matching(db: Database, model: RegisteredModel, digest: str,
             prefer_session: str | None = None) -> dict[str, Any] | None:
    """The model's result on exactly this set (same queries, k and resolved photos): from ``prefer_session`` if it
    has one, else the most recent."""
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, session, set_name, metrics, latency, resources, coverage, created_at FROM eval_runs "
            "WHERE model_id = %s AND set_digest = %s ORDER BY session = %s DESC, created_at DESC, id DESC LIMIT 1",
            (model.id, digest, prefer_session or "")).fetchone()


def sessions(db: Database, model: RegisteredModel | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = ("SELECT r.session, r.suite, m.name || '@' || m.version AS model, r.k, r.metrics, r.latency, r.coverage, "
           "r.created_at FROM eval_runs r JOIN model_registry m ON m.id = r.model_id WHERE r.set_name = %s")
    params: list[Any] = [OVERALL]
    if model is not None:
        sql += " AND r.model_id = %s"
        params.append(model.id)
    sql += " ORDER BY r.created_at DESC LIMIT %s"
    params.append(limit)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return [{**r, "created_at": r["created_at"].isoformat()} for r in cur.execute(sql, params)]


def session_queries(db: Database, run_ids: list[int]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    """Each run's per-query results (query text, metrics), by run id."""
    with db.connection() as conn:
        rows = conn.execute("SELECT run_id, query, metrics FROM eval_query_results WHERE run_id = ANY(%s) "
                            "ORDER BY run_id, query", (run_ids,)).fetchall()
    out: dict[int, list[tuple[str, dict[str, Any]]]] = {i: [] for i in run_ids}
    for run_id, query, mets in rows:
        out[run_id].append((query, mets))
    return out
