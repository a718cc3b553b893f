"""A hub image-text model (SigLIP, SigLIP2, CLIP) exported to ONNX by ``photoscout models export-onnx`` (with int8
weights on request): ``image.onnx`` (pixels -> image features) and ``text.onnx`` (token ids -> text features), run by
ONNX Runtime, with the model's own tokenizer (``tokenizer.json``) and preprocessing (``preprocessor_config.json``)
done here in Pillow and numpy. No torch at run time; on CPU the int8 export ran 2-3x the photos/s of the torch
backend (``benchmarks/bench_rehearsal.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from photoscout.models.base import EmbeddingModel, ImageAnalysis, l2_normalize
from photoscout.models.hub.image_text import CATEGORY_PROMPTS
from photoscout.models.onnx_runtime import session

MANIFEST = "onnx.json"  # what the export wrote: files, architecture, dimension, text padding


class Preprocessor:
    """transformers' image processors for these models, as their ``preprocessor_config.json`` says: resize (to a
    fixed size, or the shorter side then a centre crop), rescale, normalise, channels first."""

    def __init__(self, config: dict[str, Any]) -> None:
        size = config.get("size") or {}
        crop = config.get("crop_size") or {}
        self.fixed = (int(size["width"]), int(size["height"])) if "height" in size else None
        self.shortest = int(size.get("shortest_edge", 224))
        self.crop = (int(crop.get("width", self.shortest)), int(crop.get("height", self.shortest))) \
            if config.get("do_center_crop") else None
        self.resample = Image.Resampling(int(config.get("resample", 3)))
        self.scale = float(config.get("rescale_factor", 1 / 255)) if config.get("do_rescale", True) else 1.0
        mean, std = config.get("image_mean", [0.5] * 3), config.get("image_std", [0.5] * 3)
        normalize = config.get("do_normalize", True)
        self.mean = np.array(mean if normalize else [0.0] * 3, np.float32).reshape(3, 1, 1)
        self.std = np.array(std if normalize else [1.0] * 3, np.float32).reshape(3, 1, 1)

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        out = []
        for im in images:
            im = im.convert("RGB")
            if self.fixed:
                im = im.resize(self.fixed, self.resample)
            else:
                w, h = im.size  # the shorter side to ``shortest``, the longer in proportion (truncated, as there)
                size = (self.shortest, int(self.shortest * h / w)) if w <= h else (int(self.shortest * w / h),
                                                                                   self.shortest)
                im = im.resize(size, self.resample)
                if self.crop:
                    cw, ch = self.crop
                    left, top = (im.width - cw) // 2, (im.height - ch) // 2
                    im = im.crop((left, top, left + cw, top + ch))
            arr = np.asarray(im, np.float32).transpose(2, 0, 1) * self.scale
            out.append((arr - self.mean) / self.std)
        return np.stack(out).astype(np.float32)


class OnnxImageTextEmbedder(EmbeddingModel):
    @classmethod
    def describe(cls, folder: Path) -> dict[str, Any]:
        """Settings the export recorded (dimension, architecture, text padding and length)."""
        path = folder / MANIFEST
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return {k: data[k] for k in ("architecture", "dim", "text_padding", "max_text_length", "prompt", "int8")
                if k in data}

    def _load(self) -> None:
        from tokenizers import Tokenizer

        folder = self.spec.artifact_dir
        manifest = json.loads((folder / MANIFEST).read_text())
        self.image = session(folder / manifest.get("image", "image.onnx"), self.runtime)
        self.text = session(folder / manifest.get("text", "text.onnx"), self.runtime)
        self.text_inputs = {i.name for i in self.text.get_inputs()}
        self.preprocess = Preprocessor(json.loads((folder / "preprocessor_config.json").read_text()))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        length = int(self.spec.config.get("max_text_length", 64))
        self.tokenizer.enable_truncation(length)
        pad_token = str(manifest.get("pad_token") or "<pad>")
        pad_id = self.tokenizer.token_to_id(pad_token)
        pad_id = int(manifest.get("pad_token_id", 0) if pad_id is None else pad_id)
        if self.spec.config.get("text_padding") == "max_length":
            self.tokenizer.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token)
        else:
            self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)

    def _images(self, images: list[Image.Image]) -> np.ndarray:
        out = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(images), bs):
            pixels = self.preprocess(images[start: start + bs])
            out.append(self.image.run(None, {"pixel_values": pixels})[0])
        return l2_normalize(np.concatenate(out).astype(np.float32)) if out else np.zeros((0, self.dim), np.float32)

    def _analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]:
        vectors = self._images(images)
        scores = self.zero_shot_scores(vectors, CATEGORY_PROMPTS)
        return vectors, [ImageAnalysis(category_scores=s, text_likelihood=s.get("documents", 0.0)
                                       + s.get("screenshots", 0.0)) for s in scores]

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        prompt = str(self.spec.config.get("prompt", "{}"))
        out = []
        bs = max(1, self.runtime.batch_size)
        for start in range(0, len(texts), bs):
            encs = self.tokenizer.encode_batch([prompt.format(t) for t in texts[start: start + bs]])
            feed = {"input_ids": np.array([e.ids for e in encs], np.int64)}
            if "attention_mask" in self.text_inputs:
                feed["attention_mask"] = np.array([e.attention_mask for e in encs], np.int64)
            out.append(self.text.run(None, feed)[0])
        return l2_normalize(np.concatenate(out).astype(np.float32)) if out else np.zeros((0, self.dim), np.float32)
