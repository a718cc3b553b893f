"""What an embedding version costs: coverage (photos it has embedded), bytes of its vectors and index, and its
embedding throughput and peak memory, measured in a fresh process so other loaded models do not count."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.database.schema import shown
from photoscout.models.cache import ModelCache
from photoscout.registry.lifecycle import RegisteredModel

THROUGHPUT_PHOTOS = 128


def coverage(db: Database, model: RegisteredModel) -> tuple[int, int]:
    """(photos with an embedding of this version, readable photos in the library)."""
    with db.connection() as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id AND {shown()} "
            f"WHERE e.model_id = %s), (SELECT count(*) FROM photos p WHERE {shown()})", (model.id,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def storage(db: Database, model: RegisteredModel) -> dict[str, int]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(coalesce(pg_column_size(embedding), 0) + "
            "coalesce(pg_column_size(embedding_half), 0)), 0) FROM photo_embeddings WHERE model_id = %s",
            (model.id,)).fetchone()
    assert row is not None
    return {"embeddings": int(row[0]), "embedding_bytes": int(row[1]), "index_bytes": indexes.size_bytes(db, model)}


def _measure_in_child(spec: Any, runtime: Any, paths: list[str]) -> dict[str, float]:
    """In a fresh process: load the model, embed the photos; throughput and the process's peak memory."""
    import resource

    from PIL import Image

    from photoscout.models import factory

    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    model = factory.create(spec, runtime)
    model.load()
    model.analyze_images(images[: min(8, len(images))])  # type: ignore[attr-defined]  # warm-up
    started = time.perf_counter()
    model.analyze_images(images)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return {"photos": len(images), "photos_per_s": round(len(images) / elapsed, 1),
            "peak_rss_mb": round(_peak_rss_kb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1)}


def _peak_rss_kb(fallback: int) -> int:
    """This process's peak resident memory. Linux's ru_maxrss survives exec (a spawned child would report its
    parent's peak), so the per-address-space high-water mark in /proc is preferred."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return fallback


def measure(db: Database, settings: Settings, model: RegisteredModel,
            photos: int = THROUGHPUT_PHOTOS) -> dict[str, float]:
    with db.connection() as conn:
        thumbs = [settings.thumbnails_dir / t for (t,) in conn.execute(
            "SELECT thumbnail FROM photos WHERE status = 'ok' AND thumbnail IS NOT NULL ORDER BY id LIMIT %s",
            (photos,))]
    paths = [os.fspath(t) for t in thumbs if t.is_file()]
    if not paths:
        return {}
    runtime = ModelCache(settings).runtime
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_measure_in_child, model.spec(settings), runtime, paths).result()
