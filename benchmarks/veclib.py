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
