"""Reciprocal-rank fusion (RRF, k = 60) of a query's rankings, pseudo-relevance feedback on the first screen's image
features, and the fused page's photos with why each one matched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from photoscout.registry import lifecycle
from photoscout.search.results import Hit

RRF_K = 60
FEEDBACK_K = 10  # the first screen's photos whose mean features rank the candidates again (pseudo-relevance feedback)
LEARNED_WEIGHT = 2.0  # the photos like those a user marked for the query (search/learned.py): they taught it
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
    learned: list[tuple[int, float]] = field(default_factory=list)  # like the photos marked for the query
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
            (self.learned, LEARNED_WEIGHT, lambda sim: f"like the photos you marked for this search ({sim:.2f})"),
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

    def evidence(self) -> set[int]:
        """Photos with evidence that makes a match by itself: the query's words printed in them or among their
        keywords, or in a category it names (``matches.py``)."""
        return {pid for hits in (self.ocr, self.keywords, self.category) for pid, _value in hits}

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


def order(conn: Conn, rankings: Rankings, *, by_date: str | None = None
          ) -> tuple[list[int], dict[int, float], dict[int, tuple[int, float, float]]]:
    """Every candidate of the fused ranking, best first or (``by_date``: "date" newest first, "-date" oldest first)
    by date taken; their scores, and the frames folded into their videos (``_fold_frames``)."""
    scores = rankings.scores()
    best_frame = _fold_frames(conn, scores)
    if by_date is None:
        return sorted(scores, key=lambda p: -scores[p]), scores, best_frame
    direction = "DESC" if by_date == "date" else "ASC"
    rows = conn.execute(f"SELECT id FROM photos WHERE id = ANY(%s) ORDER BY taken_at {direction} NULLS LAST, "
                        f"id {direction}", (list(scores),)).fetchall()
    return [int(r[0]) for r in rows], scores, best_frame


def hits(conn: Conn, reg: lifecycle.RegisteredModel, rankings: Rankings, top: list[int], scores: dict[int, float],
         best_frame: dict[int, tuple[int, float, float]],
         matched: Callable[[int, float | None], bool] | None = None) -> list[Hit]:
    """``top`` (photos and videos of ``order``) as hits: path, categories, why each matched, whether it is a match
    (``matched(shown photo, its similarity)``)."""
    if not top:
        return []
    sims = dict(rankings.vector) | dict(rankings.category)
    shown_as = {pid: best_frame.get(pid, (pid, None, None))[0] for pid in top}  # a video: its best frame's row
    why = rankings.reasons(set(shown_as.values()))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = {r["id"]: r for r in cur.execute(
            "SELECT p.id, p.path, p.thumbnail, p.categories, p.taken_at, (SELECT a.labels FROM photo_analysis a "
            "WHERE a.photo_id = p.id AND a.model_id = %s) AS labels FROM photos p WHERE p.id = ANY(%s)",
            (reg.id, list(set(top) | set(shown_as.values()))))}
    found = []
    for pid in top:
        r, seen = rows.get(pid), rows.get(shown_as[pid])
        if r is None or seen is None:
            continue
        reasons = why[shown_as[pid]]
        at = best_frame[pid][1] if pid in best_frame else None
        if at is not None:
            reasons = [f"at {int(at // 60)}:{int(at % 60):02d} in the video", *reasons]
        if seen["labels"]:
            reasons.append("looks like " + ", ".join(lbl for lbl, _p in seen["labels"][:3]))
        sim = sims.get(shown_as[pid])
        found.append(Hit(pid, r["path"], round(scores.get(pid, 0.0), 5), reasons, sim, seen["thumbnail"],
                         list(seen["categories"]), r["taken_at"].isoformat() if r["taken_at"] else None, at,
                         matched(shown_as[pid], sim) if matched else None))
    return found


def _fold_frames(conn: Conn, scores: dict[int, float]) -> dict[int, tuple[int, float, float]]:
    """Frames among the candidates are replaced (in ``scores``) by their video, scored as its best frame; by
    video: (that frame's id, its second, its score)."""
    if not scores:
        return {}
    found = conn.execute("SELECT id, frame_of, frame_ms FROM photos WHERE id = ANY(%s) AND frame_of IS NOT NULL",
                         (list(scores),)).fetchall()
    best: dict[int, tuple[int, float, float]] = {}
    for fid, video, ms in found:
        score = scores.pop(fid)
        if video not in best or score > best[video][2]:
            best[video] = (int(fid), ms / 1000, score)
    for video, (_fid, _at, score) in best.items():
        scores[video] = max(scores.get(video, 0.0), score)
    return best
