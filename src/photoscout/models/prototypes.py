"""Few-shot classes over EfficientNet-Lite0 features: the user marks example photos ("my car", "receipts"); a
class's prototype is the normalised mean of its examples' 1280-d features; a photo belongs to the class when its
cosine similarity to the prototype passes the class threshold."""

from __future__ import annotations

import numpy as np
from PIL import Image

from photoscout.models.base import FewShotModel, l2_normalize
from photoscout.models.conse import EfficientNetRunner


class EfficientNetPrototypes(FewShotModel):
    def _load(self) -> None:
        self.cnn = EfficientNetRunner(self.artifact("image_model"), self.runtime)

    def _features(self, images: list[Image.Image]) -> np.ndarray:
        feats, _probs = self.cnn.run(images)
        return l2_normalize(feats)


def prototype(features: np.ndarray) -> np.ndarray:
    if len(features) == 0:
        raise ValueError("a few-shot class needs at least one example photo")
    return l2_normalize(features.mean(axis=0))
