"""Running one model version against a suite of evaluation sets: quality (P@k, R@k, mAP, nDCG@k per set and
overall), search latency (p50/p95 with the query embedding included), and resources (embedding throughput and peak
memory measured in a fresh process, embedding and index bytes, coverage). Results go to ``eval_runs`` /
``eval_query_results`` and a readable entry to the decision log."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from psycopg.types.json import Jsonb

from photoscout.config import Settings
from photoscout.database import Database
from photoscout.errors import PhotoscoutError
from photoscout.evaluation import metrics
from photoscout.evaluation.sets import Suite
from photoscout.library.progress import NoProgress, Progress
from photoscout.registry import decisions, lifecycle
from photoscout.registry.lifecycle import RegisteredModel

OVERALL = "*overall*"
LATENCY_ROUNDS = 5
THROUGHPUT_PHOTOS = 128


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


def coverage(db: Database, model: RegisteredModel) -> tuple[int, int]:
    """(photos with an embedding of this version, readable photos in the library)."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id AND p.status = 'ok' "
            "WHERE e.model_id = %s), (SELECT count(*) FROM photos WHERE status = 'ok')", (model.id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def storage(db: Database, model: RegisteredModel) -> dict[str, int]:
    from photoscout.search import indexes

    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(coalesce(pg_column_size(embedding), 0) + "
            "coalesce(pg_column_size(embedding_half), 0)), 0) FROM photo_embeddings WHERE model_id = %s",
            (model.id,)).fetchone()
    assert row is not None
    return {"embeddings": int(row[0]), "embedding_bytes": int(row[1]), "index_bytes": indexes.size_bytes(db, model)}


def _measure_in_child(spec: Any, runtime: Any, paths: list[str]) -> dict[str, float]:
    """In a fresh process: load the model, embed the photos; throughput and the process's peak memory."""
    import resource

    from PIL import Image

    from photoscout.models import factory

    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    model = factory.create(spec, runtime)
    model.load()
    model.analyze_images(images[: min(8, len(images))])  # type: ignore[attr-defined]  # warm-up
    started = time.perf_counter()
    model.analyze_images(images)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return {"photos": len(images), "photos_per_s": round(len(images) / elapsed, 1),
            "peak_rss_mb": round(_peak_rss_kb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1)}


def _peak_rss_kb(fallback: int) -> int:
    """This process's peak resident memory. Linux's ru_maxrss survives exec (a spawned child would report its
    parent's peak), so the per-address-space high-water mark in /proc is preferred."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return fallback


def measure_model(db: Database, settings: Settings, model: RegisteredModel) -> dict[str, float]:
    from photoscout.jobs.outputs import ModelSet

    with db.connection() as conn:
        thumbs = [settings.thumbnails_dir / t for (t,) in conn.execute(
            "SELECT thumbnail FROM photos WHERE status = 'ok' AND thumbnail IS NOT NULL ORDER BY id LIMIT %s",
            (THROUGHPUT_PHOTOS,))]
    paths = [os.fspath(t) for t in thumbs if t.is_file()]
    if not paths:
        return {}
    runtime = ModelSet(settings).runtime
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_measure_in_child, model.spec(settings), runtime, paths).result()


def evaluate(db: Database, settings: Settings, suite: Suite, model_ref: str, *, engine: Any = None,
             progress: Progress | None = None, measure_resources: bool = True, store: bool = True) -> EvalReport:
    """Evaluate one embedding version on a resolved suite (``sets.resolve``) and store the results."""
    return evaluate_all(db, settings, suite, [model_ref], engine=engine, progress=progress,
                        measure_resources=measure_resources, store=store)[0]


def evaluate_all(db: Database, settings: Settings, suite: Suite, model_refs: Sequence[str], *, engine: Any = None,
                 progress: Progress | None = None, measure_resources: bool = True,
                 store: bool = True) -> list[EvalReport]:
    """Evaluate several versions on the same resolved suite. Their search latencies are measured interleaved
    (query by query, version after version), so a busy machine slows them alike and the comparison stays fair."""
    from photoscout.search.engine import SearchEngine

    progress = progress or NoProgress()
    models = [lifecycle.get(db, ref) for ref in model_refs]
    covered: dict[int, tuple[int, int]] = {}
    for model in models:
        if model.type != "embedding":
            raise PhotoscoutError(f"{model.ref} is a {model.type} model; evaluation sets measure embedding models")
        covered[model.id] = coverage(db, model)
        if covered[model.id][0] == 0:
            raise PhotoscoutError(f"{model.ref} has no embeddings yet (run: photoscout jobs start embed --model "
                                  f"{model.ref})")
    usable = [(s, q) for s in suite.sets for q in s.usable]
    if not usable:
        raise PhotoscoutError(f"evaluation set {suite.file}: none of its photos is in the library "
                              f"(index {suite.root} first)")
    engine = engine or SearchEngine(db, settings)
    results: dict[int, dict[str, list[QueryResult]]] = {m.id: {s.name: [] for s in suite.sets} for m in models}
    progress.phase(f"quality: {', '.join(m.ref for m in models)}", len(usable) * len(models))
    for model in models:
        for s, q in usable:
            try:
                found = engine.search(q.text, limit=suite.depth, model_ref=model.ref)
            except PhotoscoutError as exc:
                raise PhotoscoutError(f"evaluation set {suite.file}, set {s.name}, query {q.text!r} with "
                                      f"{model.ref}: {exc}") from exc
            ranked = [h.photo_id for h in found.hits]
            results[model.id][s.name].append(QueryResult(
                s.name, q.text, len(q.relevant), metrics.query_metrics(ranked, q.relevant, suite.k, suite.depth),
                ranked[: suite.k]))
            progress.advance()
    timings: dict[int, dict[str, list[float]]] = {m.id: {s.name: [] for s in suite.sets} for m in models}
    progress.phase("search latency", len(usable) * len(models) * LATENCY_ROUNDS)
    for _round in range(LATENCY_ROUNDS):  # what a user waits for: embedding the query included, k results
        for s, q in usable:
            for model in models:
                engine.clear_cache()
                started = time.perf_counter()
                engine.search(q.text, limit=suite.k, model_ref=model.ref)
                timings[model.id][s.name].append((time.perf_counter() - started) * 1000)
                progress.advance()
    reports = []
    sessions = {m.id: uuid.uuid4().hex[:12] for m in models}
    for model in models:
        done, total = covered[model.id]
        warnings = list(suite.warnings)
        if done < total:
            warnings.append(f"{model.ref} has embeddings for {done} of {total} photos: results are partial")
        set_results = []
        for s in suite.sets:
            qs, ts = results[model.id][s.name], timings[model.id][s.name]
            lat = {"p50": round(metrics.percentile(ts, 50), 1), "p95": round(metrics.percentile(ts, 95), 1)} \
                if ts else {}
            set_results.append(SetResult(s.name, s.digest, qs, metrics.mean_metrics([q.metrics for q in qs]), lat))
        all_times = [t for ts in timings[model.id].values() for t in ts]
        latency = {"p50": round(metrics.percentile(all_times, 50), 1),
                   "p95": round(metrics.percentile(all_times, 95), 1), "searches": len(all_times)}
        resources: dict[str, Any] = storage(db, model)
        # the sessions timed side by side with this one: the gate compares latencies measured together
        resources["measured_with"] = {m.ref: sessions[m.id] for m in models if m.id != model.id}
        if measure_resources:
            progress.phase(f"measuring {model.ref} (throughput, memory)", 1)
            resources |= measure_model(db, settings, model)
            progress.advance()
        report = EvalReport(
            model=model.ref, model_id=model.id, status=model.status, suite=suite.name, suite_digest=suite.digest,
            session=sessions[model.id], k=suite.k, depth=suite.depth, sets=set_results,
            overall=metrics.mean_metrics([q.metrics for qs in results[model.id].values() for q in qs]),
            latency=latency, resources=resources, coverage=round(done / total, 4) if total else 0.0,
            warnings=warnings)
        if store:
            _store(db, report)
        reports.append(report)
    return reports


def _store(db: Database, report: EvalReport) -> None:
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


# -- reading stored results ------------------------------------------------------------------------------
def latest(db: Database, model: RegisteredModel) -> list[dict[str, Any]]:
    """The rows of the model's most recent evaluation session."""
    with db.connection() as conn:
        row = conn.execute("SELECT session FROM eval_runs WHERE model_id = %s ORDER BY created_at DESC, id DESC "
                           "LIMIT 1", (model.id,)).fetchone()
    return session_rows(db, row[0]) if row else []


def session_rows(db: Database, session: str) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(
            "SELECT r.id, r.session, r.suite, r.set_name, r.set_digest, r.k, r.metrics, r.latency, r.resources, "
            "r.coverage, r.created_at, m.name || '@' || m.version AS model FROM eval_runs r "
            "JOIN model_registry m ON m.id = r.model_id WHERE r.session = %s ORDER BY r.id", (session,)))


