"""What takes the disk, and what a planned job will take.

Per model version: the rows it owns in each output table; its share of those tables' bytes as PostgreSQL reports
them (``pg_total_relation_size``, split among versions by the bytes of their rows) plus its own vector index
(``pg_relation_size`` of the partial index); its artifact files. Beside them: the library's own tables, the
thumbnails and previews, the database as a whole, and the free space of the volumes holding the home and the
database. The parts add up to what PostgreSQL and the file system report.

Estimates for a job: bytes per photo from a version already stored with the same storage (scaled by dimension),
else from the sizes of the rows it will write; time from the throughput measured on this machine (a completed job
of the version or of its backend, else a short measurement now).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoscout.config import Settings
from photoscout.database import Database, indexes, scalar
from photoscout.database.schema import OUTPUT_TABLES
from photoscout.jobs import store
from photoscout.models import artifacts
from photoscout.registry import lifecycle
from photoscout.registry.lifecycle import RegisteredModel

LIBRARY_TABLES = ("photos", "scans", "model_registry", "model_status_history", "jobs", "job_units",
                  "job_item_failures", "eval_runs", "eval_query_results", "schema_migrations", "category_rules")
PREVIEWS = "previews"


@dataclass
class VersionUsage:
    model: str
    type: str
    status: str
    rows: dict[str, int] = field(default_factory=dict)
    table_bytes: int = 0
    index_bytes: int = 0
    artifact_bytes: int = 0

    @property
    def database_bytes(self) -> int:
        return self.table_bytes + self.index_bytes

    @property
    def total_bytes(self) -> int:
        return self.database_bytes + self.artifact_bytes

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "database_bytes": self.database_bytes, "total_bytes": self.total_bytes}


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder; (0, 0) when it does not exist."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def _volume(path: Path) -> dict[str, Any]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    du = shutil.disk_usage(probe)
    return {"path": str(path), "free_bytes": du.free, "total_bytes": du.total}


def versions(db: Database, settings: Settings) -> list[VersionUsage]:
    """Every model version's rows, database bytes and artifact bytes."""
    return _versions(db, settings)[0]


def _versions(db: Database, settings: Settings) -> tuple[list[VersionUsage], int]:
    """Every model version's usage, and the bytes of output tables that no version's rows account for (the pages
    and indexes of empty tables)."""
    models = lifecycle.list_models(db)
    usage = {m.id: VersionUsage(m.ref, m.type, m.status) for m in models}
    own_index = {m.id: indexes.size_bytes(db, m) for m in models if m.type == "embedding"}
    unattributed = 0
    with db.connection() as conn:
        for table in OUTPUT_TABLES:
            total = scalar(conn, "SELECT pg_total_relation_size(%s::regclass)", (table,))
            per_model = conn.execute(f"SELECT model_id, count(*), sum(pg_column_size(t.*)) FROM {table} t "
                                     "GROUP BY model_id").fetchall()
            if table == "photo_embeddings":  # each version's vector index is its own
                total -= sum(own_index.values())
            row_bytes = sum(int(b) for _m, _n, b in per_model) or 1
            attributed = 0
            for model_id, count, nbytes in per_model:
                if model_id in usage:
                    share = round(total * int(nbytes) / row_bytes)
                    usage[model_id].rows[table] = int(count)
                    usage[model_id].table_bytes += share
                    attributed += share
            unattributed += total - attributed
    for m in models:
        usage[m.id].index_bytes = own_index.get(m.id, 0)
        try:
            usage[m.id].artifact_bytes = folder_bytes(m.artifact_dir(settings))[1]
        except artifacts.ArtifactError:  # a registry row naming a folder outside models/: not counted, not read
            pass
    return list(usage.values()), unattributed


def usage(db: Database, settings: Settings) -> dict[str, Any]:
    """The whole picture (``photoscout disk``)."""
    per_version, unattributed = _versions(db, settings)
    with db.connection() as conn:
        library = {t: scalar(conn, "SELECT pg_total_relation_size(%s::regclass)", (t,)) for t in LIBRARY_TABLES}
        database_bytes = scalar(conn, "SELECT pg_database_size(current_database())")
        photos = scalar(conn, "SELECT count(*) FROM photos WHERE status = 'ok'")
    thumbs = folder_bytes(settings.thumbnails_dir)
    previews = folder_bytes(settings.data_dir / PREVIEWS)
    volumes = [_volume(settings.home)]
    database: dict[str, Any] = {"bytes": database_bytes, "library_tables": library,
                                "library_bytes": sum(library.values()), "empty_output_bytes": unattributed}
    if settings.uses_embedded_db:
        database["data_dir_bytes"] = folder_bytes(settings.pgdata_dir)[1]  # with its write-ahead log
        volumes.append(_volume(settings.pgdata_dir))
    return {
        "photos": photos,
        "versions": [v.as_dict() for v in per_version],
        "files": {"thumbnails": {"files": thumbs[0], "bytes": thumbs[1]},
                  "previews": {"files": previews[0], "bytes": previews[1]},
                  "models_bytes": folder_bytes(settings.models_dir)[1]},
        "database": database,
        "volumes": volumes,
    }


# -- estimates -------------------------------------------------------------------------------------------------
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
                    _volume(where)["free_bytes"])
