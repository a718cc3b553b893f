"""OCR with RapidOCR (PaddleOCR PP-OCR det/cls/rec ONNX models) on ONNX Runtime, models from the artifact folder."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from photoscout.models.base import OcrModel, OcrText


class RapidOcr(OcrModel):
    def _load(self) -> None:
        from rapidocr import RapidOCR

        threads = self.runtime.threads or -1
        params: dict[str, Any] = {
            "Det.model_path": str(self.artifact("det")),
            "Cls.model_path": str(self.artifact("cls")),
            "Rec.model_path": str(self.artifact("rec")),
            "Global.log_level": "error",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.use_cuda": self.runtime.device == "cuda",
            "Global.text_score": float(self.spec.config.get("text_score", 0.5)),
        }
        self.engine = RapidOCR(params=params)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    def _read(self, images: list[Image.Image]) -> list[OcrText]:
        out = []
        for im in images:
            result = self.engine(np.asarray(im.convert("RGB"))[:, :, ::-1])  # RapidOCR takes BGR arrays
            texts = list(getattr(result, "txts", None) or ())
            scores = list(getattr(result, "scores", None) or ())
            text = "\n".join(t.strip() for t in texts if t.strip())
            conf = float(np.mean(scores)) if scores else 0.0
            out.append(OcrText(text=text, confidence=conf, boxes=len(texts)))
        return out
