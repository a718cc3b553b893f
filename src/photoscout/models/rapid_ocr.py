"""OCR with RapidOCR (PaddleOCR PP-OCR det/cls/rec ONNX models) on ONNX Runtime, models from the artifact folder.

A version's config may turn the text-angle classifier off (``use_cls``) and cap the longer side text detection runs
at (``det_max_side``): small images are still enlarged to 736 px on their shorter side for detection, larger ones
are detected at most ``det_max_side`` wide or tall, and the recogniser reads each line from the full-size image.
``scene_det_min_side`` (with ``det_max_side``) lowers the 736 px to that many for a scene photo (a camera picture
whose text, if any, is a sign or a label): about half the detection time, for a few words lost (issue #14).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from photoscout.models.base import OcrModel, OcrText

DET_MIN_SIDE = 736  # RapidOCR's default: detection enlarges smaller images to this shorter side


class RapidOcr(OcrModel):
    def _load(self) -> None:
        from rapidocr import RapidOCR

        threads = self.runtime.threads or -1
        params: dict[str, Any] = {
            "Det.model_path": str(self.artifact("det")),
            "Rec.model_path": str(self.artifact("rec")),
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.use_cuda": self.runtime.device == "cuda",
            "Global.text_score": float(self.spec.config.get("text_score", 0.5)),
            "Global.use_cls": bool(self.spec.config.get("use_cls", True)),
        }
        if params["Global.use_cls"]:
            params["Cls.model_path"] = str(self.artifact("cls"))
        self.det_max_side = int(self.spec.config.get("det_max_side", 0))
        self.scene_min_side = int(self.spec.config.get("scene_det_min_side", 0)) or DET_MIN_SIDE
        if self.scene_min_side != DET_MIN_SIDE and not self.det_max_side:
            raise ValueError(f"{self.spec.name}@{self.spec.version}: scene_det_min_side needs det_max_side (detection "
                             "is sized per image only then)")
        self.engine = RapidOCR(params=params)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        if self.det_max_side:  # the detector loads on first use; its size limits are set per image
            self.engine(np.zeros((32, 32, 3), np.uint8))
            if getattr(self.engine, "text_det", None) is None:
                raise RuntimeError("this RapidOCR has no text detector to size (det_max_side needs rapidocr 3.10)")

    def _read(self, images: list[Image.Image], scene: list[bool]) -> list[OcrText]:
        out = []
        for im, in_scene in zip(images, scene, strict=True):
            if self.det_max_side:
                min_side = self.scene_min_side if in_scene else DET_MIN_SIDE
                det: Any = self.engine.text_det
                det.limit_type, det.limit_side_len = (
                    ("min", min_side) if min(im.size) < min_side else ("max", self.det_max_side))
            result = self.engine(np.asarray(im.convert("RGB"))[:, :, ::-1])  # RapidOCR takes BGR arrays
            texts = list(getattr(result, "txts", None) or ())
            scores = list(getattr(result, "scores", None) or ())
            text = "\n".join(t.strip() for t in texts if t.strip())
            conf = float(np.mean(scores)) if scores else 0.0
            out.append(OcrText(text=text, confidence=conf, boxes=len(texts)))
        return out
