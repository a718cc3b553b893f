"""What ``index`` does after a scan ("enrich"): run every model that new photos need on the photos that lack its
outputs, in batches, then update their categories and the vector indexes. Progress goes to the same Progress
interface as the scan. An interrupted run resumes: what is done is recorded per photo and model
(``photo_model_runs``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from photoscout.analysis import categories
from photoscout.analysis.decode import prefetched
from photoscout.analysis.photos import PhotoRow, pending_photos
from photoscout.analysis.runner import run_models
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.jobs.store import candidate_model_ids, running_model_ids
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle


@dataclass
class EnrichSummary:
    photos: int = 0
    model_runs: int = 0
    ocr_skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


def enrich_models(db: Database, settings: Settings) -> list[lifecycle.RegisteredModel]:
    """The models new photos are run through: the active ones (OCR unless ``ocr = "off"``); any with a job over the
    whole library under way; and, for search, the embedding rollback target and staging embedding versions whose
    library job completed - so promoting or rolling back never leaves photos indexed meanwhile without vectors."""
    models = [m for m in lifecycle.list_models(db) if m.status == "active"
              and not (m.type == "ocr" and settings.ocr == "off")]
    ids = [*running_model_ids(db), *candidate_model_ids(db)]
    for m in [m for m in models if m.type == "embedding"]:
        target = lifecycle.rollback_target(db, m.type, m.purpose)
        if target is not None:
            ids.append(target.id)
    for mid in ids:
        if mid not in {m.id for m in models}:
            models.append(lifecycle.get_by_id(db, mid))
    return models


def enrich(db: Database, settings: Settings, *, models: ModelCache | None = None,
           progress: Progress | None = None) -> EnrichSummary:
    started = time.perf_counter()
    progress = progress or NoProgress()
    models = models or ModelCache(settings)
    chosen = enrich_models(db, settings)
    summary = EnrichSummary(models=[m.ref for m in chosen])
    need: dict[int, set[int]] = {}
    photos: dict[int, PhotoRow] = {}
    for m in chosen:
        for p in pending_photos(db, m.id):
            need.setdefault(m.id, set()).add(p.id)
            photos[p.id] = p
    summary.photos = len(photos)
    if photos:
        progress.phase("running models", len(photos))
        ordered = sorted(photos.values(), key=lambda p: p.id)
        batch_size = max(1, settings.batch_size)
        batches = [ordered[start: start + batch_size] for start in range(0, len(ordered), batch_size)]
        for batch, loaded in prefetched(settings, batches):
            report = run_models(db, settings, models, chosen, batch, need=need, loaded=loaded)
            summary.model_runs += report.done
            summary.ocr_skipped += report.skipped
            summary.failed += [{"photo_id": pid, "reason": why} for pid, why in report.failed]
            categories.refresh(db, [p.id for p in batch])
            progress.advance(len(batch))
    categories.refresh_if_rules_changed(db)  # a new photoscout may tell categories apart better
    for m in chosen:
        if m.type == "embedding":
            indexes.ensure(db, m)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary
