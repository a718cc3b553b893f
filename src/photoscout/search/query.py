"""What a query asks besides its meaning: the words to look for in OCR text (with the printed words of concepts
such as receipts), the phrases it quotes (words that must be printed in the photo) and the filters (category,
dates, folder, camera, has text, printed phrases) as SQL over ``photos p``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from photoscout.errors import InvalidParameter
from photoscout.library.paths import like_prefix, normalize_root

# Concepts whose photos are recognised by the words printed on them.
TEXT_CONCEPTS = {
    "receipt": ("receipt", "total", "subtotal", "cash", "change", "tax", "invoice", "qty"),
    "invoice": ("invoice", "total", "tax", "due", "amount"),
    "bill": ("bill", "total", "amount", "due"),
}
MAX_PRINTED = 8  # quoted phrases in one query
_QUOTED = re.compile(r'["\u201c\u201d]([^"\u201c\u201d]*)["\u201c\u201d]')
STOPWORDS = {"the", "and", "for", "from", "with", "of", "a", "an", "in", "on", "at", "to", "my", "photo", "picture",
             "image", "some", "this", "that"}


def ocr_terms(text: str) -> list[str]:
    """The words to look for in OCR text: the query's content words, plus printed words of the concepts it names."""
    words = [w for w in re.findall(r"[^\W_]+", text.lower()) if len(w) >= 3 and w not in STOPWORDS]
    terms = list(dict.fromkeys(words))
    for w in words:
        for t in TEXT_CONCEPTS.get(w.rstrip("s"), ()):
            if t not in terms:
                terms.append(t)
    return terms


def squeeze(text: str) -> str:
    """Lower case with everything but letters and digits left out: how OCR text is compared where its spacing and
    punctuation cannot be trusted ("TOT AL", "AMOUNTDUE"). Only to refuse a phrase with nothing to look for: the
    comparison itself squeezes both sides with the database's ``ocr_squeeze`` (``sql/0010_one_squeeze_rule.sql``),
    whose letters and digits differ from Python's off ASCII."""
    return "".join(re.findall(r"[^\W_]+", text.lower()))


def printed_phrases(text: str) -> tuple[str, list[str]]:
    """A query's quoted phrases (``"total due"``: words that must be printed in the photo) and its text with the
    quote marks taken out (the quoted words still count for its meaning)."""
    phrases = [m.strip() for m in _QUOTED.findall(text)]
    if not phrases:
        return text, []
    if len(phrases) > MAX_PRINTED:
        raise InvalidParameter(f"the query quotes {len(phrases)} phrases; at most {MAX_PRINTED}", "text")
    for phrase in phrases:
        _check_phrase(phrase, "text")
    plain = " ".join(_QUOTED.sub(lambda m: f" {m.group(1)} ", text).split())
    return plain, phrases


def _check_phrase(phrase: str, field: str) -> None:
    if not squeeze(phrase):
        raise InvalidParameter(f"the quoted phrase {phrase!r} has no letters or digits to look for", field)


@dataclass
class Filters:
    category: str | None = None
    after: date | None = None
    before: date | None = None
    path: str | None = None
    camera: str | None = None
    has_text: bool = False
    printed: tuple[str, ...] = ()  # phrases the active OCR model must have read in the photo (case, spacing ignored)

    def sql(self) -> tuple[str, list[Any]]:
        where: list[str] = ["p.status = 'ok'"]
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
            _check_phrase(phrase, "printed")

    @property
    def active(self) -> bool:
        return any((self.category, self.after, self.before, self.path, self.camera, self.has_text, self.printed))
