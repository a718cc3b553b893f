"""Captioning with BLIP (transformers ``BlipForConditionalGeneration``)."""

from __future__ import annotations

from PIL import Image

from photoscout.models.base import CaptionModel
from photoscout.models.hub import set_threads, torch_device


class BlipCaptioner(CaptionModel):
    def _load(self) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, BlipForConditionalGeneration

        set_threads(self.runtime.threads)
        folder = str(self.spec.artifact_dir)
        self.device = torch_device(self.runtime.device)
        self.model = BlipForConditionalGeneration.from_pretrained(folder).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.processor = AutoImageProcessor.from_pretrained(folder)
        self.max_new_tokens = int(self.spec.config.get("max_new_tokens", 30))

    def caption(self, images: list[Image.Image]) -> list[str]:
        import torch

        self.load()
        out: list[str] = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(images), bs):
            pixels = self.processor(images=[im.convert("RGB") for im in images[start: start + bs]],
                                    return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                ids = self.model.generate(pixel_values=pixels, max_new_tokens=self.max_new_tokens)
            out += [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return out
