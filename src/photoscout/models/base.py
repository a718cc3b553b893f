"""One abstract class per model type. A model is created from its registry entry (name, version, backend,
artifact folder, config) and loads lazily: the base class calls ``load()`` on first use, so listing models costs
nothing and a backend only writes ``_load`` and the ``_``-prefixed work of its type."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from photoscout.models import artifacts


@dataclass(frozen=True)
class ModelSpec:
    """What a backend needs to build a model: a registry entry with its artifacts resolved to a folder."""

    name: str
    version: str
    type: str
    backend: str
    artifact_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # 0 = all cores
    batch_size: int = 32


@dataclass
class ImageAnalysis:
    """What an embedding model can tell about an image besides its vector: its best labels and category scores."""

    labels: list[tuple[str, float]] = field(default_factory=list)
    category_scores: dict[str, float] = field(default_factory=dict)
    text_likelihood: float = 0.0  # how likely the image shows text (used to decide whether OCR runs)


@dataclass(frozen=True)
class Region:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x, y, w, h as fractions of the image


@dataclass(frozen=True)
class OcrText:
    text: str
    confidence: float
    boxes: int


class Model(ABC):
    """A model from its registry entry. Nothing is read from disk until first use: each public method of the type
    classes below loads the model (once, thread-safe) and then calls the backend's ``_``-prefixed method."""

    type: ClassVar[str]

    def __init__(self, spec: ModelSpec, runtime: RuntimeOptions) -> None:
        self.spec = spec
        self.runtime = runtime
        self._loaded = False
        self._lock = threading.Lock()

    def load(self) -> None:
        """Verify the artifacts (cheaply: sizes and times against the manifest), then load them."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                artifacts.check(self.spec.artifact_dir, self.spec.ref)
                self._load()
                self._loaded = True

    @abstractmethod
    def _load(self) -> None:
        """Read the model's files (``artifact``) and build what it runs with."""

    def artifact(self, key: str) -> Path:
        """The file named by ``config['files'][key]``: inside the artifact folder and listed in its (verified)
        manifest, or refused."""
        files = self.spec.config.get("files", {})
        if key not in files:
            raise artifacts.ArtifactError(f"{self.spec.ref}: its settings name no file '{key}'")
        path = artifacts.contained(self.spec.artifact_dir, str(files[key]), f"{self.spec.ref}: file")
        listed = {e["path"] for e in artifacts.read_manifest(self.spec.artifact_dir)["files"]}
        if path.relative_to(self.spec.artifact_dir).as_posix() not in listed:
            raise artifacts.ArtifactError(f"{self.spec.ref}: file {files[key]!r} is not in its manifest: refused")
        return path


class EmbeddingModel(Model):
    """Images and texts into one vector space (L2-normalised vectors, cosine similarity)."""

    type = "embedding"

    @property
    def dim(self) -> int:
        return int(self.spec.config["dim"])

    def analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]:
        """Vectors [N, dim] and per-image analysis."""
        self.load()
        return self._analyze_images(images)

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        return self.analyze_images(images)[0]

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Vectors [N, dim] for texts stored beside the photos (OCR text) or labels."""
        self.load()
        return self._embed_texts(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Vectors [N, dim] for what a person typed into search (a backend may read more languages here)."""
        self.load()
        return self._embed_queries(texts)

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed_texts(texts)

    def read_queries(self, texts: list[str]) -> list[str | None]:
        """For each query, the English words it means where it is in another language and the backend can tell
        ("Menschen" -> "people"), else None: the search reads categories and printed words from them too."""
        self.load()
        return self._read_queries(texts)

    def _read_queries(self, texts: list[str]) -> list[str | None]:
        return [None] * len(texts)

    @abstractmethod
    def _analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]: ...

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> np.ndarray: ...

    def zero_shot_scores(self, vectors: np.ndarray, prompts: dict[str, list[str]]) -> list[dict[str, float]]:
        """Softmax over categories of the best cosine similarity to each category's prompts (the prompts' vectors
        are computed once per model: a full-size text tower costs as much as a batch of photos)."""
        names = list(prompts)
        key = tuple((n, tuple(prompts[n])) for n in names)
        cached: dict[Any, list[np.ndarray]] = self.__dict__.setdefault("_prompt_vectors", {})
        if key not in cached:
            cached[key] = [self.embed_texts(prompts[n]) for n in names]
        prompt_vecs = cached[key]
        sims = np.stack([(vectors @ pv.T).max(axis=1) for pv in prompt_vecs], axis=1)
        scale = float(self.spec.config.get("logit_scale", 100.0))
        logits = sims * scale
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return [{n: float(p[i]) for i, n in enumerate(names)} for p in probs]


class DetectorModel(Model):
    type = "detector"

    def detect(self, images: list[Image.Image]) -> list[list[Region]]:
        self.load()
        return self._detect(images)

    @abstractmethod
    def _detect(self, images: list[Image.Image]) -> list[list[Region]]: ...


class OcrModel(Model):
    type = "ocr"

    def read(self, images: list[Image.Image], scene: list[bool] | None = None) -> list[OcrText]:
        """The text of each image. ``scene`` says, per image, whether it is a camera picture whose text (if any) is
        a sign or a label, rather than a page or a screen; a backend may look for text at a lower size there."""
        if scene is not None and len(scene) != len(images):
            raise ValueError(f"{len(scene)} scene flags for {len(images)} images")
        self.load()
        return self._read(images, scene if scene is not None else [False] * len(images))

    @abstractmethod
    def _read(self, images: list[Image.Image], scene: list[bool]) -> list[OcrText]: ...


class CaptionModel(Model):
    type = "captioning"

    def caption(self, images: list[Image.Image]) -> list[str]:
        self.load()
        return self._caption(images)

    @abstractmethod
    def _caption(self, images: list[Image.Image]) -> list[str]: ...


class FewShotModel(Model):
    """Image features for prototypes: the user marks examples of a class, the mean of their features classifies."""

    type = "few_shot"

    def features(self, images: list[Image.Image]) -> np.ndarray:
        """L2-normalised feature vectors [N, D]."""
        self.load()
        return self._features(images)

    @abstractmethod
    def _features(self, images: list[Image.Image]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
