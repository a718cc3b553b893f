"""Running models on a batch of photos, by model type, and storing what they produce. Used by ``index`` for the
models new photos need and by background jobs for any registered version.

Each photo is decoded once per batch (``decode``). OCR runs only on photos the embedding model and the cues say show
text (``category_rules.wants_ocr``), on a larger copy of the original.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pgvector import HalfVector
from PIL import Image
from psycopg.types.json import Jsonb

from photoscout.analysis import category_rules
from photoscout.analysis.decode import Loaded, load_images
from photoscout.analysis.photos import PhotoRow
from photoscout.analysis.store import BatchReport, Outputs, store
from photoscout.common.imaging import load_rgb
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.models.base import (
    CaptionModel,
    DetectorModel,
    EmbeddingModel,
    FewShotModel,
    ImageAnalysis,
    OcrModel,
    OcrText,
)
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle
from photoscout.registry.lifecycle import RegisteredModel

OCR_CHUNK = 8  # photos per OCR call: decoded together, read in parallel where the backend can
TEXT_CHARS = 2000  # OCR text embedded (MiniLM reads 256 tokens anyway)
ORDER = ("embedding", "few_shot", "detector", "ocr", "captioning")  # OCR asks the embedding's analysis first

Analyses = dict[int, tuple[ImageAnalysis, dict[str, Any]]]  # photo id -> (embedding analysis, cues)


def run_models(db: Database, settings: Settings, models: ModelCache, registered: Sequence[RegisteredModel],
               photos: Sequence[PhotoRow], *, need: dict[int, set[int]] | None = None,
               loaded: Loaded | None = None, finalize: Callable[[Any, BatchReport], None] | None = None
               ) -> BatchReport:
    """Run each model on the photos that need it (``need``: model id -> photo ids; default all) and store it."""
    images, failures = loaded if loaded is not None else load_images(settings, photos)
    by_id = {p.id: p for p in photos}
    out = Outputs()
    analyses: Analyses = {}
    embedder = _embedder_for_regions(db, models, registered)
    for reg in sorted(registered, key=lambda m: ORDER.index(m.type)):
        wanted = [p for p in photos if need is None or p.id in need.get(reg.id, set())]
        for p in wanted:
            if p.id in failures:
                out.ran(p.id, reg.id, "failed", failures[p.id])
        ids = [p.id for p in wanted if p.id in images]
        if not ids:
            continue
        imgs = [images[i] for i in ids]
        model = models.get(reg)
        if isinstance(model, EmbeddingModel):
            _embed(db, reg, model, ids, imgs, by_id, out, analyses)
        elif isinstance(model, FewShotModel):
            for pid, feat in zip(ids, model.features(imgs), strict=True):
                out.add("features", pid, reg.id, feat)
                out.ran(pid, reg.id, "done")
        elif isinstance(model, DetectorModel):
            for pid, im, regions in zip(ids, imgs, model.detect(imgs), strict=True):
                crops = None
                if regions and embedder is not None:
                    crops = (embedder[0], embedder[1].embed_images([_crop(im, r.box) for r in regions]))
                out.detections.append((pid, reg.id, regions, crops))
                out.ran(pid, reg.id, "done")
        elif isinstance(model, OcrModel):
            _ocr(db, settings, reg, model, ids, by_id, out, analyses, embedder)
        elif isinstance(model, CaptionModel):
            for pid, cap in zip(ids, model.caption(imgs), strict=True):
                out.add("caption", pid, reg.id, cap)
                out.ran(pid, reg.id, "done")
    report = out.report()
    store(db, out, (lambda cur: finalize(cur, report)) if finalize else None)
    return report


def _embed(db: Database, reg: RegisteredModel, model: EmbeddingModel, ids: list[int], imgs: list[Image.Image],
           by_id: dict[int, PhotoRow], out: Outputs, analyses: Analyses) -> None:
    """Vectors, analysis and cues of each photo, and the version's vectors of the photos' stored OCR text."""
    vectors, infos = model.analyze_images(imgs)
    half = reg.config.get("storage") == "halfvec"
    for pid, vec, info, im in zip(ids, vectors, infos, imgs, strict=True):
        p = by_id[pid]
        cue = category_rules.cues(im, fmt=p.format, camera_make=p.camera_make, width=p.width)
        analyses[pid] = (info, cue)
        out.add("embedding_half" if half else "embedding", pid, reg.id, reg.name, reg.version,
                HalfVector(vec) if half else vec)
        out.add("analysis", pid, reg.id, Jsonb(info.labels), Jsonb(info.category_scores), info.text_likelihood,
                Jsonb(cue))
        out.ran(pid, reg.id, "done")
    texts = _stored_ocr_text(db, ids)
    if texts:
        for pid, vec in zip(texts, model.embed_texts([texts[p][:TEXT_CHARS] for p in texts]), strict=True):
            out.add("text_embedding", pid, reg.id, HalfVector(vec))


def _ocr(db: Database, settings: Settings, reg: RegisteredModel, model: OcrModel, ids: list[int],
         by_id: dict[int, PhotoRow], out: Outputs, analyses: Analyses,
         embedder: tuple[int, EmbeddingModel] | None) -> None:
    """OCR on the photos that probably show text, from a larger copy of the original, a few photos per call (a
    backend may read them in parallel); the text is also embedded by the embedding version's text side."""
    gated = _ocr_candidates(db, ids, analyses, always=settings.ocr == "always")
    max_side = int(reg.config.get("max_side", 1600))
    for pid in ids:
        if pid not in gated:
            out.ran(pid, reg.id, "skipped", "no text expected")
    todo = [pid for pid in ids if pid in gated]

    def load(pid: int) -> tuple[int, Image.Image | Exception]:
        try:
            return pid, load_rgb(settings.map_path(by_id[pid].path_raw), max_side=max_side, min_side=max_side)
        except Exception as exc:  # noqa: BLE001 - a photo that cannot be decoded is recorded, the rest go on
            return pid, exc

    with ThreadPoolExecutor(max_workers=min(OCR_CHUNK, os.cpu_count() or 1)) as pool:  # Pillow decodes GIL-free
        for start in range(0, len(todo), OCR_CHUNK):
            loaded = list(pool.map(load, todo[start:start + OCR_CHUNK]))
            images = [(pid, im) for pid, im in loaded if isinstance(im, Image.Image)]
            results: list[OcrText | Exception]
            try:
                results = list(model.read([im for _, im in images], [gated[pid] for pid, _ in images]))
            except Exception:  # noqa: BLE001 - read one by one to tell which photo failed
                results = []
                for pid, im in images:
                    try:
                        results.append(model.read([im], [gated[pid]])[0])
                    except Exception as exc:  # noqa: BLE001 - recorded per photo
                        results.append(exc)
            found = dict(loaded) | dict(zip((pid for pid, _ in images), results, strict=True))
            for pid, result in found.items():
                if isinstance(result, Exception):
                    out.ran(pid, reg.id, "failed", f"ocr: {type(result).__name__}: {result}")
                    continue
                assert isinstance(result, OcrText)
                if result.text:
                    out.add("text", pid, reg.id, result.text, result.confidence)
                    if embedder is not None:
                        vec = embedder[1].embed_texts([result.text[:TEXT_CHARS]])[0]
                        out.add("text_embedding", pid, embedder[0], HalfVector(vec))
                out.ran(pid, reg.id, "done", f"{result.boxes} lines")


