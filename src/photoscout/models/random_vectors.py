"""A deliberately useless embedding model: every image and every text gets a random unit vector, seeded by its
content (the same photo always gets the same vector). It is the floor any real model must beat, and the way to see
the promotion gate refuse a bad version (``photoscout models install-builtin random-vectors@v0.1.0``)."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from photoscout.models.base import EmbeddingModel, ImageAnalysis, l2_normalize


class RandomVectors(EmbeddingModel):
    def _load(self) -> None:
        self.seed = str(self.spec.config.get("seed", "photoscout"))

    def _vector(self, content: bytes) -> np.ndarray:
        digest = hashlib.sha256(self.seed.encode() + content).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        return rng.standard_normal(self.dim).astype(np.float32)

    def _analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]:
        if not images:
            return np.zeros((0, self.dim), np.float32), []
        vectors = np.stack([self._vector(im.convert("RGB").resize((16, 16)).tobytes()) for im in images])
        return l2_normalize(vectors), [ImageAnalysis(labels=[], category_scores={}, text_likelihood=0.0)
                                       for _ in images]

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(np.stack([self._vector(t.encode()) for t in texts]))
