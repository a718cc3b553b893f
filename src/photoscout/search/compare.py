"""Two versions side by side for one query: each ranking, and which of its photos the other one does not show
(what a user looks at before promoting a version)."""

from __future__ import annotations

from typing import Any

from photoscout.search.engine import SearchEngine
from photoscout.search.filters import Filters


def compare(engine: SearchEngine, text: str, left: str | None, right: str, *, limit: int = 20,
            filters: Filters | None = None) -> dict[str, Any]:
    """``left`` (None: the active version) and ``right`` answer ``text``; each result says whether the other side
    shows it too, and where."""
    a = engine.search(text, limit=limit, filters=filters, model_ref=left)
    b = engine.search(text, limit=limit, filters=filters, model_ref=right)
    rank_a = {h.photo_id: i for i, h in enumerate(a.hits, 1)}
    rank_b = {h.photo_id: i for i, h in enumerate(b.hits, 1)}

    def side(result: Any, other: dict[int, int]) -> dict[str, Any]:
        out = result.as_dict()
        for row in out["results"]:
            row["other_rank"] = other.get(row["photo_id"])
            row["differs"] = row["photo_id"] not in other
        return out

    shared = len(rank_a.keys() & rank_b.keys())
    return {"query": text, "limit": limit, "left": side(a, rank_b), "right": side(b, rank_a), "shared": shared,
            "only_left": len(rank_a) - shared, "only_right": len(rank_b) - shared}
