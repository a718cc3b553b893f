"""Running models on photos and storing what they produce, idempotently (a retried batch overwrites, never
duplicates). Used by ``index`` for the active models and by background jobs for any registered version.

Each photo is decoded once per batch: from its thumbnail when that is large enough for the models (the scan already
paid for decoding the original), else from the original with JPEG draft decoding. OCR runs only on photos the
embedding model and cues say show text, on a larger copy of the original.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pgvector import HalfVector
from PIL import Image
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from photoscout.config import Settings
from photoscout.database import Database
from photoscout.library import categories
from photoscout.models import factory
from photoscout.models.base import (
    DetectorModel,
    EmbeddingModel,
    FewShotModel,
    ImageAnalysis,
    Model,
    OcrModel,
    RuntimeOptions,
)
from photoscout.models.imageio import load_rgb
from photoscout.registry.lifecycle import RegisteredModel

log = logging.getLogger(__name__)

MODEL_MIN_SIDE = 256  # what the image models need on the shorter side
BASE_MAX_SIDE = 640
TEXT_CHARS = 2000  # OCR text embedded (MiniLM reads 256 tokens anyway)


@dataclass(frozen=True)
class PhotoRow:
    id: int
    path_raw: bytes
    format: str | None
    camera_make: str | None
    width: int | None
    height: int | None
    thumbnail: str | None


@dataclass
class BatchReport:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


class ModelSet:
    """Loaded models by registry id; a long-running process keeps them (lazy ``load()`` on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = RuntimeOptions(device=settings.device, threads=settings.threads,
                                      batch_size=settings.batch_size)
        self._models: dict[int, Model] = {}

    def get(self, registered: RegisteredModel) -> Model:
        if registered.id not in self._models:
            self._models[registered.id] = factory.create(registered.spec(self.settings), self.runtime)
        return self._models[registered.id]


_PHOTO_COLS = "p.id, p.path_raw, p.format, p.camera_make, p.width, p.height, p.thumbnail"


def _photo(row: Sequence[Any]) -> PhotoRow:
    return PhotoRow(row[0], bytes(row[1]), row[2], row[3], row[4], row[5], row[6])


def pending_photos(db: Database, model_id: int, photo_ids: Iterable[int] | None = None,
                   limit: int | None = None) -> list[PhotoRow]:
    """Photos (status ok) the model has not run on yet."""
    sql = (f"SELECT {_PHOTO_COLS} FROM photos p WHERE p.status = 'ok' AND NOT EXISTS "
           "(SELECT 1 FROM photo_model_runs r WHERE r.photo_id = p.id AND r.model_id = %s)")
    params: list[Any] = [model_id]
    if photo_ids is not None:
        sql += " AND p.id = ANY(%s)"
        params.append(list(photo_ids))
    sql += " ORDER BY p.id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    with db.connection() as conn:
        return [_photo(r) for r in conn.execute(sql, params)]


def photos_by_id(db: Database, ids: Sequence[int]) -> list[PhotoRow]:
    with db.connection() as conn:
        rows = conn.execute(f"SELECT {_PHOTO_COLS} FROM photos p WHERE p.id = ANY(%s) AND p.status = 'ok' "
                            "ORDER BY p.id", (list(ids),))
        return [_photo(r) for r in rows]


def _load_base(settings: Settings, p: PhotoRow) -> Image.Image:
    if p.thumbnail:
        thumb = settings.thumbnails_dir / p.thumbnail
        if thumb.is_file():
            with Image.open(thumb) as im:
                if min(im.size) >= MODEL_MIN_SIDE * 0.95 or (p.width and max(p.width, p.height or 0) <= max(im.size)):
                    im.load()
                    return im.convert("RGB")
    return load_rgb(settings.map_path(p.path_raw), max_side=BASE_MAX_SIDE, min_side=MODEL_MIN_SIDE)


def load_images(settings: Settings, photos: Sequence[PhotoRow]) -> tuple[dict[int, Image.Image], dict[int, str]]:
    images: dict[int, Image.Image] = {}
    failures: dict[int, str] = {}

    def one(p: PhotoRow) -> tuple[int, Image.Image | None, str | None]:
        try:
            return p.id, _load_base(settings, p), None
        except FileNotFoundError:
            return p.id, None, "vanished: the file is gone"
        except Exception as exc:  # noqa: BLE001 - any decoder error is a per-photo failure, the batch goes on
            return p.id, None, f"unreadable: {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        for pid, im, err in pool.map(one, photos):
            if im is not None:
                images[pid] = im
            else:
                failures[pid] = err or "unreadable"
    return images, failures


Loaded = tuple[dict[int, Image.Image], dict[int, str]]


def prefetched(settings: Settings,
               batches: Sequence[Sequence[PhotoRow]]) -> Iterator[tuple[Sequence[PhotoRow], Loaded]]:
    """Yield each batch with its decoded images, decoding the next batch while the caller runs models on this one
    (ONNX Runtime and Pillow both release the GIL)."""
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load_images, settings, batches[0])
        for i, batch in enumerate(batches):
            loaded = future.result()
            if i + 1 < len(batches):
                future = pool.submit(load_images, settings, batches[i + 1])
            yield batch, loaded


