"""What a query means, worked out once (``parse``): its words (one tokenizer, ``words``), the phrases it quotes (words
that must be printed in the photo), the words to look for in OCR text (with the printed words of concepts such as
receipts), whether printed words lead its ranking, and the photo categories its words name. The engine, the
evaluation and every face take a query's meaning from here; the filters are ``filters.py``."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from photoscout.analysis.category_rules import DOCUMENT_KINDS
from photoscout.common.errors import InvalidParameter

MAX_QUERY_CHARS = 1000
MAX_PRINTED = 8  # quoted phrases in one query
# Concepts whose photos are recognised by the words printed on them: a query naming one lets the OCR evidence lead.
TEXT_CONCEPTS = {
    "receipt": ("receipt", "total", "subtotal", "cash", "change", "tax", "invoice", "qty"),
    "invoice": ("invoice", "total", "tax", "due", "amount"),
    "bill": ("bill", "total", "amount", "due"),
}
STOPWORDS = {"the", "and", "for", "from", "with", "of", "a", "an", "in", "on", "at", "to", "my", "photo", "picture",
             "image", "some", "this", "that"}
# Words that name a category: a query with one of them also ranks that category's photos. The categories that the
# image classifier tells (food, electronics, animals, vehicles) are named by their own words only, not by the kinds
# within them ("headphones", "a car", "pizza"): a kind the classifier has no class for is often not put in its
# category, and ranking the category's other photos beside it would push the kind's own photos down (issue #14:
# "headphones" AP 0.20 with the electronics ranking, 0.45 without). A kind is found by the image ranking. People,
# screenshots and documents come from faces, screen cues and OCR text, so every word of theirs names them.
CATEGORY_WORDS = {
    "documents": ("receipt", "invoice", "document", "page", "letter", "bill", "form", "scan", "contract", "manual"),
    "receipts": ("receipt", "invoice", "bill", "till slip"),
    "pages": ("page", "printed", "manual", "article", "letter", "contract", "handout"),
    "screenshots": ("screenshot", "screen shot", "screen capture", "error message", "dialog", "settings page",
                    "web page", "webpage", "website", "web site", "browser window"),
    "food": ("food", "dish", "meal", "dinner", "lunch", "breakfast"),
    "electronics": ("electronic", "gadget", "device"),
    "people": ("person", "people", "face", "portrait", "selfie"),
    "animals": ("animal", "pet", "wildlife"),
    "vehicles": ("vehicle",),
}
_WORD = re.compile(r"[^\W_]+")  # letters and digits, any script
# filters written in a query: rating>=4 (or rating:4, at least 4 stars), tag:holiday, tag:"new york"
_RATING = re.compile(r"(?<!\S)rating\s*(?:>=|:|=)\s*(-?\d+)(?!\S)", re.IGNORECASE)
_TAG = re.compile(r'(?<!\S)(?:tag|keyword):(?:["\u201c\u201d]([^"\u201c\u201d]+)["\u201c\u201d]|([^\s"]+))',
                  re.IGNORECASE)
_QUOTED = re.compile(r'["\u201c\u201d]([^"\u201c\u201d]*)["\u201c\u201d]')
# what a query leaves out: -screenshots, not:documents (a category or class), -"total due" (printed), -word
_NEGATIVE = re.compile(r'(?<!\S)(-|not:)(?:["\u201c\u201d]([^"\u201c\u201d]+)["\u201c\u201d]'
                       r'|([^\s"\u201c\u201d-][^\s"]*))', re.IGNORECASE)
# whole words over the query's words joined by single spaces, plurals too ("cars", not "cartoon"; "bills", not
# "billboard"); a phrase of several words matches those words in a row ("screen-shot" is "screen shot")
_NAMING = {cat: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                            + r")(?:s|es)?\b")
           for cat, words in CATEGORY_WORDS.items()}


def words(text: str) -> list[str]:
    """The one tokenizer of a query: its runs of letters and digits, lower case ("Receipts, please!" -> receipts,
    please). Punctuation and spacing never change what a word is."""
    return _WORD.findall(text.lower())


def _singular(word: str) -> str:
    return word.rstrip("s")


def ocr_terms(text: str) -> list[str]:
    """The words to look for in OCR text: the query's content words, plus printed words of the concepts it names."""
    content = [w for w in words(text) if len(w) >= 3 and w not in STOPWORDS]
    terms = list(dict.fromkeys(content))
    for w in content:
        for t in TEXT_CONCEPTS.get(_singular(w), ()):
            if t not in terms:
                terms.append(t)
    return terms


def names_text_concept(text: str) -> bool:
    """Whether the query names a concept defined by printed words (a receipt, an invoice, a bill)."""
    return any(_singular(w) in TEXT_CONCEPTS for w in words(text))


def named_categories(text: str) -> list[str]:
    """The categories a query's words name ("receipt from the hardware store" -> receipts). A longer phrase wins
    over the words inside it ("a web page" names screenshots, not the pages "page" names), and a kind of document
    over documents."""
    joined = " ".join(words(text))
    found = [(m.start(), m.end(), cat) for cat, pattern in _NAMING.items() for m in pattern.finditer(joined)]
    named = []
    for start, end, cat in found:
        inside_longer = any(s <= start and end <= e and (e - s) > (end - start) and c != cat for s, e, c in found)
        if not inside_longer and cat not in named:
            named.append(cat)
    if any(k in named for k in DOCUMENT_KINDS):  # the kind of document is the more precise: it stands alone
        named = [c for c in named if c != "documents"]
    return [c for c in CATEGORY_WORDS if c in named]


