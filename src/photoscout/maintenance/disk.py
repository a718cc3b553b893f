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
                  "job_item_failures", "eval_runs", "eval_query_results", "schema_migrations")
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
VECTOR_HEADER = 8  # varlena header + dimension of a pgvector value
ROW_OVERHEAD = 150  # heap tuple header, line pointer, ids, names, timestamps, b-tree entries
ANALYSIS_BYTES = 900  # labels, category scores and cues of a photo, with the table's indexes
RUN_BYTES = 110  # one photo_model_runs row with its primary key
OTHER_TYPE_BYTES = {"detector": 250, "ocr": 1200, "captioning": 300, "few_shot": 6000}


def _vector_bytes(model: RegisteredModel) -> int:
    dim = int(model.config.get("dim", 0) or 0)
    return VECTOR_HEADER + dim * (2 if model.config.get("storage") == "halfvec" else 4)


def bytes_per_photo(db: Database, settings: Settings, model: RegisteredModel) -> tuple[float, str]:
    """What one photo will cost in the database for this version, and what the figure rests on."""
    stored = {v.model: v for v in versions(db, settings) if v.rows.get("photo_model_runs")}
    same_type = [m for m in lifecycle.list_models(db, type_=model.type) if m.id != model.id]
    for other in [model, *same_type]:  # this version's own rows, else another of its type: scaled to its vectors
        v = stored.get(other.ref)
        if v is None:
            continue
        per_photo = v.database_bytes / v.rows["photo_model_runs"]
        if model.type == "embedding":
            per_photo += 2 * (_vector_bytes(model) - _vector_bytes(other))  # table + index hold each vector
        return per_photo, f"measured on {v.model}"
    if model.type == "embedding":
        vec = _vector_bytes(model)
        return 2 * (vec + ROW_OVERHEAD) + ANALYSIS_BYTES + RUN_BYTES, "computed from the row sizes"
    return OTHER_TYPE_BYTES.get(model.type, 500) + RUN_BYTES, "computed from typical row sizes"


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
