"""Comparing two versions' results set by set (what the gate and every table use) and presenting them: a Markdown
table and an entry in the decision log."""

from __future__ import annotations

from typing import Any

from photoscout.config import Settings
from photoscout.evaluation import metrics
from photoscout.evaluation.results import OVERALL, EvalReport
from photoscout.registry import decisions


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
