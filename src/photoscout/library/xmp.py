"""XMP metadata a photo's editor left: in a sidecar (``IMG_0042.xmp`` or ``IMG_0042.CR2.xmp``, as Lightroom,
darktable, digiKam and Capture One write them) or embedded in the photo. Read only, never written: rating
(-1 rejected .. 5), colour label, keywords (``dc:subject``, and the leaves of ``lr:hierarchicalSubject``) and title.
Parsed with defusedxml (no entity expansion, no external references): a sidecar is a file from outside."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

MAX_XMP_BYTES = 4 * 1024 * 1024  # a larger sidecar is not read (real ones are a few KB)
SIDECAR_EXTENSION = b".xmp"
_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
}
MAX_TAGS = 200


@dataclass(frozen=True)
class XmpFacts:
    rating: int | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    title: str | None = None
    problem: str | None = None  # why a sidecar could not be read (the photo is recorded all the same)

    @property
    def empty(self) -> bool:
        return self.rating is None and self.label is None and not self.tags and self.title is None

    def merged_over(self, other: XmpFacts) -> XmpFacts:
        """These facts, with ``other``'s where these have none (a sidecar over the embedded XMP)."""
        return XmpFacts(self.rating if self.rating is not None else other.rating, self.label or other.label,
                        self.tags or other.tags, self.title or other.title, self.problem or other.problem)


def sidecar_candidates(image_name: bytes) -> tuple[bytes, bytes]:
    """The sidecar names an image file may have, lower case: ``name.ext.xmp`` and ``name.xmp``."""
    lower = image_name.lower()
    dot = lower.rfind(b".")
    stem = lower[:dot] if dot > 0 else lower
    return lower + SIDECAR_EXTENSION, stem + SIDECAR_EXTENSION


def read_sidecar(path: bytes) -> XmpFacts:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_XMP_BYTES + 1)
    except OSError as exc:
        return XmpFacts(problem=f"sidecar {os.fsdecode(os.path.basename(path))}: cannot read it ({exc.strerror})")
    if len(data) > MAX_XMP_BYTES:
        return XmpFacts(problem=f"sidecar {os.fsdecode(os.path.basename(path))}: larger than "
                                f"{MAX_XMP_BYTES // 1024 // 1024} MB, not read")
    facts = parse(data)
    if facts.problem:
        return XmpFacts(problem=f"sidecar {os.fsdecode(os.path.basename(path))}: {facts.problem}")
    return facts


def parse(data: bytes | str) -> XmpFacts:
    """The facts in one XMP packet; a packet that is not well-formed XML gives ``problem`` and no facts."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        start = data.find(b"<rdf:RDF")
    if start < 0:
        return XmpFacts(problem="no XMP packet in it")
    end_tag = b"</x:xmpmeta>" if data[start:start + 10] == b"<x:xmpmeta" else b"</rdf:RDF>"
    end = data.find(end_tag, start)
    if end < 0:
        return XmpFacts(problem="the XMP packet is cut off")
    try:
        root = ElementTree.fromstring(data[start:end + len(end_tag)])
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        return XmpFacts(problem=f"not well-formed XMP ({type(exc).__name__}: {str(exc)[:120]})")
    values: dict[str, Any] = {}
    for desc in root.iter(f"{{{_NS['rdf']}}}Description"):
        for key, value in desc.attrib.items():  # the short form: properties as attributes
            values.setdefault(key, value)
        for child in desc:
            values.setdefault(child.tag, child)
    return XmpFacts(rating=_rating(values.get(_q("xmp", "Rating"))),
                    label=_plain(values.get(_q("xmp", "Label"))),
                    tags=_tags(values.get(_q("dc", "subject")), values.get(_q("lr", "hierarchicalSubject"))),
                    title=_plain(values.get(_q("dc", "title"))))


def _q(ns: str, name: str) -> str:
    return f"{{{_NS[ns]}}}{name}"


def _items(value: Any) -> list[str]:
    """The texts of a property: an attribute's text, an element's text, or the ``rdf:li`` of its Bag/Seq/Alt."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    lis = [li.text or "" for li in value.iter(_q("rdf", "li"))]
    if lis:
        return lis
    return [value.text or ""]


def _plain(value: Any) -> str | None:
    for text in _items(value):
        text = " ".join(text.split())
        if text:
            return text[:500]
    return None


def _rating(value: Any) -> int | None:
    text = _plain(value)
    if text is None:
        return None
    try:
        rating = round(float(text))
    except ValueError:
        return None
    return rating if -1 <= rating <= 5 else None


def _tags(subject: Any, hierarchical: Any) -> tuple[str, ...]:
    out: dict[str, str] = {}
    for text in _items(subject) + [h.split("|")[-1] for h in _items(hierarchical)]:
        text = " ".join(text.split())[:100]
        if text and text.lower() not in out:
            out[text.lower()] = text
    return tuple(list(out.values())[:MAX_TAGS])
