"""Open-vocabulary detection with OWL-ViT / OWLv2 (transformers): regions for text queries from the config
(``queries``), kept above ``threshold``; boxes as fractions of the image."""

from __future__ import annotations

from typing import Any

from PIL import Image

from photoscout.models.base import DetectorModel, Region
from photoscout.models.hub import HubModel

DEFAULT_QUERIES = ["a face", "a receipt", "a laptop", "a phone", "a screen", "a car", "a dog", "a cat", "food"]


class OwlVitDetector(HubModel, DetectorModel):
    auto_class = "AutoModelForZeroShotObjectDetection"

    def _configure(self) -> None:
        self.queries: list[str] = list(self.spec.config.get("queries", DEFAULT_QUERIES))
        self.threshold = float(self.spec.config.get("threshold", 0.2))

    def _detect(self, images: list[Image.Image]) -> list[list[Region]]:
        import torch

        results: list[list[Region]] = []
        for im in images:
            im = im.convert("RGB")
            text: Any = self.tokenizer(self.queries, padding="max_length", truncation=True,
                                       max_length=int(self.spec.config.get("max_text_length", 16)),
                                       return_tensors="pt")
            pixels = self.processor(images=[im], return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                out = self.model(input_ids=text["input_ids"].to(self.device),
                                 attention_mask=text["attention_mask"].to(self.device),
                                 pixel_values=pixels.to(self.device))
            w, h = im.size
            det = self.processor.post_process_object_detection(
                out, threshold=self.threshold, target_sizes=torch.tensor([[h, w]]))[0]
            regions = []
            for score, label, box in zip(det["scores"].tolist(), det["labels"].tolist(), det["boxes"].tolist(),
                                         strict=True):
                x1, y1, x2, y2 = (max(0.0, v) for v in box)
                x2, y2 = min(float(w), x2), min(float(h), y2)
                if x2 > x1 and y2 > y1:
                    regions.append(Region(self.queries[int(label)], float(score),
                                          (x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h)))
            results.append(regions)
        return results
