"""What takes the disk (the estimate of what a planned job will take is ``estimate.py``).

Per model version: the rows it owns in each output table; its share of those tables' bytes as PostgreSQL reports
them (``pg_total_relation_size``, split among versions by the bytes of their rows) plus its own vector index
(``pg_relation_size`` of the partial index); its artifact files. Beside them: the library's own tables, the
thumbnails and previews, the database as a whole, and the free space of the volumes holding the home and the
database. The parts add up to what PostgreSQL and the file system report.
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
from photoscout.models import artifacts
from photoscout.registry import lifecycle

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


def volume(path: Path) -> dict[str, Any]:
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
        # the library's own state: every table that is not a model's output (a new migration's table included)
        library = {str(name): int(size) for name, size in conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND c.relname <> ALL(%s) ORDER BY c.relname", (list(OUTPUT_TABLES),)).fetchall()}
        database_bytes = scalar(conn, "SELECT pg_database_size(current_database())")
        photos = scalar(conn, "SELECT count(*) FROM photos WHERE status = 'ok'")
    thumbs = folder_bytes(settings.thumbnails_dir)
    previews = folder_bytes(settings.data_dir / PREVIEWS)
    volumes = [volume(settings.home)]
    database: dict[str, Any] = {"bytes": database_bytes, "library_tables": library,
                                "library_bytes": sum(library.values()), "empty_output_bytes": unattributed}
    if settings.uses_embedded_db:
        database["data_dir_bytes"] = folder_bytes(settings.pgdata_dir)[1]  # with its write-ahead log
        volumes.append(volume(settings.pgdata_dir))
    return {
        "photos": photos,
        "versions": [v.as_dict() for v in per_version],
        "files": {"thumbnails": {"files": thumbs[0], "bytes": thumbs[1]},
                  "previews": {"files": previews[0], "bytes": previews[1]},
                  "models_bytes": folder_bytes(settings.models_dir)[1]},
        "database": database,
        "volumes": volumes,
    }
