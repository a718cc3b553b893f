"""The rules of photo categories, pure (no database): which categories a photo's signals give it, the cues read
from its pixels, and whether it probably shows text (so OCR runs). ``categories.py`` recomputes stored categories
with these rules; the words that name a category in a query are the query's (``search/query.py``).

Signals: category scores of the embedding model (ImageNet label hierarchy for ConSE, prompts for zero-shot models),
faces from the detector, the amount of OCR text, few-shot class matches, and model-free cues (file format, camera
EXIF, flat colours, white paper, colour saturation). The rules are small and explicit so a user can read why a
photo got a category (``photos show`` lists the signals). Each embedding version keeps its own categories per photo
(``photo_analysis.categories``); ``photos.categories`` are the active version's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and Pillow load where pixels are read (cues), not for the names and rules
    from PIL import Image

RULES_VERSION = 2  # raise when the rules below change: the next index recomputes stored categories
DEFAULT_CATEGORIES = ("electronics", "food", "documents", "receipts", "pages", "screenshots", "people", "animals",
                      "vehicles", "other")
# a document is also one of these kinds, told apart by its OCR text (``document_kind``)
DOCUMENT_KINDS = ("receipts", "pages")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# an amount with cents ("12.50", "3,99"): a receipt lists them line after line
_AMOUNT = re.compile(r"(?<![\d.,])\d{1,6}[.,]\d{2}(?![\d.,%])")
SCREEN_WIDTHS = {640, 720, 750, 800, 828, 1024, 1080, 1125, 1170, 1242, 1280, 1284, 1366, 1440, 1536, 1600, 1680,
                 1920, 2048, 2160, 2560, 2880, 3024, 3840}


@dataclass(frozen=True)
class Rules:
    model_threshold: float = 0.35  # embedding model's category score
    face_min_area: float = 0.01  # share of the image a face must cover to make it a photo of people
    document_words: int = 12  # OCR words that make a non-screenshot photo a document
    receipt_amount_lines: int = 3  # a document whose text has this many lines with an amount,
    receipt_amount_share: float = 0.1  # ... and this share of its lines, is a receipt
    page_lines: int = 5  # a document that is no receipt, with this many lines of text (or on paper), is a page
    ocr_text_likelihood: float = 0.08  # run OCR when the embedding model sees this much "text" probability


def cues(image: Image.Image, *, fmt: str | None, camera_make: str | None, width: int | None) -> dict[str, Any]:
    """Model-free cues from a small copy of the image."""
    import numpy as np
    from PIL import Image
    small = image.convert("RGB").resize((96, 96), Image.Resampling.NEAREST)  # exact colours, cheap
    a = np.asarray(small).astype(np.int32)
    q = (a >> 3).reshape(-1, 3)
    keys = q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2]
    _, counts = np.unique(keys, return_counts=True)
    flat = float(np.sort(counts)[::-1][:8].sum() / len(keys))
    sat = float(np.asarray(small.convert("HSV"))[..., 1].mean() / 255)
    white = float((a.min(axis=2) > 200).mean())
    lossless = (fmt or "").upper() in ("PNG", "WEBP", "BMP", "GIF", "TIFF")
    return {
        "flat_fraction": round(flat, 3), "saturation": round(sat, 3), "white_fraction": round(white, 3),
        "lossless": lossless, "has_camera": bool(camera_make), "screen_width": (width or 0) in SCREEN_WIDTHS,
    }


def screenshot_score(c: dict[str, Any]) -> float:
    if c.get("has_camera"):
        return 0.0
    score = 0.0
    if c.get("lossless"):
        score += 0.45
    if c.get("flat_fraction", 0) >= 0.5:
        score += 0.35
    if c.get("screen_width"):
        score += 0.1
    if c.get("white_fraction", 0) >= 0.9 and c.get("saturation", 1) < 0.02:
        score -= 0.2  # a plain page, more likely a scan
    return max(0.0, min(1.0, score))


def looks_like_paper(c: dict[str, Any]) -> bool:
    return c.get("white_fraction", 0) >= 0.5 and c.get("saturation", 1) <= 0.08 and c.get("flat_fraction", 0) >= 0.6


def wants_ocr(c: dict[str, Any], text_likelihood: float, rules: Rules = Rules()) -> bool:
    """Decide before OCR whether a photo probably shows text (OCR is the costliest step of indexing)."""
    return text_likelihood >= rules.ocr_text_likelihood or looks_like_paper(c) or screenshot_score(c) >= 0.75


def in_scene(c: dict[str, Any]) -> bool:
    """A photo that OCR reads only because the embedding saw a sign of text in it: a camera picture (lossy-coded, not
    a page, not a screen), whose text, if any, is a sign or a label. OCR may look for text at a lower size there."""
    return not c.get("lossless") and not looks_like_paper(c) and screenshot_score(c) < 0.75


def ocr_words(text: str | None) -> int:
    return len(_WORD.findall(text or ""))


def categorize(
    *, category_scores: dict[str, float], cues_: dict[str, Any], ocr_text: str | None,
    faces: list[tuple[float, float, float, float]] | None, fewshot: list[str] | None = None,
    enabled: tuple[str, ...] = DEFAULT_CATEGORIES, rules: Rules = Rules(),
) -> list[str]:
    cats: set[str] = set()
    words = ocr_words(ocr_text)
    is_screenshot = screenshot_score(cues_) >= 0.75 and (words >= 3 or category_scores.get("screenshots", 0) > 0.1
                                                          or cues_.get("flat_fraction", 0) >= 0.7)
    if is_screenshot:
        cats.add("screenshots")
    elif words >= rules.document_words or (looks_like_paper(cues_) and words >= 4):
        cats.add("documents")
    for name, score in category_scores.items():
        if name in ("screenshots", "documents") and cats & {"screenshots", "documents"}:
            continue
        if score >= rules.model_threshold:
            cats.add(name)
    if "documents" in cats:
        kind = document_kind(ocr_text, cues_, rules)
        if kind:
            cats.add(kind)
    if faces and any(w * h >= rules.face_min_area for (_x, _y, w, h) in faces):
        cats.add("people")
    cats.update(fewshot or [])
    ordered = [c for c in enabled if c in cats] + sorted(c for c in cats if c not in enabled and c in (fewshot or []))
    if not ordered and "other" in enabled:
        ordered = ["other"]
    return ordered


def document_kind(ocr_text: str | None, cues_: dict[str, Any], rules: Rules = Rules()) -> str | None:
    """What kind of document a photo's text shows: a receipt lists amounts line after line; a page of printed text
    (a letter, a manual, an article) is any other document with a few lines of text or on paper."""
    lines = [line for line in (ocr_text or "").splitlines() if line.strip()]
    amounts = sum(1 for line in lines if _AMOUNT.search(line))
    if amounts >= rules.receipt_amount_lines and amounts >= rules.receipt_amount_share * len(lines):
        return "receipts"
    if len(lines) >= rules.page_lines or (lines and looks_like_paper(cues_)):
        return "pages"
    return None
