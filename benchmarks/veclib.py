"""A 100k-photo vector library for the search and serve benchmarks: photos-dev's real photos indexed by a built-in
version, and derived vectors (perturbed copies of the real ones) to reach a library's size."""

from __future__ import annotations

import numpy as np

from benchmarks.genlib import DATASET, install_builtins
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.jobs import store
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.registry import lifecycle


def index_dataset(db: Database, settings: Settings, ref: str) -> lifecycle.RegisteredModel:
    """Install the built-ins, scan photos-dev and embed it with ``ref``; the version."""
    install_builtins(db, settings, ref)
    version = lifecycle.get(db, ref)
    scanner.scan(db, settings, [DATASET])
    Worker(db, settings).run(store.create_job(db, kind="embed", model_ref=ref)["id"])
    return version


def perturbed(base: np.ndarray, count: int, noise: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` unit vectors, each a random row of ``base`` moved by noise of norm ``noise``; and the rows picked."""
    picks = rng.integers(0, len(base), count)
    shift = rng.normal(size=(count, base.shape[1])).astype(np.float32)
    shift *= noise / np.linalg.norm(shift, axis=1, keepdims=True)
    out = base[picks] + shift
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, picks


def grow(db: Database, version: lifecycle.RegisteredModel, size: int, noise: float, rng: np.random.Generator,
         *, prefix: str = "/bench/synthetic") -> tuple[list[int], np.ndarray]:
    """Add synthetic photos (rows only, under ``prefix``) to reach ``size`` photos, with ``version``'s vectors as
    perturbed copies of the real photos' (which it must have embedded) and the categories of the real photo each
    copies (a library whose categories are as common as photos-dev's: "people" in a third, "receipts" in a few per
    cent); 10% of all photos also carry the category "sel10" and 1% "sel1" (random, the real ones too), dates spread
    over ten years. The real photos' ids and their vectors."""
    import os
    from datetime import datetime, timedelta

    from pgvector import HalfVector

    from photoscout.analysis.store import as_array

    with db.connection() as conn:
        real = [(pid, as_array(v)) for pid, v in conn.execute(
            "SELECT photo_id, coalesce(embedding, embedding_half::vector) FROM photo_embeddings WHERE model_id = %s "
            "ORDER BY photo_id", (version.id,))]
        cats_of = dict(conn.execute("SELECT id, categories FROM photos WHERE id = ANY(%s)",
                                    ([pid for pid, _ in real],)).fetchall())
    base = np.stack([v for _, v in real])
    n_syn = size - len(real)
    syn, picks = perturbed(base, n_syn, noise, rng)
    start = datetime(2015, 1, 1)
    with db.connection() as conn:
        cur = conn.cursor()
        with cur.copy("COPY photos (path, path_raw, folder, status, categories, taken_at) FROM STDIN") as copy:
            for i in range(n_syn):
                cats = [*cats_of[real[int(picks[i])][0]], *(["sel10"] if rng.random() < 0.10 else [])]
                if rng.random() < 0.01:
                    cats.append("sel1")
                path = f"{prefix}/{i // 1000:04d}/IMG_{i:07d}.jpg"
                copy.write_row((path, path.encode(), os.path.dirname(path), "ok", cats,
                                start + timedelta(minutes=int(rng.integers(0, 5_000_000)))))
        for pid, _v in real:  # the real photos get the filter categories too
            extra = ["sel10"] if rng.random() < 0.10 else []
            if rng.random() < 0.01:
                extra.append("sel1")
            if extra:
                cur.execute("UPDATE photos SET categories = categories || %s::text[] WHERE id = %s", (extra, pid))
        ids = [r[0] for r in cur.execute("SELECT id FROM photos WHERE path LIKE %s ORDER BY id", (prefix + "/%",))]
        half = version.config.get("storage") == "halfvec"
        column = "embedding_half" if half else "embedding"
        with cur.copy(f"COPY photo_embeddings (photo_id, model_id, embedding_model, embedding_version, {column}) "
                      "FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "text", "text", "halfvec" if half else "vector"])
            for pid, vec in zip(ids, syn, strict=True):
                copy.write_row((pid, version.id, version.name, version.version, HalfVector(vec) if half else vec))
        # the version's other rows, as its job writes them: each synthetic photo gets its real photo's analysis
        cur.execute("CREATE TEMP TABLE picked (photo_id bigint, real_id bigint) ON COMMIT DROP")
        with cur.copy("COPY picked FROM STDIN") as copy:
            for pid, pick in zip(ids, picks, strict=True):
                copy.write_row((pid, real[int(pick)][0]))
        cur.execute("INSERT INTO photo_analysis (photo_id, model_id, labels, category_scores, text_likelihood, cues, "
                    "categories) SELECT p.photo_id, a.model_id, a.labels, a.category_scores, a.text_likelihood, "
                    "a.cues, a.categories FROM picked p JOIN photo_analysis a ON a.photo_id = p.real_id "
                    "AND a.model_id = %s", (version.id,))
        cur.execute("INSERT INTO photo_model_runs (photo_id, model_id, outcome) SELECT photo_id, %s, 'done' "
                    "FROM picked", (version.id,))
    return [pid for pid, _ in real], base
