"""Few-shot classes: the user marks example photos ("my car", "receipts"); the active few-shot model's features of
the examples give a prototype; every photo whose features are close enough gets the class as a category."""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg.rows import dict_row

from photoscout.analysis import categories
from photoscout.analysis.photos import photos_by_id
from photoscout.analysis.runner import run_models
from photoscout.analysis.store import as_array
from photoscout.common.errors import NotFound, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.database.schema import shown
from photoscout.library import catalog
from photoscout.models.cache import ModelCache
from photoscout.models.prototypes import prototype
from photoscout.registry import lifecycle


def _active_model(db: Database) -> lifecycle.RegisteredModel:
    model = lifecycle.active(db, "few_shot")
    if model is None:
        raise PhotoscoutError("no active few_shot model (run: photoscout models install-builtin)")
    return model


def create_class(db: Database, settings: Settings, name: str, examples: list[str],
                 threshold: float | None = None, models: ModelCache | None = None) -> dict[str, Any]:
    if not name.strip() or len(name) > 60:
        raise PhotoscoutError("a class name needs 1 to 60 characters")
    if not examples:
        raise PhotoscoutError("give at least one example photo (id or path)")
    model = _active_model(db)
    ids = [int(catalog.get_photo(db, ref)["id"]) for ref in examples]
    with db.connection() as conn:
        have = {r[0] for r in conn.execute("SELECT photo_id FROM photo_features WHERE model_id = %s AND "
                                           "photo_id = ANY(%s)", (model.id, ids))}
    missing = [i for i in ids if i not in have]
    if missing:  # examples the model has not seen yet: compute their features now
        run_models(db, settings, models or ModelCache(settings), [model], photos_by_id(db, missing))
    with db.connection() as conn:
        feats = [as_array(r[0]) for r in conn.execute(
            "SELECT features FROM photo_features WHERE model_id = %s AND photo_id = ANY(%s)", (model.id, ids))]
    if not feats:
        raise PhotoscoutError("none of the example photos could be read")
    proto = prototype(np.stack(feats))
    thr = float(threshold if threshold is not None else model.config.get("default_threshold", 0.75))
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO fewshot_classes (name, model_id, prototype, threshold, example_ids) VALUES (%s, %s, %s, %s, "
            "%s) ON CONFLICT (name, model_id) DO UPDATE SET prototype = EXCLUDED.prototype, "
            "threshold = EXCLUDED.threshold, example_ids = EXCLUDED.example_ids, updated_at = now()",
            (name, model.id, proto, thr, ids))
        all_ids = [r[0] for r in conn.execute(f"SELECT id FROM photos p WHERE {shown()}")]
    categories.refresh(db, all_ids)
    return {"name": name, "model": model.ref, "threshold": thr, "examples": ids, "members": members(db, name)}


def members(db: Database, name: str) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM photos WHERE %s = ANY(categories)", (name,)).fetchone()
    return int(row[0]) if row else 0


def list_classes(db: Database) -> list[dict[str, Any]]:
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT c.name, m.name || '@' || m.version AS model, c.threshold, c.example_ids, "
                           "c.updated_at FROM fewshot_classes c JOIN model_registry m ON m.id = c.model_id "
                           "ORDER BY c.name").fetchall()
    return [{**r, "updated_at": r["updated_at"].isoformat(), "members": members(db, r["name"])} for r in rows]


def remove_class(db: Database, name: str) -> None:
    with db.connection() as conn:
        deleted = conn.execute("DELETE FROM fewshot_classes WHERE name = %s RETURNING id", (name,)).fetchall()
        if not deleted:
            raise NotFound(f"no few-shot class {name!r}")
        ids = [r[0] for r in conn.execute("SELECT id FROM photos WHERE %s = ANY(categories)", (name,))]
    categories.refresh(db, ids)


def add_example(db: Database, settings: Settings, name: str, photo_id: int,
                models: ModelCache | None = None) -> dict[str, Any]:
    """One more example photo for a class (a new class when there is none by that name); its threshold is kept."""
    existing = next((c for c in list_classes(db) if c["name"] == name), None)
    examples = [str(i) for i in (existing["example_ids"] if existing else [])]
    if str(photo_id) not in examples:
        examples.append(str(photo_id))
    return create_class(db, settings, name, examples, existing["threshold"] if existing else None, models=models)
