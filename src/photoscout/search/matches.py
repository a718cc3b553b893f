"""Which results are matches: the cutoff a search sorted by date keeps, and the line a relevance ranking draws.

A query's cosine similarities have a scale of their own (a clear query's photos at 0.6, a vague one's at 0.3), so a
flat distance cutoff does not work. A similarity is read against the query's similarities to a sample of the library
(``z = (s - mean) / std``: how far above a typical photo it is), and each version's cutoff on ``z`` is calibrated on
the evaluation sets (``calibrate``: the ``z`` whose match sets have the best F1 against the relevant photos, over
every query), stored with the version's evaluation and shown by ``eval show``. Evidence that is a yes by itself (a
word of the query printed in the photo, a keyword, a category the query names) makes a match whatever the
similarity: fused results follow the same rule as the image ranking. ``widen`` lowers the cutoff a step at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from photoscout.database import indexes
from photoscout.registry import lifecycle

DEFAULT_Z = 3.0  # a version never evaluated
WIDEN_STEP = 0.5  # each step of "widen" lowers the cutoff this much
MAX_WIDEN = 6
SAMPLE = 2000  # stored vectors a query's similarities are read against
SAMPLE_TTL = 600.0  # seconds a version's sample is reused
CUTOFF_TTL = 60.0
GRID = [round(0.1 * i, 1) for i in range(0, 81)]  # the z cutoffs calibration tries
Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Scale:
    """A query's similarities to the library: ``z(s)`` and its inverse."""

    mean: float
    std: float

    def z(self, similarity: float) -> float:
        return (similarity - self.mean) / self.std

    def similarity(self, z: float) -> float:
        return self.mean + z * self.std


class Cutoffs:
    """The library samples and the calibrated cutoffs a long-running process keeps (inside the engine)."""

    def __init__(self) -> None:
        self._samples: dict[int, tuple[np.ndarray, float]] = {}
        self._cutoffs: dict[int, tuple[dict[str, Any], float]] = {}

    def clear(self) -> None:
        self._samples.clear()
        self._cutoffs.clear()

    def scale(self, conn: Conn, reg: lifecycle.RegisteredModel, vector: np.ndarray) -> Scale:
        sample = self._sample(conn, reg)
        if not len(sample):
            return Scale(0.0, 1.0)
        sims = sample @ vector.astype(np.float32)
        return Scale(float(sims.mean()), max(float(sims.std()), 1e-6))

    def _sample(self, conn: Conn, reg: lifecycle.RegisteredModel) -> np.ndarray:
        hit = self._samples.get(reg.id)
        if hit is not None and time.monotonic() - hit[1] < SAMPLE_TTL:
            return hit[0]
        expr, _opclass = indexes.column(reg)
        row = conn.execute("SELECT count(*) FROM photo_embeddings WHERE model_id = %s", (reg.id,)).fetchone()
        count = int(row[0]) if row else 0
        # a sample of about SAMPLE rows, whole pages at a time (reads only those pages: 100k photos in milliseconds)
        share = min(100.0, 100.0 * SAMPLE * 2 / max(count, 1))
        rows = conn.execute(f"SELECT ({expr})::vector FROM photo_embeddings e TABLESAMPLE SYSTEM (%s) "
                            f"REPEATABLE (29) WHERE e.model_id = %s LIMIT %s", (share, reg.id, SAMPLE)).fetchall()
        sample = np.asarray([np.asarray(r[0].to_numpy() if hasattr(r[0], "to_numpy") else r[0], np.float32)
                             for r in rows], np.float32)
        if len(sample):
            sample /= np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
        self._samples[reg.id] = (sample, time.monotonic())
        return sample

    def calibrated(self, conn: Conn, reg: lifecycle.RegisteredModel) -> dict[str, Any]:
        """The version's cutoff: ``{"z": ..., "f1": ..., "calibrated": True}`` from its latest evaluations (the
        mean over the set files it was last evaluated on), or the default."""
        hit = self._cutoffs.get(reg.id)
        if hit is not None and time.monotonic() - hit[1] < CUTOFF_TTL:
            return hit[0]
        rows = conn.execute(
            "SELECT DISTINCT ON (suite) (resources->'cutoff'->>'z')::float, (resources->'cutoff'->>'f1')::float "
            "FROM eval_runs WHERE model_id = %s AND resources ? 'cutoff' "
            "ORDER BY suite, created_at DESC, id DESC", (reg.id,)).fetchall()
        found: dict[str, Any] = {"z": DEFAULT_Z, "f1": None, "calibrated": False}
        if rows:
            found = {"z": round(float(np.mean([r[0] for r in rows])), 2),
                     "f1": round(float(np.mean([r[1] for r in rows])), 3), "calibrated": True}
        self._cutoffs[reg.id] = (found, time.monotonic())
        return found


def widened(z: float, widen: int) -> float:
    return z - WIDEN_STEP * max(0, min(widen, MAX_WIDEN))


@dataclass
class Judged:
    """One query of an evaluation, as calibration sees it: every photo's z, the photos with evidence that is a yes
    by itself, the relevant photos."""

    z: dict[int, float]
    evidence: set[int]
    relevant: set[int]


def calibrate(queries: list[Judged]) -> dict[str, float]:
    """The z cutoff with the best mean F1 of the match sets (evidence, or z at least the cutoff) against the relevant
    photos, over the queries; with that mean precision and recall."""
    best: dict[str, float] = {"z": DEFAULT_Z, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    if not queries:
        return best
    arrays = [(np.asarray(list(q.z.values()), np.float32), np.asarray([p in q.relevant for p in q.z]),
               np.asarray([p in q.evidence for p in q.z]), len(q.relevant)) for q in queries]
    for cut in GRID:
        f1s, ps, rs = [], [], []
        for z, rel, ev, n_rel in arrays:
            matched = ev | (z >= cut)
            tp = float((matched & rel).sum())
            p = tp / matched.sum() if matched.sum() else 0.0
            r = tp / n_rel if n_rel else 0.0
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
            ps.append(p)
            rs.append(r)
        f1 = float(np.mean(f1s))
        if f1 > best["f1"]:
            best = {"z": cut, "f1": round(f1, 4), "precision": round(float(np.mean(ps)), 4),
                    "recall": round(float(np.mean(rs)), 4)}
    return best
