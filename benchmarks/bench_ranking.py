"""How the built-in model could rank (issue #14): image-side scoring variants on the photos-dev sample sets,
measured on the image ranking alone (no OCR text, no categories, no fusion), so a direction can be chosen before it
becomes a model version. Everything here is general: the label texts come from the ImageNet/WordNet class list the
project ships, nothing is fitted on the photos.

Variants:

* ``conse-v1``: the ConSE vector of v1 (probability-weighted mean of the top-10 class-name embeddings), cosine;
* ``conse-v2``: the same with the category hierarchy in the label texts (v2);
* ``conse-gloss``: the label texts followed by their WordNet gloss;
* ``conse-v2 top T``: v2 with the top T classes instead of 10;
* ``classes-bhatt@T``: the query's meaning as a distribution over classes, ``w = softmax(cos(q, label) / T)``,
  against the photo's class probabilities ``p``: score = sum sqrt(p * w) (the Bhattacharyya coefficient: both sides
  are unit vectors of sqrt-probabilities, so it is a cosine a vector index can serve);
* ``hybrid``: the mean of the z-scored ``conse-v2`` cosine and ``classes-bhatt`` scores (per query);
* ``concat S``: one unit vector per photo, ``[sqrt(S) conse-v2, sqrt(1 - S) sqrt(p)]``, against the query's
  ``[sqrt(S) q, sqrt(1 - S) sqrt(w)]``: score = S cos + (1 - S) Bhattacharyya, servable by one vector index.

Usage: .venv/bin/python -m benchmarks.bench_ranking [--home HOME]   (HOME: any home with the built-ins installed)
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.genlib import DATASET
from photoscout.common.imaging import load_rgb
from photoscout.config import load_settings
from photoscout.evaluation.metrics import average_precision, ndcg_at
from photoscout.models import imagenet
from photoscout.models.base import RuntimeOptions, l2_normalize
from photoscout.models.conse import EfficientNetRunner
from photoscout.models.minilm import MiniLMTextEncoder

SETS = Path(__file__).resolve().parents[1] / "evalsets" / "photos-dev.toml"


def load_queries() -> list[tuple[str, str, dict[str, object]]]:
    import tomllib

    doc = tomllib.loads(SETS.read_text())
    return [(s["name"], q["text"], q) for s in doc["sets"] for q in s["queries"]]


def glosses() -> list[str]:
    text = (Path(imagenet.__file__).parent / "data" / "imagenet_classes.tsv").read_text(encoding="utf-8")
    return [line.split("\t")[3] for line in text.splitlines() if line.strip() and not line.startswith("#")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    a = ap.parse_args()
    settings = load_settings(a.home.expanduser())
    folder = settings.models_dir / "conse-effnetl0-minilm" / "v1.0.0"
    runtime = RuntimeOptions(threads=settings.threads, batch_size=32)
    cnn = EfficientNetRunner(folder / "efficientnet_lite0.onnx", runtime)
    text = MiniLMTextEncoder(folder / "minilm_l6_v2_int8.onnx", folder / "tokenizer.json", runtime)

    rows = list(csv.DictReader((DATASET / "manifest.csv").open()))
    t = time.perf_counter()
    cached = settings.data_dir / "cache" / "bench-ranking-probs.npy"
    if cached.is_file():
        probs = np.load(cached)
    else:
        probs = np.concatenate([cnn.run([load_rgb(str(DATASET / r["file"]), max_side=640, min_side=256)
                                         for r in rows[i: i + 32]])[1] for i in range(0, len(rows), 32)])
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, probs)
    print(f"class probabilities of {len(rows)} photos in {time.perf_counter() - t:.0f} s")

    names = [", ".join(n[:2]) for n in imagenet.class_names()]
    labels = {"v1": text.encode(imagenet.label_texts()), "v2": text.encode(imagenet.label_texts(hierarchy=True)),
              "gloss": text.encode([f"{n}: {g}" for n, g in zip(names, glosses(), strict=True)])}
    queries = load_queries()
    qv = text.encode([q for _s, q, _d in queries])

    def conse(lab: np.ndarray, top_t: int = 10) -> np.ndarray:
        top = np.argsort(-probs, axis=1)[:, :top_t]
        w = np.take_along_axis(probs, top, axis=1)
        w /= w.sum(axis=1, keepdims=True)
        return l2_normalize(np.einsum("nt,ntd->nd", w, lab[top]))

    def bhatt(lab: np.ndarray, temp: float) -> np.ndarray:
        sims = qv @ lab.T
        w = np.exp((sims - sims.max(axis=1, keepdims=True)) / temp)
        w /= w.sum(axis=1, keepdims=True)
        return np.sqrt(w) @ np.sqrt(np.clip(probs, 0, None)).T  # queries x photos

    scores = {"conse-v1": qv @ conse(labels["v1"]).T, "conse-v2": qv @ conse(labels["v2"]).T,
              "conse-gloss": qv @ conse(labels["gloss"]).T}
    for top_t in (3, 5, 20):
        scores[f"conse-v2 top {top_t}"] = qv @ conse(labels["v2"], top_t).T
    for temp in (0.01, 0.02, 0.05):
        scores[f"classes-bhatt@{temp}"] = bhatt(labels["v2"], temp)
    scores["classes-bhatt-gloss@0.02"] = bhatt(labels["gloss"], 0.02)

    def z(s: np.ndarray) -> np.ndarray:
        return (s - s.mean(axis=1, keepdims=True)) / (s.std(axis=1, keepdims=True) + 1e-9)

    scores["hybrid (z-mean of conse-v2, bhatt@0.02)"] = z(scores["conse-v2"]) + z(scores["classes-bhatt@0.02"])
    for share in (0.3, 0.5, 0.7):  # one vector: [sqrt(share) conse, sqrt(1 - share) sqrt(p)], a plain cosine
        for temp in (0.02, 0.05):
            scores[f"concat {share:.1f} conse-v2 + bhatt@{temp}"] = (
                share * scores["conse-v2"] + (1 - share) * scores[f"classes-bhatt@{temp}"])

    relevant = []
    for _s, _q, spec in queries:
        key, want = ("category", spec["category"]) if "category" in spec else ("label", spec["label"])
        wanted = {want} if isinstance(want, str) else set(want)  # type: ignore[arg-type]
        relevant.append({i for i, r in enumerate(rows) if r[key] in wanted})

    sets = list(dict.fromkeys(s for s, _q, _d in queries))
    print(f"{'variant':42s} {'mAP':>6s} {'nDCG@10':>8s}  " + " ".join(f"{s[:11]:>11s}" for s in sets))
    for name, s in scores.items():
        per: dict[str, list[float]] = defaultdict(list)
        nd = []
        for qi, (set_name, _q, _d) in enumerate(queries):
            ranked = list(np.argsort(-s[qi])[:100])
            per[set_name].append(average_precision(ranked, relevant[qi], 100))
            nd.append(ndcg_at(ranked, relevant[qi], 10))
        overall = float(np.mean([x for v in per.values() for x in v]))
        print(f"{name:42s} {overall:6.3f} {np.mean(nd):8.3f}  " + " ".join(f"{np.mean(per[s]):11.3f}" for s in sets))


if __name__ == "__main__":
    main()
