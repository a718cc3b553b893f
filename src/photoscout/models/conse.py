"""ConSE text->image embedding (Norouzi et al., 2014): the built-in offline default.

Image side: EfficientNet-Lite0 gives ImageNet class probabilities; the image vector is the probability-weighted
mean of the MiniLM text embeddings of its top-T class names. Text side: the query embedded by the same MiniLM.
Both land in MiniLM's 384-d space, so cosine similarity ranks photos for a text query. The same forward pass gives
category scores (ImageNet label hierarchy) and how likely the photo shows text.

With ``class_space`` in the config (v3), each vector also carries a class part: the photo's square-rooted class
probabilities ``sqrt(p)``, and for a text the square-rooted distribution over classes its meaning picks,
``sqrt(softmax(cos(text, class label) / temperature))``. Both parts are unit vectors, joined with weights
``sqrt(share)`` and ``sqrt(1 - share)``, so one cosine is ``share * ConSE cosine + (1 - share) * Bhattacharyya
coefficient`` of the two class distributions: a query ranks photos by the probability of the classes it means as
well as by the mean label vector (``benchmarks/bench_ranking.py``).

With ``entropy_scale`` (v3.1), a query's class part is weighed by how clearly its meaning picks classes: the class
weight ``1 - share`` is multiplied by ``exp(-H / entropy_scale)``, ``H`` the entropy (nats) of the query's class
distribution. "a panda" (one class, H 0.4) keeps most of it; "dessert" (ice cream, strawberry, chocolate sauce...:
H 1.6) or "a receipt" (envelope, purse...: H 1.0) fall back on the mean label vector, which ranks dishes and papers
that ImageNet has no class for better. Only the query side changes: the photos' vectors are those of v3.0. v3.2 is
v3.1 with ``entropy_scale`` 0.25 (``registry/builtin.py`` says how it was chosen).

With ``multilingual`` (v4), a query is also read by the multilingual Universal Sentence Encoder (``muse.py``), one
space for sixteen languages, and carried into MiniLM's space by a linear map fitted on English phrases; where MiniLM
understands the query as well (English), its own embedding is kept (``query_space``). "Erdbeeren" then picks the
strawberry class as "strawberries" does. The photos' vectors are v3's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from photoscout.models import imagenet
from photoscout.models.base import EmbeddingModel, ImageAnalysis, l2_normalize
from photoscout.models.minilm import MiniLMTextEncoder
from photoscout.models.muse import MultilingualTextEncoder
from photoscout.models.onnx_runtime import session

INPUT_SIZE = 224
RESIZE = 256


def preprocess(images: list[Image.Image]) -> np.ndarray:
    """Centre-crop 224/256 of the shorter side and resize it to 224 (the same pixels as resizing the shorter side to
    256 then cropping 224, with fewer to compute); scale to [-1, 1] (TF EfficientNet-Lite); NCHW."""
    batch = np.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, im in enumerate(images):
        w, h = im.size
        side = min(w, h) * INPUT_SIZE / RESIZE
        left, top = (w - side) / 2, (h - side) / 2
        crop = im.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
        arr = np.asarray(crop, dtype=np.float32)
        batch[i] = ((arr - 127.0) / 128.0).transpose(2, 0, 1)
    return batch


class EfficientNetRunner:
    """EfficientNet-Lite0 forward pass, shared by the ConSE embedder and the few-shot featurizer."""

    def __init__(self, model_path: Any, runtime: Any) -> None:
        self.session = session(model_path, runtime)
        self.batch_size = max(1, runtime.batch_size)

    def run(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = [], []
        for start in range(0, len(images), self.batch_size):
            pixels = preprocess(images[start: start + self.batch_size])
            f, p = self.session.run(["features", "probs"], {"pixels": pixels})
            feats.append(f)
            probs.append(p)
        if not feats:
            return np.zeros((0, 1280), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(feats), np.concatenate(probs)


class ConseEmbedder(EmbeddingModel):
    def _load(self) -> None:
        self.cnn = EfficientNetRunner(self.artifact("image_model"), self.runtime)
        self.text = MiniLMTextEncoder(self.artifact("text_model"), self.artifact("tokenizer"), self.runtime)
        multilingual = self.spec.config.get("multilingual")
        self._muse: MultilingualTextEncoder | None = None
        self.multilingual = bool(multilingual)
        if multilingual:  # v4: a query in any of sixteen languages, carried into MiniLM's space
            self.muse_map = np.load(self.artifact("muse_map")).astype(np.float32)
            self.agree = (float(multilingual["agree_low"]), float(multilingual["agree_high"]))
            self.reading = multilingual.get("reading")
            self._readings: dict[str, str | None] = {}  # the latest queries' readings (insertion order)
            if self.reading:  # v4.1: English words the query is read as (both encoders' vectors of each)
                with np.load(self.artifact("muse_readings")) as found:
                    self.phrases = [str(p) for p in found["phrases"]]
                    self.phrases_muse = found["muse"].astype(np.float32)
                    self.phrases_minilm = found["minilm"].astype(np.float32)
        self.label_vectors = np.load(self.artifact("label_embeddings")).astype(np.float32)
        self.top_t = int(self.spec.config.get("top_t", 10))
        self.names = [n[0] for n in imagenet.class_names()]
        self.categories = imagenet.category_classes()
        self.textual = imagenet.textual_classes()
        space = self.spec.config.get("class_space")
        self.share = float(space["share"]) if space else None
        self.temperature = float(space["temperature"]) if space else 1.0
        self.entropy_scale = float(space.get("entropy_scale", 0.0)) if space else 0.0

    @property
    def muse(self) -> MultilingualTextEncoder | None:
        """The multilingual encoder (v4), loaded on the first query: embedding jobs never need it."""
        if self.multilingual and self._muse is None:
            self._muse = MultilingualTextEncoder(self.artifact("muse_weights"), self.artifact("muse_vocabulary"),
                                                 self.runtime)
        return self._muse

    def _analyze_images(self, images: list[Image.Image]) -> tuple[np.ndarray, list[ImageAnalysis]]:
        _features, probs = self.cnn.run(images)
        return self.from_probs(probs)

    def from_probs(self, probs: np.ndarray) -> tuple[np.ndarray, list[ImageAnalysis]]:
        top = np.argsort(-probs, axis=1)[:, : self.top_t]
        weights = np.take_along_axis(probs, top, axis=1)
        weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        vectors = l2_normalize(np.einsum("nt,ntd->nd", weights, self.label_vectors[top]))
        if self.share is not None:
            classes = l2_normalize(np.sqrt(np.clip(probs, 0.0, None)))
            vectors = self._join(vectors, classes)
        analyses = []
        for p, t in zip(probs, top, strict=True):
            analyses.append(ImageAnalysis(
                labels=[(self.names[i], round(float(p[i]), 4)) for i in t[:5]],
                category_scores={c: float(p[idx].sum()) for c, idx in self.categories.items()},
                text_likelihood=float(p[self.textual].sum()),
            ))
        return vectors, analyses

    def query_space(self, texts: list[str]) -> np.ndarray:
        """Texts in MiniLM's space: MiniLM's embedding, or (v4) the multilingual encoder's carried over by the map
        where MiniLM does not understand the text as well; the two agree (cosine >= ``agree_high``) on English,
        seldom on other languages (median 0.3 on photos-dev's translated queries, 0.77 on the English ones), and are
        blended between ``agree_low`` and ``agree_high``. With ``reading`` (v4.1) the carried vector is blended
        with MiniLM's own vectors of the English words nearest the query in the multilingual space ("Erdbeeren":
        strawberry)."""
        vectors = self.text.encode(texts)
        if not self.multilingual or not len(texts):
            return vectors
        own, muse, mapped = self._agreement(texts, vectors)
        if self.reading:
            top, weights = self._nearest_phrases(muse)
            read = l2_normalize(np.einsum("nk,nkd->nd", weights, self.phrases_minilm[top]))
            share = float(self.reading["share"])
            mapped = l2_normalize(share * read + (1.0 - share) * mapped)
            self._remember_readings(texts, own, muse, top)  # the search asks for them next (no second encoding)
        return l2_normalize(own * vectors + (1.0 - own) * mapped).astype(np.float32)

    def _remember_readings(self, texts: list[str], own: np.ndarray, muse: np.ndarray, top: np.ndarray) -> None:
        assert self.reading is not None
        best = (muse * self.phrases_muse[top[:, 0]]).sum(axis=1)
        for text, o, t, b in zip(texts, own, top, best, strict=True):
            self._readings[text] = self.phrases[t[0]] if o[0] < 1.0 and b >= float(self.reading["min"]) else None
        while len(self._readings) > 1000:
            self._readings.pop(next(iter(self._readings)))

    def _agreement(self, texts: list[str], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """How far MiniLM's own reading is kept (1: English), the multilingual vectors, and them carried over."""
        encoder = self.muse
        assert encoder is not None
        muse = encoder.encode(texts)
        mapped = l2_normalize(muse @ self.muse_map)
        agreement = (vectors * mapped).sum(axis=1, keepdims=True)
        low, high = self.agree
        return np.clip((agreement - low) / (high - low), 0.0, 1.0), muse, mapped

    def _nearest_phrases(self, muse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` English phrases nearest each text in the multilingual space and their softmax weights."""
        assert self.reading is not None
        sims = muse @ self.phrases_muse.T
        top = np.argsort(-sims, axis=1)[:, : int(self.reading["k"])]
        scaled = np.take_along_axis(sims, top, axis=1) / float(self.reading["temperature"])
        weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        return top, weights / weights.sum(axis=1, keepdims=True)

    def _read_queries(self, texts: list[str]) -> list[str | None]:
        """The English words nearest a query that is not English (MiniLM and the multilingual encoder disagree)
        when they are near enough (cosine >= ``reading.min``)."""
        if not self.multilingual or not self.reading or not texts:
            return [None] * len(texts)
        unread = [t for t in dict.fromkeys(texts) if t not in self._readings]
        if unread:
            own, muse, _mapped = self._agreement(unread, self.text.encode(unread))
            self._remember_readings(unread, own, muse, self._nearest_phrases(muse)[0])
        return [self._readings.get(t) for t in texts]

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._with_classes(self.query_space(texts))

    def _embed_texts(self, texts: list[str]) -> np.ndarray:  # OCR text, labels: MiniLM's own embedding
        return self._with_classes(self.text.encode(texts))

    def _with_classes(self, vectors: np.ndarray) -> np.ndarray:
        if self.share is None:
            return vectors
        sims = (vectors @ self.label_vectors.T) / self.temperature
        w = np.exp(sims - sims.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        part = np.sqrt(w)
        if self.entropy_scale > 0:  # an ambiguous mapping to classes counts less (see the module's docstring)
            entropy = -(w * np.log(np.clip(w, 1e-12, None))).sum(axis=1, keepdims=True)
            part = part * np.exp(-entropy / self.entropy_scale)
        return self._join(vectors, part)

    def _join(self, mean_vectors: np.ndarray, class_part: np.ndarray) -> np.ndarray:
        assert self.share is not None
        return l2_normalize(np.hstack([np.sqrt(self.share) * mean_vectors,
                                       np.sqrt(1.0 - self.share) * class_part]).astype(np.float32))
