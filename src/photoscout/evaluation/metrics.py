"""Ranking metrics with binary relevance. ``ranked`` is the result list best first, ``relevant`` the photos that
answer the query. Pure functions: the tests check them against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import mean

METRICS = ("precision", "recall", "map", "ndcg")
LABELS = {"precision": "P@{k}", "recall": "R@{k}", "map": "mAP", "ndcg": "nDCG@{k}"}


def precision_at(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(1 for p in ranked[:k] if p in relevant) / k if k else 0.0


def recall_at(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return sum(1 for p in ranked[:k] if p in relevant) / len(relevant) if relevant else 0.0


def average_precision(ranked: Sequence[int], relevant: set[int], depth: int) -> float:
    """AP over the first ``depth`` results, normalised by the most relevant photos ``depth`` results can hold."""
    if not relevant or depth <= 0:
        return 0.0
    hits, total = 0, 0.0
    for i, p in enumerate(ranked[:depth], start=1):
        if p in relevant:
            hits += 1
            total += hits / i
    return total / min(len(relevant), depth)


def ndcg_at(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    dcg = sum(1 / math.log2(i + 1) for i, p in enumerate(ranked[:k], start=1) if p in relevant)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def query_metrics(ranked: Sequence[int], relevant: set[int], k: int, depth: int) -> dict[str, float]:
    return {"precision": precision_at(ranked, relevant, k), "recall": recall_at(ranked, relevant, k),
            "map": average_precision(ranked, relevant, depth), "ndcg": ndcg_at(ranked, relevant, k)}


def mean_metrics(per_query: Sequence[dict[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    return {m: round(mean(q[m] for q in per_query), 4) for m in METRICS}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def label(metric: str, k: int) -> str:
    return LABELS[metric].format(k=k)
