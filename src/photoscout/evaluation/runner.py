"""Running model versions against evaluation sets: quality (P@k, R@k, mAP, nDCG@k per set and overall) of the
search a user gets, search latency (p50/p95 with the query embedding included, versions timed interleaved) and
resources (``resources``); results stored (``results``), compared and logged (``report``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.evaluation import metrics, report, resources, results, sets
from photoscout.evaluation.results import EvalReport, QueryResult, SetResult
from photoscout.evaluation.sets import Suite
from photoscout.registry import lifecycle
from photoscout.search import matches
from photoscout.search.engine import SearchEngine

LATENCY_ROUNDS = 5


def evaluate(db: Database, settings: Settings, suite: Suite, model_ref: str, *, engine: SearchEngine | None = None,
             progress: Progress | None = None, measure_resources: bool = True, store: bool = True) -> EvalReport:
    """Evaluate one embedding version on a resolved suite (``sets.resolve``) and store the results."""
    return evaluate_all(db, settings, suite, [model_ref], engine=engine, progress=progress,
                        measure_resources=measure_resources, store=store)[0]


def evaluate_all(db: Database, settings: Settings, suite: Suite, model_refs: Sequence[str], *,
                 engine: SearchEngine | None = None, progress: Progress | None = None,
                 measure_resources: bool = True, store: bool = True) -> list[EvalReport]:
    """Evaluate several versions on the same resolved suite. Their search latencies are measured interleaved
    (query by query, version after version), so a busy machine slows them alike and the comparison stays fair."""
    progress = progress or NoProgress()
    models = [lifecycle.get(db, ref) for ref in model_refs]
    covered: dict[int, tuple[int, int]] = {}
    for model in models:
        if model.type != "embedding":
            raise PhotoscoutError(f"{model.ref} is a {model.type} model; evaluation sets measure embedding models")
        covered[model.id] = resources.coverage(db, model)
        if covered[model.id][0] == 0:
            raise PhotoscoutError(f"{model.ref} has no embeddings yet (run: photoscout jobs start embed --model "
                                  f"{model.ref})")
    usable = [(s, q) for s in suite.sets for q in s.usable]
    if not usable:
        raise PhotoscoutError(f"evaluation set {suite.file}: none of its photos is in the library "
                              f"(index {suite.root} first)")
    engine = engine or SearchEngine(db, settings)
    found: dict[int, dict[str, list[QueryResult]]] = {m.id: {s.name: [] for s in suite.sets} for m in models}
    judged: dict[int, list[matches.Judged]] = {m.id: [] for m in models}  # for the cutoff of what matches
    progress.phase(f"quality: {', '.join(m.ref for m in models)}", len(usable) * len(models))
    for model in models:
        for s, q in usable:
            try:
                hits = engine.search(q.text, limit=suite.depth, model_ref=model.ref).hits
            except PhotoscoutError as exc:
                raise PhotoscoutError(f"evaluation set {suite.file}, set {s.name}, query {q.text!r} with "
                                      f"{model.ref}: {exc}") from exc
            ranked = [h.photo_id for h in hits]
            z, evidence = engine.judge(q.text, model.ref)
            judged[model.id].append(matches.Judged(z, evidence, set(q.relevant)))
            found[model.id][s.name].append(QueryResult(
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
            qs, ts = found[model.id][s.name], timings[model.id][s.name]
            lat = {"p50": round(metrics.percentile(ts, 50), 1), "p95": round(metrics.percentile(ts, 95), 1)} \
                if ts else {}
            set_results.append(SetResult(s.name, s.digest, qs, metrics.mean_metrics([q.metrics for q in qs]), lat))
        all_times = [t for ts in timings[model.id].values() for t in ts]
        latency = {"p50": round(metrics.percentile(all_times, 50), 1),
                   "p95": round(metrics.percentile(all_times, 95), 1), "searches": len(all_times)}
        used: dict[str, Any] = resources.storage(db, model)
        # the sessions timed side by side with this one: the gate compares latencies measured together
        used["measured_with"] = {m.ref: sessions[m.id] for m in models if m.id != model.id}
        used["cutoff"] = matches.calibrate(judged[model.id])  # what --sort date keeps (search/matches.py)
        if measure_resources:
            progress.phase(f"measuring {model.ref} (throughput, memory)", 1)
            used |= resources.measure(db, settings, model)
            progress.advance()
        evaluated = EvalReport(
            model=model.ref, model_id=model.id, status=model.status, suite=suite.name, suite_digest=suite.digest,
            session=sessions[model.id], k=suite.k, depth=suite.depth, sets=set_results,
            overall=metrics.mean_metrics([q.metrics for qs in found[model.id].values() for q in qs]),
            latency=latency, resources=used, coverage=round(done / total, 4) if total else 0.0,
            warnings=warnings)
        if store:
            results.store(db, evaluated)
        reports.append(evaluated)
    return reports


@dataclass
class SuiteRun:
    """One set file evaluated: the candidate, the active version beside it (or None), the compared rows."""

    suite: str
    file: Path
    candidate: EvalReport
    baseline: EvalReport | None
    comparison: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "file": str(self.file), "candidate": self.candidate.as_dict(),
                "baseline": self.baseline.as_dict() if self.baseline else None, "comparison": self.comparison}


def run(db: Database, settings: Settings, model_ref: str, set_files: Sequence[Path] | None = None, *,
        compare_active: bool = False, k: int | None = None, measure_resources: bool = True,
        engine: SearchEngine | None = None, progress: Progress | None = None,
        warn: Callable[[str], None] | None = None) -> list[SuiteRun]:
    """``eval run``: evaluate ``model_ref`` on each set file (default: the user's sets in ``<home>/evalsets``),
    beside the active version with ``compare_active``; every result is stored and logged to the decision log.
    ``k`` overrides the files' k; ``warn`` hears what was skipped."""
    warn = warn or (lambda _message: None)
    files = list(set_files or sets.default_files(settings))
    if not files:
        raise InvalidParameter(f"no evaluation sets: give a set file (the repository ships evalsets/photos-dev.toml) "
                               f"or put set files in {sets.user_folder(settings)}", "set_files")
    candidate = lifecycle.get(db, model_ref)
    baseline = lifecycle.active(db, candidate.type, candidate.purpose) if compare_active else None
    if compare_active and baseline is None:
        raise PhotoscoutError(f"there is no active {candidate.type} model to compare with")
    if baseline is not None and baseline.id == candidate.id:
        warn(f"{candidate.ref} is the active model; nothing to compare with")
        baseline = None
    refs = [candidate.ref] + ([baseline.ref] if baseline else [])
    engine = engine or SearchEngine(db, settings)
    out = []
    for file in files:
        suite = sets.load(file)
        if k is not None:
            suite.k = k
            suite.depth = max(suite.depth, k)
        sets.resolve(db, suite)
        for w in suite.warnings:
            warn(w)
        reports = evaluate_all(db, settings, suite, refs, engine=engine, progress=progress,
                               measure_resources=measure_resources)
        cand, base = reports[0], (reports[1] if len(reports) > 1 else None)
        report.log_evaluation(settings, cand, base, settings.promotion_max_drop)
        out.append(SuiteRun(suite.name, Path(file), cand, base,
                            report.comparison_rows(cand, base, settings.promotion_max_drop)))
    return out
