"""Backend name -> model class. Imports are lazy (hub backends pull in torch and transformers only when used);
an unknown backend, or one that does not fit the model type, is an error that names what exists."""

from __future__ import annotations

import importlib

from photoscout.common.errors import PhotoscoutError
from photoscout.models.base import Model, ModelSpec, RuntimeOptions

# backend -> (model type, module, class)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "conse": ("embedding", "photoscout.models.conse", "ConseEmbedder"),
    "rapidocr": ("ocr", "photoscout.models.rapid_ocr", "RapidOcr"),
    "tesseract": ("ocr", "photoscout.models.tesseract_ocr", "TesseractOcr"),
    "mtcnn": ("detector", "photoscout.models.mtcnn_faces", "MtcnnFaces"),
    "effnet-prototypes": ("few_shot", "photoscout.models.prototypes", "EfficientNetPrototypes"),
    "random-vectors": ("embedding", "photoscout.models.random_vectors", "RandomVectors"),
    "hf-image-text": ("embedding", "photoscout.models.hub.image_text", "HubImageTextEmbedder"),
    "onnx-image-text": ("embedding", "photoscout.models.onnx_image_text", "OnnxImageTextEmbedder"),
    "hf-owlvit": ("detector", "photoscout.models.hub.owlvit", "OwlVitDetector"),
    "hf-blip": ("captioning", "photoscout.models.hub.blip", "BlipCaptioner"),
}


def backend_type(backend: str) -> str:
    if backend not in BACKENDS:
        raise PhotoscoutError(f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[backend][0]


def create(spec: ModelSpec, runtime: RuntimeOptions) -> Model:
    model_type = backend_type(spec.backend)
    if model_type != spec.type:
        raise PhotoscoutError(f"backend {spec.backend!r} makes {model_type} models, not {spec.type}")
    _type, module, cls_name = BACKENDS[spec.backend]
    cls = getattr(importlib.import_module(module), cls_name)
    model: Model = cls(spec, runtime)
    return model
