"""The loaded-model cache: one model object per registry version, created on first request and kept, so a
long-running process (a server, a worker) loads each model once (models themselves load their files lazily)."""

from __future__ import annotations

import threading
from typing import Protocol

from photoscout.config import Settings
from photoscout.models import factory
from photoscout.models.base import Model, ModelSpec, RuntimeOptions


class HasSpec(Protocol):
    """A registry entry: it knows its id and can say what a backend needs (``spec``)."""

    @property
    def id(self) -> int: ...

    def spec(self, settings: Settings) -> ModelSpec: ...


class ModelCache:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime = RuntimeOptions(device=settings.device, threads=settings.threads,
                                      batch_size=settings.batch_size)
        self._models: dict[int, Model] = {}
        self._lock = threading.Lock()

    def get(self, registered: HasSpec) -> Model:
        with self._lock:
            if registered.id not in self._models:
                self._models[registered.id] = factory.create(registered.spec(self.settings), self.runtime)
            return self._models[registered.id]