def run_models(db: Database, settings: Settings, models: ModelSet, registered: Sequence[RegisteredModel],
               photos: Sequence[PhotoRow], *, need: dict[int, set[int]] | None = None,
               loaded: Loaded | None = None, finalize: Callable[[Any, BatchReport], None] | None = None
               ) -> BatchReport:
    """Run each model on the photos that need it (``need``: model id -> photo ids; default all) and store it."""
    report = BatchReport()
    images, failures = loaded if loaded is not None else load_images(settings, photos)
    by_id = {p.id: p for p in photos}
    writes: list[tuple[str, Any]] = []
    runs: list[tuple[int, int, str, str | None]] = []
    analyses: dict[int, tuple[ImageAnalysis, dict[str, Any]]] = {}
    embedder_for_regions = _active_embedder(db, models, registered)

    ordered = sorted(registered, key=lambda m: ["embedding", "few_shot", "detector", "ocr", "captioning"].index(m.type))
    for reg in ordered:
        wanted = [p for p in photos if need is None or p.id in need.get(reg.id, set())]
        for p in wanted:
            if p.id in failures:
                runs.append((p.id, reg.id, "failed", failures[p.id]))
        ids = [p.id for p in wanted if p.id in images]
        if not ids:
            continue
        imgs = [images[i] for i in ids]
        model = models.get(reg)
        if isinstance(model, EmbeddingModel):
            vectors, infos = model.analyze_images(imgs)
            for pid, vec, info, im in zip(ids, vectors, infos, imgs, strict=True):
                p = by_id[pid]
                cue = categories.cues(im, fmt=p.format, camera_make=p.camera_make, width=p.width)
                analyses[pid] = (info, cue)
                if reg.config.get("storage") == "halfvec":
                    writes.append(("embedding_half", (pid, reg.id, reg.name, reg.version, HalfVector(vec))))
                else:
                    writes.append(("embedding", (pid, reg.id, reg.name, reg.version, vec)))
                writes.append(("analysis", (pid, reg.id, Jsonb(info.labels), Jsonb(info.category_scores),
                                            info.text_likelihood, Jsonb(cue))))
                runs.append((pid, reg.id, "done", None))
            texts = _stored_ocr_text(db, ids)
            if texts:
                for pid, vec in zip(texts, model.embed_texts([texts[p][:TEXT_CHARS] for p in texts]), strict=True):
                    writes.append(("text_embedding", (pid, reg.id, HalfVector(vec))))
        elif isinstance(model, FewShotModel):
            for pid, feat in zip(ids, model.features(imgs), strict=True):
                writes.append(("features", (pid, reg.id, feat)))
                runs.append((pid, reg.id, "done", None))
        elif isinstance(model, DetectorModel):
            for pid, im, regions in zip(ids, imgs, model.detect(imgs), strict=True):
                crops_vec = None
                if regions and embedder_for_regions is not None:
                    crops = [_crop(im, r.box) for r in regions]
                    crops_vec = (embedder_for_regions[0], embedder_for_regions[1].embed_images(crops))
                writes.append(("detections", (pid, reg.id, regions, crops_vec)))
                runs.append((pid, reg.id, "done", None))
        elif isinstance(model, OcrModel):
            gated = _ocr_candidates(db, ids, analyses)
            for pid in ids:
                if pid not in gated:
                    runs.append((pid, reg.id, "skipped", "no text expected"))
            todo = [pid for pid in ids if pid in gated]
            max_side = int(reg.config.get("max_side", 1600))
            for pid in todo:
                try:
                    big = load_rgb(settings.map_path(by_id[pid].path_raw), max_side=max_side, min_side=max_side)
                    result = model.read([big])[0]
                except Exception as exc:  # noqa: BLE001 - a photo OCR cannot read is recorded, the rest go on
                    runs.append((pid, reg.id, "failed", f"ocr: {type(exc).__name__}: {exc}"))
                    continue
                if result.text:
                    writes.append(("text", (pid, reg.id, result.text, result.confidence)))
                    if embedder_for_regions is not None:
                        vec = embedder_for_regions[1].embed_texts([result.text[:TEXT_CHARS]])[0]
                        writes.append(("text_embedding", (pid, embedder_for_regions[0], HalfVector(vec))))
                runs.append((pid, reg.id, "done", f"{result.boxes} lines"))
        else:  # captioning and others: caption()
            captions = model.caption(imgs)  # type: ignore[attr-defined]
            for pid, cap in zip(ids, captions, strict=True):
                writes.append(("caption", (pid, reg.id, cap)))
                runs.append((pid, reg.id, "done", None))

    report.done = sum(1 for r in runs if r[2] == "done")
    report.skipped = sum(1 for r in runs if r[2] == "skipped")
    report.failed = [(r[0], r[3] or "") for r in runs if r[2] == "failed"]
    _store(db, writes, runs, lambda cur: finalize(cur, report) if finalize else None)
    return report


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


