"""Exporting a hub image-text model (a ``hf-image-text`` folder) to ONNX for the ``onnx-image-text`` backend: both
towers with torch's exporter, int8 weights on request (ONNX Runtime's dynamic quantization), the tokenizer and
image-processor files copied, and the export checked against torch on real inputs (the cosine of the two outputs
is recorded: 1.000 for fp32, lower for int8, whose vectors are a new version's to be evaluated)."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from photoscout.common.errors import PhotoscoutError
from photoscout.models.hub import features_tensor, set_threads
from photoscout.models.hub.image_text import HubImageTextEmbedder

COPIED = ("config.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json")
CHECK_TEXTS = ["a photo of a dog", "a receipt", "Menschen am Strand", "a screenshot of an error message"]


def export(source: Path, target: Path, *, int8: bool = False, threads: int = 0) -> dict[str, Any]:
    """Write ``target`` (a new folder) from the model folder ``source``; what was written (the ``onnx.json``)."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise PhotoscoutError("exporting to ONNX needs torch and transformers: pip install 'photoscout[hub]'") from exc
    if not (source / "tokenizer.json").is_file():
        raise PhotoscoutError(f"{source} has no tokenizer.json (a fast tokenizer's file), which the ONNX backend "
                              "reads without transformers")
    set_threads(threads)
    described = HubImageTextEmbedder.describe(source)
    if not described.get("dim"):
        raise PhotoscoutError(f"{source}: no config.json that says the model's dimension")
    siglip = str(described.get("architecture", "")).startswith("siglip")
    model = transformers.AutoModel.from_pretrained(str(source)).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(str(source))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source))

    class ImageTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model  # a submodule: its weights are the graph's initializers

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return features_tensor(self.model.get_image_features(pixel_values=pixel_values))

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
            kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
            return features_tensor(self.model.get_text_features(input_ids=input_ids, **kwargs))

    from PIL import Image

    images = [Image.new("RGB", (320, 240), (200, 30, 30)), Image.linear_gradient("L").convert("RGB")]
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    length = int(described.get("max_text_length", 64))
    enc = tokenizer(CHECK_TEXTS, padding="max_length" if siglip else "longest", truncation=True, max_length=length,
                    return_tensors="pt")
    text_args: tuple[Any, ...] = (enc["input_ids"],) if siglip else (enc["input_ids"], enc["attention_mask"])
    text_names = ["input_ids"] if siglip else ["input_ids", "attention_mask"]
    target.mkdir(parents=True, exist_ok=False)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for name, module, args, inputs, axes in (
                ("image", ImageTower(), (pixels,), ["pixel_values"], {"pixel_values": {0: "batch"}}),
                ("text", TextTower(), text_args, text_names,
                 {n: {0: "batch"} if siglip else {0: "batch", 1: "tokens"} for n in text_names})):
            fp32 = Path(tmp) / f"{name}.onnx" if int8 else target / f"{name}.onnx"
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on shapes fixed at export (batch stays dynamic)
                torch.onnx.export(module, args, str(fp32), input_names=inputs, output_names=["features"],
                                  dynamic_axes={**axes, "features": {0: "batch"}}, opset_version=17, dynamo=False)
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(str(fp32), str(target / f"{name}.onnx"), weight_type=QuantType.QInt8)
    for name in COPIED:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    with torch.inference_mode():
        want_image = features_tensor(model.get_image_features(pixel_values=pixels)).numpy()
        want_text = features_tensor(model.get_text_features(
            **({"input_ids": enc["input_ids"]} if siglip else {"input_ids": enc["input_ids"],
                                                                "attention_mask": enc["attention_mask"]}))).numpy()
    import onnxruntime as ort

    got_image = ort.InferenceSession(str(target / "image.onnx")).run(None, {"pixel_values": pixels.numpy()})[0]
    text_feed = {n: a.numpy() for n, a in zip(text_names, text_args, strict=True)}
    got_text = ort.InferenceSession(str(target / "text.onnx")).run(None, text_feed)[0]
    pad = tokenizer.pad_token
    manifest = {
        "image": "image.onnx", "text": "text.onnx", "int8": int8, "source": str(source),
        "architecture": described.get("architecture"), "dim": described["dim"],
        "text_padding": described.get("text_padding"), "max_text_length": length, "prompt": described.get("prompt"),
        "pad_token": pad, "pad_token_id": tokenizer.pad_token_id,
        "agreement": {"image_cosine_min": _min_cosine(want_image, got_image),
                      "text_cosine_min": _min_cosine(want_text, got_text)},
    }
    (target / "onnx.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return round(float((a * b).sum(axis=1).min()), 4)
