"""The filter model, once: what narrows a search (category, dates, folder, camera, has text, printed phrases, XMP
rating and keywords), how
it is read from outside (``Filters.parse``: the CLI's options and the API's and the page's parameters alike, with
the one date parser ``parse_date``), how it is written back as parameters (``Filters.params``: the CLI asking a
running server) and what it means in SQL over ``photos p`` (``Filters.sql``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from photoscout.common.errors import InvalidParameter
from photoscout.library.paths import like_prefix, normalize_root
from photoscout.search.query import Query, check_phrase

# the parameter names of the filters, as the API and the pages spell them (the CLI's --path is ``folder``)
PARAMS = ("category", "after", "before", "folder", "camera", "has_text", "rating", "tag")
TRUE = ("1", "on", "true", "yes")


def parse_date(value: str | date | None, name: str) -> date | None:
    """A day, from ``YYYY-MM-DD`` (an empty value is none); a clear error naming the parameter otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidParameter(f"{value!r} is not a date (use YYYY-MM-DD)", name) from None


def parse_rating(value: str | int | None, name: str = "rating") -> int | None:
    """A least rating, -1 (rejected) to 5 stars, as XMP writes it; an empty value is none."""
    if value is None or value == "":
        return None
    try:
        rating = int(str(value).strip())
    except ValueError:
        raise InvalidParameter(f"{value!r} is not a rating (a whole number from -1 to 5)", name) from None
    if not -1 <= rating <= 5:
        raise InvalidParameter(f"a rating is from -1 (rejected) to 5 stars, not {rating}", name)
    return rating


def _flag(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    return (value or "").strip().lower() in TRUE


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    after: date | None = None
    before: date | None = None
    path: str | None = None
    camera: str | None = None
    has_text: bool = False
    printed: tuple[str, ...] = ()  # phrases the active OCR model must have read in the photo (case, spacing ignored)
    rating: int | None = None  # at least this XMP rating
    tags: tuple[str, ...] = ()  # keywords the photo must have (XMP; case ignored)

    @classmethod
    def parse(cls, category: str | None = None, after: str | date | None = None, before: str | date | None = None,
              folder: str | None = None, camera: str | None = None, has_text: str | bool | None = None,
              rating: str | int | None = None, tag: str | None = None) -> Filters:
        """The filters from outside, as text (or already typed): empty values are no filter; checked."""
        found = cls(category=(category or "").strip() or None, after=parse_date(after, "after"),
                    before=parse_date(before, "before"), path=(folder or "").strip() or None,
                    camera=(camera or "").strip() or None, has_text=_flag(has_text), rating=parse_rating(rating),
                    tags=(tag.strip(),) if tag and tag.strip() else ())
        found.check()
        return found

    @classmethod
    def from_params(cls, params: Any) -> Filters:
        """The filters among a request's parameters (a mapping; other keys are ignored)."""
        return cls.parse(**{k: params.get(k) for k in PARAMS})

    def params(self) -> dict[str, str]:
        """The filters as the API's parameters (what ``from_params`` reads back); printed phrases travel in the
        query text."""
        out = {"category": self.category, "after": self.after.isoformat() if self.after else None,
               "before": self.before.isoformat() if self.before else None, "folder": self.path,
               "camera": self.camera, "has_text": "true" if self.has_text else None,
               "rating": str(self.rating) if self.rating is not None else None,
               "tag": self.tags[0] if len(self.tags) == 1 else None}  # more tags travel in the query text
        return {k: v for k, v in out.items() if v}

    def with_category(self, category: str) -> Filters:
        return replace(self, category=category)

    def with_printed(self, phrases: tuple[str, ...]) -> Filters:
        return replace(self, printed=(*self.printed, *phrases)) if phrases else self

    def with_query(self, meaning: Query) -> Filters:
        """These filters and those the query's own words give (quoted phrases, ``rating>=4``, ``tag:holiday``)."""
        out = self.with_printed(meaning.printed)
        if meaning.rating is not None:
            out = replace(out, rating=max(meaning.rating, out.rating if out.rating is not None else -1))
        if meaning.tags:
            out = replace(out, tags=tuple(dict.fromkeys((*out.tags, *meaning.tags))))
        return out

    def sql(self, *, listing: bool = False) -> tuple[str, list[Any]]:
        """The filters over ``photos p``: the photos search sees (a video's frames), or with ``listing`` those the
        grid lists (the video itself)."""
        from photoscout.database.schema import listed, shown  # here: the CLI's options parse without psycopg

        where: list[str] = [listed() if listing else shown()]
        params: list[Any] = []
        if self.category:
            where.append("p.categories @> ARRAY[%s]::text[]")
            params.append(self.category)
        if self.after:
            where.append("p.taken_at >= %s")
            params.append(datetime.combine(self.after, datetime.min.time()))
        if self.before:
            where.append("p.taken_at < %s")
            params.append(datetime.combine(self.before, datetime.min.time()))
        if self.path:
            root = os.fsdecode(normalize_root(self.path))
            where.append("(p.path = %s OR p.path LIKE %s)")
            params += [root, like_prefix(root)]
        if self.camera:
            where.append("(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')) ILIKE %s")
            params.append(f"%{self.camera}%")
        if self.rating is not None:
            where.append("p.rating >= %s")
            params.append(self.rating)
        for tag in self.tags:
            where.append("EXISTS (SELECT 1 FROM unnest(p.tags) g WHERE lower(g) = lower(%s))")
            params.append(tag)
        if self.has_text:
            where.append("EXISTS (SELECT 1 FROM photo_text t WHERE t.photo_id = p.id)")
        for phrase in self.printed:  # squeezed by the stored text's own rule; letters and digits are no wildcards
            where.append("EXISTS (SELECT 1 FROM photo_text t JOIN model_registry m ON m.id = t.model_id "
                         "AND m.status = 'active' WHERE t.photo_id = p.id AND ocr_squeeze(%s) <> '' "
                         "AND t.squeezed LIKE '%%' || ocr_squeeze(%s) || '%%')")
            params += [phrase, phrase]
        return " AND ".join(where), params

    def check(self) -> None:
        if self.after and self.before and self.after >= self.before:
            raise InvalidParameter("the 'after' date must be before the 'before' date", "after", "before")
        for phrase in self.printed:
            check_phrase(phrase, "printed")

    @property
    def active(self) -> bool:
        return any((self.category, self.after, self.before, self.path, self.camera, self.has_text, self.printed,
                    self.rating is not None, self.tags))