def _active_embedder(db: Database, models: ModelSet,
                     registered: Sequence[RegisteredModel]) -> tuple[int, EmbeddingModel] | None:
    from photoscout.registry import lifecycle

    reg = next((m for m in registered if m.type == "embedding"), None) or lifecycle.active(db, "embedding")
    if reg is None:
        return None
    model = models.get(reg)
    return (reg.id, model) if isinstance(model, EmbeddingModel) else None


def _ocr_candidates(db: Database, ids: list[int],
                    analyses: dict[int, tuple[ImageAnalysis, dict[str, Any]]]) -> set[int]:
    """Photos whose embedding analysis and cues say they show text. Without an analysis in this batch the stored
    one of the active embedding model is used; without any, OCR runs (better slow than blind)."""
    missing = [i for i in ids if i not in analyses]
    stored: dict[int, tuple[float, dict[str, Any]]] = {}
    if missing:
        with db.connection() as conn:
            for pid, tl, cue in conn.execute(
                "SELECT a.photo_id, a.text_likelihood, a.cues FROM photo_analysis a JOIN model_registry m "
                "ON m.id = a.model_id AND m.status = 'active' WHERE a.photo_id = ANY(%s)", (missing,)
            ):
                stored[pid] = (tl, cue)
    out = set()
    for pid in ids:
        if pid in analyses:
            info, cue = analyses[pid]
            if categories.wants_ocr(cue, info.text_likelihood):
                out.add(pid)
        elif pid in stored:
            if categories.wants_ocr(stored[pid][1], stored[pid][0]):
                out.add(pid)
        else:
            out.add(pid)
    return out


