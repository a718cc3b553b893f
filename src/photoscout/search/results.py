"""What a search answers, in one shape for every face (the CLI's ``--json``, the API, the pages): a page of hits,
where the page is in the ranking and where the next one starts. The page cap (``MAX_RESULTS``: how deep a ranking
can be paged) is defined here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photoscout.common.errors import InvalidParameter

MAX_RESULTS = 500  # the deepest result a ranking can be paged to (offset + limit)


def check_page(limit: int, offset: int) -> None:
    """A page inside the first ``MAX_RESULTS`` results, or a clear error naming the parameter."""
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameter(f"limit must be between 1 and {MAX_RESULTS}", "limit")
    if not 0 <= offset <= MAX_RESULTS - limit:
        raise InvalidParameter(f"offset must be between 0 and {MAX_RESULTS} minus the limit "
                               f"(the first {MAX_RESULTS} results can be paged through)", "offset")


def next_offset(offset: int, limit: int, returned: int, *, cap: int | None = MAX_RESULTS) -> int | None:
    """Where the next page starts: after a full page, while a next full page fits under ``cap`` (none: no cap)."""
    if returned < limit:
        return None
    if cap is not None and offset + 2 * limit > cap:
        return None
    return offset + limit


@dataclass
class Hit:
    photo_id: int
    path: str
    score: float
    why: list[str]
    similarity: float | None = None
    thumbnail: str | None = None
    categories: list[str] = field(default_factory=list)
    taken_at: str | None = None
    at_seconds: float | None = None  # a video: the moment that matched

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # shallow: dataclasses.asdict deep-copies, 0.5 ms a page of 40 (bench_serve)


@dataclass
class SearchResult:
    model: str | None  # the version that ranked (none: the library in folder order)
    hits: list[Hit]
    timings_ms: dict[str, float]
    exact: bool
    offset: int = 0
    limit: int = 20
    capped: bool = True  # a ranking pages to MAX_RESULTS; the library in folder order to its end

    @property
    def next_offset(self) -> int | None:
        return next_offset(self.offset, self.limit, len(self.hits), cap=MAX_RESULTS if self.capped else None)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "exact": self.exact, "timings_ms": self.timings_ms, "offset": self.offset,
                "limit": self.limit, "next_offset": self.next_offset, "results": [h.as_dict() for h in self.hits]}