def _stored_ocr_text(db: Database, ids: list[int]) -> dict[int, str]:
    """The active OCR model's text of these photos."""
    with db.connection() as conn:
        return {pid: text for pid, text in conn.execute(
            "SELECT t.photo_id, t.text FROM photo_text t JOIN model_registry m ON m.id = t.model_id "
            "AND m.status = 'active' WHERE t.photo_id = ANY(%s) AND t.text <> ''", (ids,))}


def _crop(im: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = im.size
    x, y, bw, bh = box
    return im.crop((int(x * w), int(y * h), max(int((x + bw) * w), int(x * w) + 1),
                    max(int((y + bh) * h), int(y * h) + 1)))


def _embedder_for_regions(db: Database, models: ModelCache,
                          registered: Sequence[RegisteredModel]) -> tuple[int, EmbeddingModel] | None:
    """The embedding version that embeds face crops and OCR text: the one in this run, else the active one."""
    reg = next((m for m in registered if m.type == "embedding"), None) or lifecycle.active(db, "embedding")
    if reg is None:
        return None
    model = models.get(reg)
    return (reg.id, model) if isinstance(model, EmbeddingModel) else None


def _ocr_candidates(db: Database, ids: list[int], analyses: Analyses, always: bool = False) -> dict[int, bool]:
    """Photos whose embedding analysis and cues say they show text, each with whether it is a scene photo (a camera
    picture, where text is looked for at a lower size: ``category_rules.in_scene``). Without an analysis in this batch
    the stored one of the active embedding model is used; without any, OCR runs in full (better slow than blind).
    ``always``: every photo is read, scene photos still at the lower size."""
    missing = [i for i in ids if i not in analyses]
    stored: dict[int, tuple[float, dict[str, Any]]] = {}
    if missing:
        with db.connection() as conn:
            for pid, tl, cue in conn.execute(
                "SELECT a.photo_id, a.text_likelihood, a.cues FROM photo_analysis a JOIN model_registry m "
                "ON m.id = a.model_id AND m.status = 'active' WHERE a.photo_id = ANY(%s)", (missing,)
            ):
                stored[pid] = (tl, cue)
    out: dict[int, bool] = {}
    for pid in ids:
        if pid in analyses:
            cue, likelihood = analyses[pid][1], analyses[pid][0].text_likelihood
        elif pid in stored:
            likelihood, cue = stored[pid]
        else:
            out[pid] = False
            continue
        if always or category_rules.wants_ocr(cue, likelihood):
            out[pid] = category_rules.in_scene(cue)
    return out