def _store(db: Database, writes: list[tuple[str, Any]], runs: list[tuple[int, int, str, str | None]],
           finalize: Callable[[Any], None]) -> None:
    """All outputs of a batch, and the caller's bookkeeping (``finalize``), in one transaction."""
    with db.connection() as conn:
        cur = conn.cursor()
        for column, other in (("embedding", "embedding_half"), ("embedding_half", "embedding")):
            rows = [w[1] for w in writes if w[0] == column]  # full or half precision, as the version stores
            if rows:
                cur.executemany(
                    "INSERT INTO photo_embeddings (photo_id, model_id, embedding_model, embedding_version, "
                    f"{column}) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (photo_id, model_id) DO UPDATE SET "
                    f"{column} = EXCLUDED.{column}, {other} = NULL, updated_at = now()", rows)
        ana = [w[1] for w in writes if w[0] == "analysis"]
        if ana:
            cur.executemany(
                "INSERT INTO photo_analysis (photo_id, model_id, labels, category_scores, text_likelihood, cues) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (photo_id, model_id) DO UPDATE SET "
                "labels = EXCLUDED.labels, category_scores = EXCLUDED.category_scores, "
                "text_likelihood = EXCLUDED.text_likelihood, cues = EXCLUDED.cues, created_at = now()", ana)
        feats = [w[1] for w in writes if w[0] == "features"]
        if feats:
            cur.executemany("INSERT INTO photo_features (photo_id, model_id, features) VALUES (%s, %s, %s) "
                            "ON CONFLICT (photo_id, model_id) DO UPDATE SET features = EXCLUDED.features", feats)
        for pid, mid, regions, crops_vec in (v for k, v in writes if k == "detections"):
            cur.execute("DELETE FROM detections WHERE photo_id = %s AND model_id = %s", (pid, mid))
            for i, r in enumerate(regions):
                row = cur.execute("INSERT INTO detections (photo_id, model_id, label, score, box) VALUES "
                                  "(%s, %s, %s, %s, %s) RETURNING id", (pid, mid, r.label, r.score,
                                                                       list(r.box))).fetchone()
                if crops_vec is not None and row is not None:
                    cur.execute("INSERT INTO region_embeddings (detection_id, photo_id, model_id, embedding) "
                                "VALUES (%s, %s, %s, %s)", (row[0], pid, crops_vec[0], crops_vec[1][i]))
        text_vecs = [w[1] for w in writes if w[0] == "text_embedding"]
        if text_vecs:
            cur.executemany("INSERT INTO photo_text_embeddings (photo_id, model_id, embedding) VALUES (%s, %s, %s) "
                            "ON CONFLICT (photo_id, model_id) DO UPDATE SET embedding = EXCLUDED.embedding, "
                            "created_at = now()", text_vecs)
        texts = [w[1] for w in writes if w[0] == "text"]
        if texts:
            cur.executemany("INSERT INTO photo_text (photo_id, model_id, text, confidence) VALUES (%s, %s, %s, %s) "
                            "ON CONFLICT (photo_id, model_id) DO UPDATE SET text = EXCLUDED.text, "
                            "confidence = EXCLUDED.confidence, created_at = now()", texts)
        caps = [w[1] for w in writes if w[0] == "caption"]
        if caps:
            cur.executemany("INSERT INTO photo_captions (photo_id, model_id, caption) VALUES (%s, %s, %s) "
                            "ON CONFLICT (photo_id, model_id) DO UPDATE SET caption = EXCLUDED.caption", caps)
        if runs:
            cur.executemany("INSERT INTO photo_model_runs (photo_id, model_id, outcome, detail) VALUES "
                            "(%s, %s, %s, %s) ON CONFLICT (photo_id, model_id) DO UPDATE SET "
                            "outcome = EXCLUDED.outcome, detail = EXCLUDED.detail, at = now()", runs)
        finalize(cur)


def refresh_categories(db: Database, photo_ids: Sequence[int],
                       enabled: tuple[str, ...] = categories.DEFAULT_CATEGORIES) -> int:
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
            cats = categories.categorize(category_scores=r["scores"] or {}, cues_=r["cues"] or {},
                                         ocr_text=r["ocr"], faces=faces, fewshot=list(r["fewshot"]),  # type: ignore[arg-type]
                                         enabled=enabled)
            if r["model_id"] is not None:
                per_model.append((cats, r["id"], r["model_id"]))
            if r["act"] or r["id"] not in chosen:  # the active version's, else cues/OCR/faces alone
                chosen[r["id"]] = cats if (r["act"] or r["model_id"] is None) else categories.categorize(
                    category_scores={}, cues_=r["cues"] or {}, ocr_text=r["ocr"], faces=faces,  # type: ignore[arg-type]
                    fewshot=list(r["fewshot"]), enabled=enabled)
        cur.executemany("UPDATE photo_analysis SET categories = %s WHERE photo_id = %s AND model_id = %s "
                        "AND categories IS DISTINCT FROM %s", [(c_, i, m, c_) for c_, i, m in per_model])
        cur.executemany("UPDATE photos SET categories = %s WHERE id = %s AND categories IS DISTINCT FROM %s",
                        [(c_, i, c_) for i, c_ in chosen.items()])
    return len(chosen)


def as_array(vec: Any) -> np.ndarray:
    """pgvector values come back as ``Vector``/``HalfVector`` objects; numpy for callers."""
    return np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)
