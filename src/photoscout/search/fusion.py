"""Reciprocal-rank fusion (RRF, k = 60) of a query's rankings, pseudo-relevance feedback on the first screen's image
features, and the fused page's photos with why each one matched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from photoscout.registry import lifecycle
from photoscout.search.results import Hit

RRF_K = 60
FEEDBACK_K = 10  # the first screen's photos whose mean features rank the candidates again (pseudo-relevance feedback)
OCR_WEIGHT = 0.5  # OCR text matches count half a vector rank (a receipt that says "pizza" is not a pizza)
LEADING_OCR_WEIGHT = 2.0  # ... and double where printed words define the query (a receipt, quoted words)
TEXT_MEANING_MIN = 0.3  # the embedded OCR text counts only when it is this close to the query
Conn = psycopg.Connection[Any]


@dataclass
class Rankings:
    """A query's rankings, each best first: (photo, similarity) or, for OCR text, (photo, snippet)."""

    vector: list[tuple[int, float]] = field(default_factory=list)
    ocr: list[tuple[int, str]] = field(default_factory=list)
    category: list[tuple[int, float]] = field(default_factory=list)
    meaning: list[tuple[int, float]] = field(default_factory=list)
    feedback: list[tuple[int, float]] = field(default_factory=list)
    keywords: list[tuple[int, str]] = field(default_factory=list)  # XMP keywords and titles with the query's words
    ocr_weight: float = OCR_WEIGHT

    def _lists(self) -> list[tuple[list[Any], float, Any]]:
        """Each ranking, its weight and how it says why a photo is in it."""
        return [
            (self.vector, 1.0, lambda sim: f"image similarity {sim:.3f}"),
            (sorted(self.category, key=lambda h: -h[1]), 1.0, lambda _sim: "in a category the query names"),
            ([h for h in self.meaning if h[1] >= TEXT_MEANING_MIN], OCR_WEIGHT,
             lambda sim: f"text in photo means something close ({sim:.2f})"),
            (self.ocr, self.ocr_weight, lambda snippet: f"text in photo: {snippet}"),
            (self.feedback, 1.0, lambda sim: f"looks like the best matches ({sim:.2f})"),
            (self.keywords, 1.0, lambda words: f"tagged: {words}"),
        ]

    def scores(self) -> dict[int, float]:
        """score = sum over rankings of weight / (60 + rank)."""
        scores: dict[int, float] = {}
        for hits, weight, _reason in self._lists():
            for rank, (pid, _value) in enumerate(hits):
                scores[pid] = scores.get(pid, 0) + weight / (RRF_K + rank + 1)
        return scores

    def reasons(self, photos: set[int]) -> dict[int, list[str]]:
        """Why each of ``photos`` scored (worded only for the photos shown)."""
        why: dict[int, list[str]] = {pid: [] for pid in photos}
        for hits, _weight, reason in self._lists():
            for pid, value in hits:
                if pid in why:
                    why[pid].append(reason(value))
        return why

    def first_screen(self) -> tuple[list[int], list[int]]:
        """The best ``FEEDBACK_K`` photos of the fusion so far, and every candidate."""
        first = self.scores()
        return sorted(first, key=lambda p: -first[p])[:FEEDBACK_K], list(first)


def feedback(conn: Conn, best: list[int], candidates: list[int]) -> list[tuple[int, float]]:
    """The candidates ranked by cosine to the mean (of unit) image features of ``best``, the featurizer being the
    active few-shot model's (features are kept per photo for few-shot classes); none without one."""
    if len(best) < 2:
        return []
    row = conn.execute("SELECT id FROM model_registry WHERE type = 'few_shot' AND purpose = 'default' "
                       "AND status = 'active'").fetchone()
    if row is None:
        return []
    mid = int(row[0])
    mean = conn.execute("SELECT avg(l2_normalize(features)) FROM photo_features WHERE model_id = %s "
                        "AND photo_id = ANY(%s)", (mid, best)).fetchone()
    if mean is None or mean[0] is None:
        return []
    rows = conn.execute("SELECT photo_id, 1 - (features <=> %s) AS sim FROM photo_features WHERE model_id = %s "
                        "AND photo_id = ANY(%s) ORDER BY sim DESC", (mean[0], mid, candidates)).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def page(conn: Conn, reg: lifecycle.RegisteredModel, rankings: Rankings, *, skip: int, limit: int) -> list[Hit]:
    """The fused ranking's photos ``skip`` to ``limit``, with their paths, categories and reasons."""
    scores = rankings.scores()
    sims = dict(rankings.vector) | dict(rankings.category)
    top = sorted(scores, key=lambda p: -scores[p])[skip:limit]
    if not top:
        return []
    why = rankings.reasons(set(top))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {r["id"]: r for r in cur.execute(
            "SELECT p.id, p.path, p.thumbnail, p.categories, p.taken_at, (SELECT a.labels FROM photo_analysis a "
            "WHERE a.photo_id = p.id AND a.model_id = %s) AS labels FROM photos p WHERE p.id = ANY(%s)",
            (reg.id, top))}
    hits = []
    for pid in top:
        r = rows.get(pid)
        if r is None:
            continue
        reasons = why[pid]
        if r["labels"]:
            reasons.append("looks like " + ", ".join(lbl for lbl, _p in r["labels"][:3]))
        hits.append(Hit(pid, r["path"], round(scores[pid], 5), reasons, sims.get(pid), r["thumbnail"],
                        list(r["categories"]), r["taken_at"].isoformat() if r["taken_at"] else None))
    return hits
