"""Captioning with BLIP (transformers ``BlipForConditionalGeneration``)."""

from __future__ import annotations

from PIL import Image

from photoscout.models.base import CaptionModel
from photoscout.models.hub import HubModel


class BlipCaptioner(HubModel, CaptionModel):
    auto_class = "BlipForConditionalGeneration"

    def _configure(self) -> None:
        self.max_new_tokens = int(self.spec.config.get("max_new_tokens", 30))

    def _caption(self, images: list[Image.Image]) -> list[str]:
        import torch

        out: list[str] = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(images), bs):
            pixels = self.processor(images=[im.convert("RGB") for im in images[start: start + bs]],
                                    return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(pixel_values=pixels, max_new_tokens=self.max_new_tokens)
            out += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return out
