"""What a search answers, in one shape for every face (the CLI's ``--json``, the API, the pages): a page of hits,
where the page is in the ranking, where the next one starts and (sorted by date) how many matches there are. The
paging bounds (``MAX_PAGE`` results a page, ``MAX_OFFSET`` the deepest a ranking is paged to, ``MAX_MATCHES`` the
matches a search sorted by date gathers) are defined here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from photoscout.common.errors import InvalidParameter

MAX_PAGE = 500  # results on one page (``limit``)
MAX_OFFSET = 1_000_000  # the deepest a ranking is paged to: every photo of a library of a million
MAX_MATCHES = 100_000  # matches a search sorted by date gathers (more are reported, never silently dropped)
SORTS = ("relevance", "date", "-date")  # date: newest first; -date: oldest first


def check_page(limit: int, offset: int) -> None:
    """A page of at most ``MAX_PAGE`` results starting at most ``MAX_OFFSET`` deep, or a clear error naming the
    parameter."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidParameter(f"limit must be between 1 and {MAX_PAGE}", "limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidParameter(f"offset must be between 0 and {MAX_OFFSET}", "offset")


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise InvalidParameter(f"sort must be one of {', '.join(SORTS)}, not {sort!r}", "sort")
    return sort


def next_offset(offset: int, limit: int, returned: int, *, total: int | None = None) -> int | None:
    """Where the next page starts: after a full page while results remain (``total``: how many there are, when
    known)."""
    if returned < limit or offset + limit > MAX_OFFSET:
        return None
    if total is not None and offset + limit >= total:
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
    match: bool | None = None  # above the version's calibrated cutoff, or evidence by itself (``matches.py``)

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
    sort: str = "relevance"
    matches: int | None = None  # sorted by date: how many matches there are (all of them, up to MAX_MATCHES)
    cutoff: dict[str, Any] | None = None  # the version's cutoff (``matches.py``): z, calibrated, widen

    @property
    def next_offset(self) -> int | None:
        return next_offset(self.offset, self.limit, len(self.hits), total=self.matches)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "exact": self.exact, "timings_ms": self.timings_ms, "offset": self.offset,
                "limit": self.limit, "sort": self.sort, "matches": self.matches,
                "more_matches": self.matches is not None and self.matches >= MAX_MATCHES, "cutoff": self.cutoff,
                "next_offset": self.next_offset, "results": [h.as_dict() for h in self.hits]}