def matching(db: Database, model: RegisteredModel, digest: str,
             prefer_session: str | None = None) -> dict[str, Any] | None:
    """The model's result on exactly this set (same queries, k and resolved photos): from ``prefer_session`` if it
    has one, else the most recent."""
    from psycopg.rows import dict_row

    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, session, set_name, metrics, latency, resources, coverage, created_at FROM eval_runs "
            "WHERE model_id = %s AND set_digest = %s ORDER BY session = %s DESC, created_at DESC, id DESC LIMIT 1",
            (model.id, digest, prefer_session or "")).fetchone()


def sessions(db: Database, model: RegisteredModel | None = None, limit: int = 50) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

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


# -- comparing and presenting ---------------------------------------------------------------------------
def compare(name: str, candidate: dict[str, float], baseline: dict[str, float] | None,
            max_drop: dict[str, float]) -> dict[str, Any]:
    """One set's row: the candidate's metrics and, given a baseline, its metrics, the differences and
    ``regressed``: the metrics dropping more than the gate allows (never on the overall row, which is not gated:
    a win on one set must not hide a loss on another)."""
    row: dict[str, Any] = {"set": name, "candidate": candidate}
    if baseline:
        row["baseline"] = baseline
        row["delta"] = {m: round(candidate[m] - baseline[m], 4) for m in metrics.METRICS}
        row["regressed"] = [] if name == OVERALL else [
            m for m in metrics.METRICS if baseline[m] - candidate[m] > max_drop.get(m, 1.0)]
    return row


