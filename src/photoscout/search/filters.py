"""The filter model, once: what narrows a search (categories, dates, folders, cameras, has text, printed phrases,
XMP rating and keywords) and what leaves photos out (categories, words printed or tagged); how it is read from
outside (``Filters.parse``: the CLI's options and the API's and the page's parameters alike, with the one date parser
``parse_date``), how it is written back as parameters (``Filters.params``: the CLI asking a running server) and what
it means in SQL over ``photos p`` (``Filters.sql``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from photoscout.common.errors import InvalidParameter
from photoscout.library.paths import like_prefix, normalize_root
from photoscout.search.query import Query, check_phrase

# the parameter names of the filters, as the API and the pages spell them (the CLI's --path is ``folder``); each of
# ``MULTI`` may be given several times (any of several categories, folders or cameras; all of several tags)
PARAMS = ("category", "not_category", "after", "before", "folder", "camera", "has_text", "rating", "tag", "exclude")
MULTI = ("category", "not_category", "folder", "camera", "tag", "exclude")
MAX_VALUES = 20  # values of one filter
TRUE = ("1", "on", "true", "yes")


def values(value: Any, name: str) -> tuple[str, ...]:
    """A filter's values: one text or several (a list, or repeated parameters), stripped, empty ones left out."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    found = tuple(dict.fromkeys(" ".join(str(v).split()) for v in items if v is not None and str(v).strip()))
    if len(found) > MAX_VALUES:
        raise InvalidParameter(f"{name} is given {len(found)} times; at most {MAX_VALUES}", name)
    return found


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
    categories: tuple[str, ...] = ()  # in any of these categories (or few-shot classes)
    after: date | None = None
    before: date | None = None
    paths: tuple[str, ...] = ()  # under any of these folders
    cameras: tuple[str, ...] = ()  # camera make or model contains any of these
    has_text: bool = False
    printed: tuple[str, ...] = ()  # phrases the active OCR model must have read in the photo (case, spacing ignored)
    rating: int | None = None  # at least this XMP rating
    tags: tuple[str, ...] = ()  # keywords the photo must have, all of them (XMP; case ignored)
    not_categories: tuple[str, ...] = ()  # in none of these categories (or classes)
    not_words: tuple[str, ...] = ()  # printed in the photo (OCR) or among its keywords: none of these

    @classmethod
    def parse(cls, category: Any = None, after: str | date | None = None, before: str | date | None = None,
              folder: Any = None, camera: Any = None, has_text: str | bool | None = None,
              rating: str | int | None = None, tag: Any = None, not_category: Any = None,
              exclude: Any = None) -> Filters:
        """The filters from outside, as text (or already typed; several values as a list): empty values are no
        filter; checked."""
        found = cls(categories=values(category, "category"), after=parse_date(after, "after"),
                    before=parse_date(before, "before"), paths=values(folder, "folder"),
                    cameras=values(camera, "camera"), has_text=_flag(has_text), rating=parse_rating(rating),
                    tags=values(tag, "tag"), not_categories=values(not_category, "not_category"),
                    not_words=values(exclude, "exclude"))
        found.check()
        return found

    @classmethod
    def from_params(cls, params: Any) -> Filters:
        """The filters among a request's parameters (a mapping, or a multi-mapping whose ``getlist`` gives repeated
        parameters; other keys are ignored)."""
        def get(k: str) -> Any:
            if k in MULTI and hasattr(params, "getlist"):
                return params.getlist(k)
            return params.get(k)
        return cls.parse(**{k: get(k) for k in PARAMS})

    def params(self) -> dict[str, Any]:
        """The filters as the API's parameters (what ``from_params`` reads back; several values as a list);
        printed phrases travel in the query text."""
        out: dict[str, Any] = {
            "category": list(self.categories), "not_category": list(self.not_categories),
            "after": self.after.isoformat() if self.after else None,
            "before": self.before.isoformat() if self.before else None, "folder": list(self.paths),
            "camera": list(self.cameras), "has_text": "true" if self.has_text else None,
            "rating": str(self.rating) if self.rating is not None else None, "tag": list(self.tags),
            "exclude": list(self.not_words)}
        return {k: v for k, v in out.items() if v}

    @property
    def category(self) -> str | None:
        """The one category asked for (a search ranks within it), or None (none, or several)."""
        return self.categories[0] if len(self.categories) == 1 else None

    def with_category(self, category: str) -> Filters:
        return replace(self, categories=(category,))

    def with_printed(self, phrases: tuple[str, ...]) -> Filters:
        return replace(self, printed=(*self.printed, *phrases)) if phrases else self

    def with_query(self, meaning: Query) -> Filters:
        """These filters and those the query's own words give (quoted phrases, ``rating>=4``, ``tag:holiday``)."""
        out = self.with_printed(meaning.printed)
        if meaning.rating is not None:
            out = replace(out, rating=max(meaning.rating, out.rating if out.rating is not None else -1))
        if meaning.tags:
            out = replace(out, tags=tuple(dict.fromkeys((*out.tags, *meaning.tags))))
        if meaning.not_categories:
            out = replace(out, not_categories=tuple(dict.fromkeys((*out.not_categories, *meaning.not_categories))))
        if meaning.not_words:
            out = replace(out, not_words=tuple(dict.fromkeys((*out.not_words, *meaning.not_words))))
        return out

    def sql(self, *, listing: bool = False) -> tuple[str, list[Any]]:
        """The filters over ``photos p``: the photos search sees (a video's frames), or with ``listing`` those the
        grid lists (the video itself)."""
        from photoscout.database.schema import listed, shown  # here: the CLI's options parse without psycopg

        where: list[str] = [listed() if listing else shown()]
        params: list[Any] = []
        if len(self.categories) == 1:  # containment: what the planner estimates best for one category
            where.append("p.categories @> ARRAY[%s]::text[]")
            params.append(self.categories[0])
        elif self.categories:
            where.append("p.categories && %s::text[]")
            params.append(list(self.categories))
        if self.not_categories:
            where.append("NOT (p.categories && %s::text[])")
            params.append(list(self.not_categories))
        if self.after:
            where.append("p.taken_at >= %s")
            params.append(datetime.combine(self.after, datetime.min.time()))
        if self.before:
            where.append("p.taken_at < %s")
            params.append(datetime.combine(self.before, datetime.min.time()))
        if self.paths:
            roots = [os.fsdecode(normalize_root(path)) for path in self.paths]
            where.append("(" + " OR ".join("p.path = %s OR p.path LIKE %s" for _ in roots) + ")")
            params += [v for root in roots for v in (root, like_prefix(root))]
        if self.cameras:
            where.append("(coalesce(p.camera_make, '') || ' ' || coalesce(p.camera_model, '')) ILIKE ANY(%s)")
            params.append([f"%{c}%" for c in self.cameras])
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
        for word in self.not_words:  # not printed (any OCR model's text), not a keyword or in the title
            where.append("NOT EXISTS (SELECT 1 FROM photo_text t WHERE t.photo_id = p.id AND ocr_squeeze(%s) <> '' "
                         "AND t.squeezed LIKE '%%' || ocr_squeeze(%s) || '%%') AND NOT EXISTS (SELECT 1 FROM "
                         "unnest(array_append(p.tags, p.title)) g WHERE lower(g) LIKE '%%' || lower(%s) || '%%')")
            params += [word, word, word]
        return " AND ".join(where), params

    def check(self) -> None:
        if self.after and self.before and self.after >= self.before:
            raise InvalidParameter("the 'after' date must be before the 'before' date", "after", "before")
        for phrase in self.printed:
            check_phrase(phrase, "printed")
        for word in self.not_words:
            check_phrase(word, "exclude")
        both = set(self.categories) & set(self.not_categories)
        if both:
            raise InvalidParameter(f"{sorted(both)[0]!r} is both asked for and left out", "category", "not_category")

    @property
    def active(self) -> bool:
        return any((self.categories, self.after, self.before, self.paths, self.cameras, self.has_text, self.printed,
                    self.rating is not None, self.tags, self.not_categories, self.not_words))