def squeeze(text: str) -> str:
    """Lower case with everything but letters and digits left out: how OCR text is compared where its spacing and
    punctuation cannot be trusted ("TOT AL", "AMOUNTDUE"). Only to refuse a phrase with nothing to look for: the
    comparison itself squeezes both sides with the database's ``ocr_squeeze`` (``sql/0010_one_squeeze_rule.sql``),
    whose letters and digits differ from Python's off ASCII."""
    return "".join(words(text))


def printed_phrases(text: str) -> tuple[str, list[str]]:
    """A query's quoted phrases (``"total due"``: words that must be printed in the photo) and its text with the
    quote marks taken out (the quoted words still count for its meaning)."""
    phrases = [m.strip() for m in _QUOTED.findall(text)]
    if not phrases:
        return text, []
    if len(phrases) > MAX_PRINTED:
        raise InvalidParameter(f"the query quotes {len(phrases)} phrases; at most {MAX_PRINTED}", "text")
    for phrase in phrases:
        check_phrase(phrase, "text")
    plain = " ".join(_QUOTED.sub(lambda m: f" {m.group(1)} ", text).split())
    return plain, phrases


def check_phrase(phrase: str, field: str) -> None:
    if not squeeze(phrase):
        raise InvalidParameter(f"the quoted phrase {phrase!r} has no letters or digits to look for", field)


@dataclass(frozen=True)
class Query:
    """A text query's meaning: what ranks it and what it requires."""

    text: str  # the query with quote marks taken out: what its meaning is embedded from
    printed: tuple[str, ...]  # quoted phrases: must be printed in the photo
    terms: tuple[str, ...]  # words looked for in OCR text
    categories: tuple[str, ...]  # categories its words name (each a supporting ranking)
    printed_leads: bool  # printed words define what it asks for (quoted words, a receipt): OCR evidence leads
    rating: int | None = None  # rating>=N written in the query: at least N stars
    tags: tuple[str, ...] = ()  # tag:WORD written in the query: the photo has that keyword
    not_categories: tuple[str, ...] = ()  # -screenshots, not:documents: not in these categories (or classes)
    not_words: tuple[str, ...] = ()  # -word, -"total due": not printed in the photo, not among its keywords

    @property
    def filters_only(self) -> bool:
        """Nothing to rank by, only filters (``tag:holiday``, ``-screenshots``): the matching photos are listed
        newest first."""
        return not self.text and not self.printed and (self.rating is not None or bool(self.tags)
                                                       or bool(self.not_categories) or bool(self.not_words))


def parse(text: str | None) -> Query:
    """The meaning of a text query (an empty one means a search by a photo)."""
    text = (text or "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidParameter(f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS}", "text")
    text, not_categories, not_words = exclusions(text)
    text, rating, tags = metadata_filters(text)
    plain, printed = printed_phrases(text)
    return Query(plain, tuple(printed), tuple(ocr_terms(plain)) if plain else (),
                 tuple(named_categories(plain)) if plain else (), bool(printed) or names_text_concept(plain),
                 rating, tags, not_categories, not_words)


def exclusions(text: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What a query leaves out, and the query without it: ``not:NAME`` is a category or few-shot class;
    ``-WORD`` is a category where WORD is a built-in category's name ("-screenshots", "-document"), else a word;
    ``-"total due"`` is a phrase. Words and phrases exclude the photos that have them printed (OCR) or as a
    keyword."""
    categories: list[str] = []
    excluded: list[str] = []
    for sign, quoted, word in _NEGATIVE.findall(text):
        value = " ".join((quoted or word).split())
        if not squeeze(value):
            continue
        named = _category_name(value)
        if sign.lower() == "not:" or named:
            categories.append(named or value.lower())
        else:
            check_phrase(value, "text")
            excluded.append(value)
    if len(excluded) > MAX_PRINTED:
        raise InvalidParameter(f"the query leaves out {len(excluded)} words; at most {MAX_PRINTED}", "text")
    rest = " ".join(_NEGATIVE.sub(" ", text).split())
    return rest, tuple(dict.fromkeys(categories)), tuple(dict.fromkeys(excluded))


def _category_name(word: str) -> str | None:
    """The built-in category a word is the name of ("screenshot", "Documents"), or None."""
    w = word.lower()
    for name in CATEGORY_WORDS:
        if w in (name, _singular(name)):
            return name
    return None


def metadata_filters(text: str) -> tuple[str, int | None, tuple[str, ...]]:
    """The ``rating>=N`` and ``tag:WORD`` a query writes, and the query without them."""
    ratings = [int(m) for m in _RATING.findall(text)]
    for r in ratings:
        if not -1 <= r <= 5:
            raise InvalidParameter(f"a rating is from -1 (rejected) to 5 stars, not {r}", "text")
    tags = tuple(dict.fromkeys(" ".join((a or b).split()) for a, b in _TAG.findall(text)))
    rest = " ".join(_TAG.sub(" ", _RATING.sub(" ", text)).split())
    return rest, max(ratings) if ratings else None, tuple(t for t in tags if t)


def read_as(meaning: Query, english: str | None) -> Query:
    """A query in another language with what its English reading ("Menschen" read as "people") names: the
    categories, the printed words of the concepts (a receipt's "total"), whether printed words lead."""
    if not english:
        return meaning
    categories = tuple(dict.fromkeys((*meaning.categories, *named_categories(english))))
    terms = tuple(dict.fromkeys((*meaning.terms, *ocr_terms(english))))
    return replace(meaning, categories=categories, terms=terms,
                   printed_leads=meaning.printed_leads or names_text_concept(english))
