"""OCR cost and yield of candidate configurations (issue #14), measured side by side in one run on photos-dev's text
photos (scanned receipts, rendered manual pages, application screenshots): seconds per photo, and the words each
configuration finds measured against the current built-in configuration's words (agreement, not accuracy: there is
no ground truth text; a configuration that finds more true words can score under 1).

Configurations:

* ``current``: the built-in rapidocr-ppocrv6@v1.0.0 (PP-OCRv6 small det + rec, the angle classifier, photos read at
  1600 px, detection's shorter side at least 736 px);
* ``no-cls``: without the angle classifier;
* ``det-max960``: detection capped at 960 px on the longer side (no upscaling of small screenshots);
* ``input-1024``: photos read at 1024 px instead of 1600;
* ``adaptive-960``: detection's shorter side raised to 736 px for small images (as now) but the longer side of larger
  ones capped at 960 px (the recogniser still reads its lines from the full-size photo);
* ``v4-det``: PP-OCRv4 mobile detection (from the rapidocr-onnxruntime 1.4.4 wheel, pinned SHA-256) with v6 rec;
* ``rec-int8``: the v6 recogniser with its MatMuls quantized to int8 (ONNX Runtime dynamic quantization);
* ``tesseract-ppocrv6``: the default since issue #14, through the product's own model (Tesseract first, one per
  core, photos read 8 at a time as ``index`` does; PP-OCR where Tesseract is unsure), when the home has it.

Usage: .venv/bin/python -m benchmarks.bench_ocr [--home HOME] [--per-label 8] [--only "NAME;NAME"]
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import logging
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.genlib import DATASET
from photoscout.common.imaging import load_rgb
from photoscout.config import load_settings

V4_WHEEL = ("rapidocr-onnxruntime", "1.4.4", "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf")
WORD = re.compile(r"[A-Za-z0-9]{2,}")


def v4_det(cache: Path) -> Path:
    target = cache / "ch_PP-OCRv4_det_infer.onnx"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    name, version, sha = V4_WHEEL
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                    "--disable-pip-version-check", "--dest", str(cache), f"{name}=={version}"], check=True)
    wheel = next(cache.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
    if hashlib.sha256(wheel.read_bytes()).hexdigest() != sha:
        raise SystemExit(f"{wheel}: SHA-256 is not the pinned one")
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read("rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"))
    return target


def rec_int8(folder: Path, cache: Path) -> Path:
    target = cache / "PP-OCRv6_rec_small_int8.onnx"
    if not target.is_file():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(folder / "PP-OCRv6_rec_small.onnx"), str(target), weight_type=QuantType.QUInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
    return target


def engine(folder: Path, threads: int, **overrides: Any) -> Any:
    from rapidocr import RapidOCR

    params: dict[str, Any] = {
        "Det.model_path": str(folder / "PP-OCRv6_det_small.onnx"),
        "Rec.model_path": str(folder / "PP-OCRv6_rec_small.onnx"),
        "Cls.model_path": str(folder / "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),
        "Global.log_level": "error", "Global.text_score": 0.5,
        "EngineConfig.onnxruntime.intra_op_num_threads": threads, **overrides}
    found = RapidOCR(params=params)
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    ap.add_argument("--per-label", type=int, default=8)
    ap.add_argument("--only", help="semicolon-separated configurations to run besides 'current'")
    a = ap.parse_args()
    from rapidocr.utils.typings import ModelType, OCRVersion

    settings = load_settings(a.home.expanduser())
    folder = settings.models_dir / "rapidocr-ppocrv6" / "v1.0.0"
    if not folder.is_dir():
        raise SystemExit(f"no {folder}: install the built-in models into that home first")
    cache = settings.data_dir / "cache" / "bench-ocr"
    threads = settings.threads or (os.cpu_count() or 1)
    rows = list(csv.DictReader((DATASET / "manifest.csv").open()))
    by_label: dict[str, list[Path]] = collections.defaultdict(list)
    for r in rows:
        if r["label"] in ("receipt", "document_page", "screenshot"):
            by_label[r["label"]].append(DATASET / r["file"])
    files = [f for v in by_label.values() for f in v[:: max(1, len(v) // a.per_label)][: a.per_label]]
    label = {DATASET / r["file"]: r["label"] for r in rows}
    v4 = {"Det.model_path": str(v4_det(cache)), "Det.ocr_version": OCRVersion.PPOCRV4,
          "Det.model_type": ModelType.MOBILE}
    configs: dict[str, tuple[int, dict[str, Any]]] = {
        "current": (1600, {}),
        "no-cls": (1600, {"Global.use_cls": False}),
        "det-max960": (1600, {"Det.limit_type": "max", "Det.limit_side_len": 960}),
        "input-1024": (1024, {}),
        "v4-det": (1600, v4),
        "v4-det, no-cls": (1600, {**v4, "Global.use_cls": False}),
        "rec-int8": (1600, {"Rec.model_path": str(rec_int8(folder, cache))}),
        "adaptive-960": (1600, {"adaptive": 960}),
        "adaptive-960, no-cls": (1600, {"adaptive": 960, "Global.use_cls": False}),
        "adaptive-960, v4-det, no-cls": (1600, {**v4, "adaptive": 960, "Global.use_cls": False}),
        "no-cls, rec-int8": (1600, {"Global.use_cls": False, "Rec.model_path": str(rec_int8(folder, cache))}),
        "adaptive-1280, no-cls, rec-int8": (1600, {"adaptive": 1280, "Global.use_cls": False,
                                                   "Rec.model_path": str(rec_int8(folder, cache))}),
    }
    if a.only:
        configs = {k: v for k, v in configs.items() if k == "current" or k in a.only.split(";")}
    print(f"{len(files)} photos ({', '.join(f'{k} {min(len(v), a.per_label)}' for k, v in by_label.items())}), "
          f"{threads} threads")
    texts: dict[str, dict[Path, str]] = {}
    seconds: dict[str, float] = {}
    for name, (side, overrides) in configs.items():
        overrides = dict(overrides)
        cap = overrides.pop("adaptive", None)
        ocr = engine(folder, threads, **overrides)
        ocr(np.zeros((64, 64, 3), np.uint8))  # sessions warm
        out = {}
        t = time.perf_counter()
        for f in files:
            image = np.asarray(load_rgb(str(f), max_side=side, min_side=side))[:, :, ::-1]
            if cap:  # per image: upscale small ones for detection, cap large ones
                small = min(image.shape[:2]) < 736
                ocr.text_det.limit_type, ocr.text_det.limit_side_len = ("min", 736) if small else ("max", cap)
            result = ocr(image)
            out[f] = " ".join(result.txts or ())
        seconds[name] = (time.perf_counter() - t) / len(files)
        texts[name] = out
    installed = [v for v in ("v1.1.0", "v1.0.0") if (settings.models_dir / "tesseract-ppocrv6" / v).is_dir()]
    tesseract = installed[0] if installed else None
    if tesseract and (not a.only or "tesseract-ppocrv6" in a.only.split(";")):
        from photoscout.app import Photoscout
        from photoscout.registry import lifecycle

        with Photoscout.open(a.home.expanduser()) as ps:
            # pages, receipts and screenshots are no scene photos: v1.1.0 reads them as v1.0.0 does
            model = ps.models.get(lifecycle.get(ps.db, f"tesseract-ppocrv6@{tesseract}"))
            from PIL import Image

            model.read([Image.new("RGB", (64, 64))])  # type: ignore[attr-defined]  # loads it
            images = [load_rgb(str(f), max_side=1600, min_side=1600) for f in files]
            t = time.perf_counter()
            read = [r for i in range(0, len(images), 8) for r in model.read(images[i:i + 8])]  # type: ignore
            seconds["tesseract-ppocrv6"] = (time.perf_counter() - t) / len(files)
            texts["tesseract-ppocrv6"] = {f: r.text for f, r in zip(files, read, strict=True)}
            configs["tesseract-ppocrv6"] = (1600, {})
            print(f"tesseract-ppocrv6: {model.read_by}")  # type: ignore[attr-defined]
    ref = texts["current"]
    labels = list(by_label)
    print(f"{'configuration':16s} {'s/photo':>8s} {'vs current':>10s}  " +
          "  ".join(f"{lb[:13]:>13s} words/agree" for lb in labels))
    for name in configs:
        cells = []
        for lb in labels:
            agree, words = [], []
            for f in (f for f in files if label[f] == lb):
                want = collections.Counter(w.lower() for w in WORD.findall(ref[f]))
                got = collections.Counter(w.lower() for w in WORD.findall(texts[name][f]))
                if want:
                    agree.append(sum((want & got).values()) / sum(want.values()))
                words.append(sum(got.values()))
            cells.append(f"{np.mean(words):13.0f} {np.mean(agree) if agree else float('nan'):11.3f}")
        print(f"{name:16s} {seconds[name]:8.2f} {seconds[name] / seconds['current']:10.2f}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
