"""Photo categories, all in one place: the rules, the words that name a category in a query, recomputing them
from stored outputs, and switching photos to the categories of the version that becomes active.

Signals: category scores of the embedding model (ImageNet label hierarchy for ConSE, prompts for zero-shot models),
faces from the detector, the amount of OCR text, few-shot class matches, and model-free cues (file format, camera
EXIF, flat colours, white paper, colour saturation). The rules are small and explicit so a user can read why a
photo got a category (``photos show`` lists the signals). Each embedding version keeps its own categories per photo
(``photo_analysis.categories``); ``photos.categories`` are the active version's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from psycopg.rows import dict_row

from photoscout.database import Database
from photoscout.progress import NoProgress, Progress

RULES_VERSION = 2  # raise when the rules below change: the next index recomputes stored categories
DEFAULT_CATEGORIES = ("electronics", "food", "documents", "receipts", "pages", "screenshots", "people", "animals",
                      "vehicles", "other")
# a document is also one of these kinds, told apart by its OCR text (``document_kind``)
DOCUMENT_KINDS = ("receipts", "pages")
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# an amount with cents ("12.50", "3,99"): a receipt lists them line after line
_AMOUNT = re.compile(r"(?<![\d.,])\d{1,6}[.,]\d{2}(?![\d.,%])")
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
# whole words, plurals too ("cars", not "cartoon"; "bills", not "billboard"); (start, end) of each phrase found
_NAMING = {cat: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
                            + r")(?:s|es)?\b")
           for cat, words in CATEGORY_WORDS.items()}
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


def named_in(text: str) -> list[str]:
    """The categories a query's words name ("receipt from the hardware store" -> receipts). A longer phrase wins
    over the words inside it ("a web page" names screenshots, not the pages "page" names), and a kind of document
    over documents."""
    low = " ".join(text.lower().split())
    found = [(m.start(), m.end(), cat) for cat, pattern in _NAMING.items() for m in pattern.finditer(low)]
    named = []
    for start, end, cat in found:
        inside_longer = any(s <= start and end <= e and (e - s) > (end - start) and c != cat for s, e, c in found)
        if not inside_longer and cat not in named:
            named.append(cat)
    if any(k in named for k in DOCUMENT_KINDS):  # the kind of document is the more precise: it stands alone
        named = [c for c in named if c != "documents"]
    return [c for c in CATEGORY_WORDS if c in named]


def refresh(db: Database, photo_ids: Sequence[int], enabled: tuple[str, ...] = DEFAULT_CATEGORIES) -> int:
    """Recompute categories from the stored outputs: for every embedding version that analysed the photo (kept in
    ``photo_analysis.categories``, so a version under evaluation has its own), and ``photos.categories`` from the
    active version. OCR text, faces and few-shot classes come from the active models of those types."""
    if not photo_ids:
        return 0
    ids = list(photo_ids)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT p.id, a.model_id, a.category_scores AS scores, a.cues, coalesce(am.status = 'active', false) AS act,
              (SELECT t.text FROM photo_text t JOIN model_registry m ON m.id = t.model_id
                 AND m.status = 'active' WHERE t.photo_id = p.id LIMIT 1) AS ocr,
              (SELECT coalesce(array_agg(array_to_string(d.box, ',')), '{}') FROM detections d
                 JOIN model_registry m ON m.id = d.model_id AND m.status = 'active'
                 WHERE d.photo_id = p.id AND d.label = 'face') AS faces,
              (SELECT coalesce(array_agg(fc.name ORDER BY fc.name), '{}') FROM fewshot_classes fc
                 JOIN model_registry m ON m.id = fc.model_id AND m.status = 'active'
                 JOIN photo_features f ON f.model_id = fc.model_id AND f.photo_id = p.id
                 WHERE 1 - (f.features <=> fc.prototype) >= fc.threshold) AS fewshot
            FROM photos p
            LEFT JOIN (photo_analysis a JOIN model_registry am ON am.id = a.model_id AND am.type = 'embedding'
                       AND am.status <> 'disabled') ON a.photo_id = p.id
            WHERE p.id = ANY(%s)
            """, (ids,)).fetchall()
        per_model: list[tuple[list[str], int, int]] = []
        chosen: dict[int, list[str]] = {}
        for r in rows:
            faces = [tuple(float(v) for v in f.split(",")) for f in r["faces"]]
            signals: dict[str, Any] = {"cues_": r["cues"] or {}, "ocr_text": r["ocr"], "faces": faces,
                                       "fewshot": list(r["fewshot"]), "enabled": enabled}
            cats = categorize(category_scores=r["scores"] or {}, **signals)
            if r["model_id"] is not None:
                per_model.append((cats, r["id"], r["model_id"]))
            if r["act"] or r["id"] not in chosen:  # the active version's, else cues/OCR/faces alone
                chosen[r["id"]] = cats if (r["act"] or r["model_id"] is None) else categorize(category_scores={},
                                                                                              **signals)
        cur.executemany("UPDATE photo_analysis SET categories = %s WHERE photo_id = %s AND model_id = %s "
                        "AND categories IS DISTINCT FROM %s", [(c_, i, m, c_) for c_, i, m in per_model])
        cur.executemany("UPDATE photos SET categories = %s WHERE id = %s AND categories IS DISTINCT FROM %s",
                        [(c_, i, c_) for i, c_ in chosen.items()])
    return len(chosen)


def refresh_if_rules_changed(db: Database, chunk: int = 2000) -> int:
    """Recompute every photo's categories when the stored ones come from other rules (``RULES_VERSION``); the
    photos refreshed (0 when the rules are the same)."""
    with db.connection() as conn:
        row = conn.execute("SELECT version FROM category_rules").fetchone()
        if row is not None and row[0] == RULES_VERSION:
            return 0
        # no row: the table came with these rules, so every stored category is theirs
        ids = [] if row is None else _photo_ids(conn)
    _refresh_chunks(db, ids, chunk)
    with db.connection() as conn:
        conn.execute("INSERT INTO category_rules (version) VALUES (%s) ON CONFLICT (only_row) DO UPDATE "
                     "SET version = excluded.version", (RULES_VERSION,))
    return len(ids)


def refresh_all(db: Database, chunk: int = 2000, progress: Progress | None = None) -> int:
    """Recompute every photo's categories (an OCR, face or few-shot version became active: its outputs are the
    signals now); the photos refreshed, reported to ``progress`` chunk by chunk."""
    with db.connection() as conn:
        ids = _photo_ids(conn)
    _refresh_chunks(db, ids, chunk, progress)
    return len(ids)


def _photo_ids(conn: Any) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM photos WHERE status = 'ok' ORDER BY id")]


def _refresh_chunks(db: Database, ids: list[int], chunk: int, progress: Progress | None = None) -> None:
    progress = progress or NoProgress()
    progress.phase("recomputing categories", len(ids))
    for start in range(0, len(ids), chunk):
        part = ids[start: start + chunk]
        refresh(db, part)
        progress.advance(len(part))


def follow_version(cur: Any, model_id: int) -> None:
    """Inside the transaction that makes an embedding version active: the photos take that version's categories,
    so ingestion, queries and categories switch at once."""
    cur.execute("UPDATE photos p SET categories = a.categories FROM photo_analysis a WHERE a.photo_id = p.id "
                "AND a.model_id = %s AND a.categories IS NOT NULL AND p.categories IS DISTINCT FROM a.categories",
                (model_id,))
