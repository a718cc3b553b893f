"""Image-text embedding models from the hub: SigLIP, SigLIP2 (the design note's default,
``google/siglip2-base-patch16-224``) and CLIP, loaded with transformers' Auto classes from the artifact folder
(``config.json``, weights, tokenizer and image-processor files as ``save_pretrained`` writes them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photoscout.models.base import EmbeddingModel, ImageAnalysis, l2_normalize
from photoscout.models.hub import HubModel, features_tensor

CATEGORY_PROMPTS = {
    "electronics": ["a photo of an electronic device", "a laptop", "a phone", "a camera"],
    "food": ["a photo of food", "a dish of food"],
    "documents": ["a scanned document", "a receipt", "a page of printed text"],
    "screenshots": ["a screenshot of a computer screen", "a screenshot of an app"],
    "people": ["a photo of a person", "a portrait of a face"],
    "animals": ["a photo of an animal"],
    "vehicles": ["a photo of a vehicle", "a car", "an airplane", "a boat"],
}


class HubImageTextEmbedder(HubModel, EmbeddingModel):
    auto_class = "AutoModel"

    @classmethod
    def describe(cls, folder: Path) -> dict[str, Any]:
        """Settings read from the model's ``config.json`` (dimension, architecture, text length)."""
        path = folder / "config.json"
        if not path.is_file():
            return {}
        cfg = json.loads(path.read_text())
        arch = cfg.get("model_type", "")
        text = cfg.get("text_config", {}) or {}
        vision = cfg.get("vision_config", {}) or {}
        dim = cfg.get("projection_dim") or text.get("projection_size") or vision.get("hidden_size") or text.get(
            "hidden_size")
        out: dict[str, Any] = {"architecture": arch, "dim": int(dim) if dim else None}
        if arch.startswith("siglip"):
            out.update({"text_padding": "max_length", "max_text_length": int(text.get("max_position_embeddings", 64)),
                        "prompt": "{}"})
        else:
            out.update({"text_padding": "longest", "max_text_length": int(text.get("max_position_embeddings", 77)),
                        "prompt": "{}"})
        return out

    def _images(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        out = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(images), bs):
            inputs = self.processor(images=[im.convert("RGB") for im in images[start: start + bs]],
                                    return_tensors="pt")
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            with torch.inference_mode():
                feats = features_tensor(self.model.get_image_features(**inputs))
            out.append(feats.float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def _analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]:
        vectors = self._images(images)
        scores = self.zero_shot_scores(vectors, CATEGORY_PROMPTS)
        return vectors, [ImageAnalysis(category_scores=s, text_likelihood=s.get("documents", 0.0)
                                       + s.get("screenshots", 0.0)) for s in scores]

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        prompt = str(self.spec.config.get("prompt", "{}"))
        out = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(texts), bs):
            batch = [prompt.format(t) for t in texts[start: start + bs]]
            enc = self.tokenizer(batch, padding=self.spec.config.get("text_padding", "longest"), truncation=True,
                                 max_length=int(self.spec.config.get("max_text_length", 64)), return_tensors="pt")
            enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            if self.spec.config.get("architecture", "").startswith("siglip"):
                enc.pop("attention_mask", None)  # SigLIP was trained on max-length padding without a mask
            with torch.inference_mode():
                feats = features_tensor(self.model.get_text_features(**enc))
            out.append(feats.float().cpu().numpy())
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)