def comparison_rows(candidate: EvalReport, baseline: EvalReport | None,
                    max_drop: dict[str, float]) -> list[dict[str, Any]]:
    base = baseline.set_metrics() if baseline else {}
    return [compare(name, mets, base.get(name), max_drop) for name, mets in candidate.set_metrics().items() if mets]


def markdown(rows: list[dict[str, Any]], k: int) -> str:
    """Rows from ``compare`` as a Markdown table: 'baseline → candidate (difference)', ✗ where regressed."""
    lines = ["| set | " + " | ".join(metrics.label(m, k) for m in metrics.METRICS) + " |",
             "|---" * (len(metrics.METRICS) + 1) + "|"]
    for r in rows:
        cells = []
        for m in metrics.METRICS:
            if "baseline" not in r:
                cells.append(f"{r['candidate'][m]:.3f}")
            else:
                mark = " ✗" if m in r["regressed"] else ""
                cells.append(f"{r['baseline'][m]:.3f} → {r['candidate'][m]:.3f} ({r['delta'][m]:+.3f}){mark}")
        lines.append(f"| {r['set']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def log_evaluation(settings: Settings, candidate: EvalReport, baseline: EvalReport | None,
                   max_drop: dict[str, float]) -> None:
    def facts(r: EvalReport) -> str:
        res = r.resources
        return (f"{r.model} ({r.status}): search p50 {r.latency['p50']} ms, p95 {r.latency['p95']} ms; "
                f"embedding {res.get('photos_per_s', '?')} photos/s, peak memory {res.get('peak_rss_mb', '?')} MB; "
                f"embeddings {res['embedding_bytes'] / 1e6:.1f} MB, index {res['index_bytes'] / 1e6:.1f} MB; "
                f"coverage {r.coverage:.1%}; session {r.session}")

    lines = [f"sets: {candidate.suite} (k = {candidate.k}, mAP over {candidate.depth} results)", facts(candidate)]
    if baseline is not None:
        lines.append(facts(baseline))
    lines += [f"warning: {w}" for w in candidate.warnings]
    title = f"evaluated {candidate.model}" + (f" against {baseline.model}" if baseline else "")
    if baseline is not None:
        lines.append(f"table: {baseline.model} → {candidate.model}")
    decisions.append(settings, title, lines, table=markdown(comparison_rows(candidate, baseline, max_drop),
                                                            candidate.k))
