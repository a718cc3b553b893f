"""Smart albums: a search saved under a name (query, filters, order), stored in ``smart_albums``. An album holds
the matches of its search at the moment it is looked at (``SearchEngine.search`` with ``only_matches``): new photos
join it, and a newly promoted version answers it with its own calibrated cutoff. The count it shows is that
search's number of matches."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from photoscout.common.errors import InvalidParameter, NotFound, PhotoscoutError
from photoscout.database import Database
from photoscout.search import query
from photoscout.search.filters import Filters
from photoscout.search.results import check_sort

MAX_NAME = 100


@dataclass(frozen=True)
class Album:
    name: str
    query: str
    filters: Filters
    sort: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "query": self.query, "filters": self.filters.params(), "sort": self.sort,
                "created_at": self.created_at}


def check_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidParameter(f"an album's name has 1 to {MAX_NAME} characters", "name")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidParameter("an album's name cannot hold control characters", "name")
    return name


def save(db: Database, name: str, text: str | None, filters: Filters, sort: str, *, replace: bool = False) -> Album:
    """Save a search as an album (checked as a search would check it); an existing name is refused unless
    ``replace``."""
    name = check_name(name)
    check_sort(sort)
    meaning = query.parse(text)
    if not (meaning.text or meaning.printed or meaning.filters_only or filters.active):
        raise InvalidParameter("an album needs a query or a filter", "query")
    filters.check()
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO smart_albums (name, query, filters, sort) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET query = EXCLUDED.query, filters = EXCLUDED.filters, "
            "sort = EXCLUDED.sort, updated_at = now() WHERE %s RETURNING created_at",
            (name, (text or "").strip(), Jsonb(filters.params()), sort, replace)).fetchone()
    if row is None:
        raise PhotoscoutError(f"there is already an album named {name!r} (save with replace to change it)",
                              status=409)
    return Album(name, (text or "").strip(), filters, sort, row[0].isoformat())


def get(db: Database, name: str) -> Album:
    with db.connection() as conn:
        row = conn.execute("SELECT name, query, filters, sort, created_at FROM smart_albums WHERE name = %s",
                           (" ".join((name or "").split()),)).fetchone()
    if row is None:
        raise NotFound(f"no album named {name!r} (see 'photoscout albums list')")
    return _album(row)


def all_albums(db: Database) -> list[Album]:
    with db.connection() as conn:
        rows = conn.execute("SELECT name, query, filters, sort, created_at FROM smart_albums "
                            "ORDER BY lower(name)").fetchall()
    return [_album(r) for r in rows]


def delete(db: Database, name: str) -> None:
    with db.connection() as conn:
        gone = conn.execute("DELETE FROM smart_albums WHERE name = %s", (" ".join((name or "").split()),)).rowcount
    if not gone:
        raise NotFound(f"no album named {name!r}")


def _album(row: Any) -> Album:
    name, text, params, sort, created = row
    return Album(name, text, Filters.from_params(params or {}), sort, created.isoformat())
