"""What a planned job will take: bytes per photo from a version already stored with the same storage (scaled by
dimension), else from the sizes of the rows it will write, laid out on PostgreSQL's pages; time from the throughput
measured on this machine (a completed job of the version or of its backend, else a short measurement now); and
whether it fits the free space of the volume holding the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from photoscout.config import Settings
from photoscout.database import Database, scalar
from photoscout.database.schema import OUTPUT_TABLES
from photoscout.jobs import store
from photoscout.maintenance.disk import volume
from photoscout.registry import lifecycle
from photoscout.registry.lifecycle import RegisteredModel

# PostgreSQL's page layout: rows (8-byte aligned, with a 4-byte line pointer) fill 8 kB pages; a row too large for a
# page's quarter keeps its vector out of line (TOAST, in ~2 kB chunks).
PAGE, PAGE_USABLE, LINE_POINTER, TOAST_THRESHOLD, TOAST_CHUNK = 8192, 8168, 4, 2032, 1996
VECTOR_HEADER = 8  # varlena header + dimension of a pgvector value
BTREE_PER_ROW = {"photo_embeddings": 54}  # b-tree entries per row (id, (photo, model), model); other tables: 31
TYPICAL_ROW = {"photo_embeddings": 104, "photo_analysis": 640, "photo_model_runs": 60, "detections": 90,
               "photo_text": 1200, "photo_captions": 120, "photo_features": 5200, "region_embeddings": 900}
TYPICAL_TABLES = {"embedding": ("photo_embeddings", "photo_analysis", "photo_model_runs"),
                  "detector": ("detections", "photo_model_runs"), "ocr": ("photo_text", "photo_model_runs"),
                  "captioning": ("photo_captions", "photo_model_runs"),
                  "few_shot": ("photo_features", "photo_model_runs")}


def _vector_bytes(model: RegisteredModel) -> int:
    dim = int(model.config.get("dim", 0) or 0)
    return VECTOR_HEADER + dim * (2 if model.config.get("storage") == "halfvec" else 4)


def _aligned(n: float) -> int:
    return -(-int(n) // 8) * 8


def _on_pages(row: float) -> float:
    """Bytes one row of this size takes in a table's pages."""
    return PAGE / max(1, PAGE_USABLE // (_aligned(row) + LINE_POINTER))


def _table_row(table: str, row: float, vector: int) -> float:
    """A row with its b-tree entries; a vector too large to stay in the row goes to TOAST chunks."""
    btree = BTREE_PER_ROW.get(table, 31)
    if row > TOAST_THRESHOLD and vector:
        chunks = -(-vector // TOAST_CHUNK)
        return _on_pages(row - vector + 18) + btree + chunks * (_on_pages(TOAST_CHUNK + 36) + 31)
    return _on_pages(row) + btree


def _index_row(vector: int) -> float:
    """An IVFFlat entry (index tuple header + the vector), with ~2% for list tails and centroids."""
    return _on_pages(VECTOR_HEADER + vector) * 1.02


def bytes_per_photo(db: Database, settings: Settings, model: RegisteredModel) -> tuple[float, str]:
    """What one photo will cost in the database for this version, and what the figure rests on: the average sizes
    and counts of the rows a version of its type already stored (its own, else another's, with the vector resized),
    laid out on PostgreSQL's pages; else typical row sizes."""
    vec = _vector_bytes(model) if model.type == "embedding" else 0
    same_type = [model, *[m for m in lifecycle.list_models(db, type_=model.type) if m.id != model.id]]
    with db.connection() as conn:
        for ref in same_type:
            photos = scalar(conn, "SELECT count(*) FROM photo_model_runs WHERE model_id = %s", (ref.id,))
            if not photos:
                continue
            total = 0.0
            for table in OUTPUT_TABLES:
                if table == "fewshot_classes":
                    continue
                row = conn.execute(f"SELECT count(*), avg(pg_column_size(t.*)) FROM {table} t WHERE model_id = %s",
                                   (ref.id,)).fetchone()
                if not row or not row[0]:
                    continue
                size = float(row[1])
                table_vec = 0
                if table == "photo_embeddings":
                    table_vec = vec
                    size += vec - _vector_bytes(ref)
                    total += _index_row(vec)
                total += int(row[0]) / photos * _table_row(table, size, table_vec)
            return total, f"rows of {ref.ref} on the pages" + ("" if ref.id == model.id else " (vectors resized)")
    tables = TYPICAL_TABLES.get(model.type, ("photo_model_runs",))
    total = sum(_table_row(t, TYPICAL_ROW[t] + (vec if t == "photo_embeddings" else 0),
                           vec if t == "photo_embeddings" else 0) for t in tables)
    return total + (_index_row(vec) if vec else 0), "typical row sizes"


def photos_per_second(db: Database, settings: Settings, model: RegisteredModel, *,
                      measure: bool = True) -> tuple[float | None, str]:
    """This machine's throughput for the version: a completed job's, else measured now on a few photos."""
    found = store.measured_rate(db, model)
    if found is not None:
        return found[0], found[1]
    if not measure or model.type != "embedding":
        return None, "not measured yet"
    from photoscout.evaluation.resources import measure as measure_model

    measured = measure_model(db, settings, model, photos=32)
    rate = measured.get("photos_per_s")
    return (float(rate), "measured now on 32 photos (model only)") if rate else (None, "no photos to measure")


@dataclass
class Estimate:
    model: str
    photos: int
    bytes: int
    bytes_per_photo: float
    bytes_basis: str
    seconds: float | None
    photos_per_s: float | None
    time_basis: str
    free_bytes: int

    @property
    def fits(self) -> bool:
        return self.bytes < self.free_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "fits": self.fits}


def estimate(db: Database, settings: Settings, model: RegisteredModel, photos: int, *,
             measure: bool = True) -> Estimate:
    """What a job of ``model`` over ``photos`` photos will add to the database, and how long it will take."""
    per_photo, basis = bytes_per_photo(db, settings, model)
    rate, time_basis = photos_per_second(db, settings, model, measure=measure and photos > 0)
    where = settings.pgdata_dir if settings.uses_embedded_db else settings.home
    return Estimate(model.ref, photos, round(per_photo * photos), round(per_photo, 1), basis,
                    round(photos / rate, 1) if rate else None, round(rate, 2) if rate else None, time_basis,
                    volume(where)["free_bytes"])
