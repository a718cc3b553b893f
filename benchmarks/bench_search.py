"""Search benchmark (issue #5) at 100k photos on 2 cores.

The library: photos-dev's 1,086 real photos embedded by the built-in ConSE model, plus synthetic photos whose
vectors are perturbed copies of those real vectors (so they cluster like real ones), to --size in all; 10% of the
photos carry the category "sel10" and 1% "sel1" (random), and dates spread over ten years. Queries are real text
embeddings (the model's text side) of --queries everyday queries.

Figures printed: recall@10 of the search against exact (numpy brute force) search unfiltered, with the 10% and the
1% filter; end-to-end latency p50/p95 (query embedding, not cached + ANN + OCR text + metadata); first search after
a cold start (new process); IVFFlat build time and size for vector and halfvec; searches/s with 4 concurrent clients
while an embedding job runs.

Usage: .venv/bin/python -m benchmarks.bench_search [--size 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from pgvector import HalfVector

from benchmarks.veclib import index_dataset, perturbed
from photoscout.analysis.store import as_array
from photoscout.config import load_settings
from photoscout.database import Database, indexes
from photoscout.jobs import store
from photoscout.registry import lifecycle, local
from photoscout.search.engine import SearchEngine
from photoscout.search.filters import Filters

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
V1 = "conse-effnetl0-minilm@v1.0.0"
QUERIES = [
    "a receipt", "food", "a screenshot", "laptop", "pizza", "a dog", "a cat", "my car", "an airplane", "a boat",
    "a phone", "headphones", "a camera", "a person", "a face", "birthday cake", "a salad", "dessert", "breakfast",
    "a document", "a letter", "a printed page", "settings dialog", "error message", "a chair", "a lamp", "a watch",
    "an umbrella", "scissors", "a cup of coffee", "a piano", "a motorbike", "a helicopter", "a ship", "an elephant",
    "a kangaroo", "a flamingo", "a dolphin", "a hedgehog", "a leopard", "a panda", "a llama", "a rooster",
    "strawberries", "ribs", "a burrito", "bibimbap", "baklava", "apple pie", "beignets", "carpaccio", "tartare",
    "bread pudding", "a beet salad", "a wrench", "a stapler", "a keyboard", "a monitor", "a television", "a bicycle",
]


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values), p))


def vacuum_analyze(db: Database) -> None:
    import psycopg

    assert db.url is not None
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE photos")
        conn.execute("VACUUM ANALYZE photo_embeddings")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--noise", type=float, default=0.35, help="perturbation of real vectors (norm of the noise)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    a = ap.parse_args()
    home = a.workdir / "search-home"
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "config.toml").write_text("embedded_keep_running = true\n")
    settings = load_settings(home)
    settings.ensure_dirs()
    rng = np.random.default_rng(0)
    with Database(settings) as db:
        v1 = index_dataset(db, settings, V1)
        with db.connection() as conn:
            real = [(pid, as_array(v)) for pid, v in conn.execute(
                "SELECT photo_id, coalesce(embedding, embedding_half::vector) FROM photo_embeddings "
                "WHERE model_id = %s "
                "ORDER BY photo_id", (v1.id,))]
        base = np.stack([v for _, v in real])
        n_syn = a.size - len(real)
        t = time.perf_counter()
        syn, _picks = perturbed(base, n_syn, a.noise, rng)
        start = datetime(2015, 1, 1)
        with db.connection() as conn:
            cur = conn.cursor()
            with cur.copy("COPY photos (path, path_raw, folder, status, categories, taken_at) FROM STDIN") as copy:
                for i in range(n_syn):
                    cats = ["sel10"] if rng.random() < 0.10 else []
                    if rng.random() < 0.01:
                        cats.append("sel1")
                    path = f"/bench/synthetic/{i // 1000:03d}/IMG_{i:06d}.jpg"
                    copy.write_row((path, path.encode(), os.path.dirname(path), "ok", cats,
                                    start + timedelta(minutes=int(rng.integers(0, 5_000_000)))))
            for pid, _v in real:  # the real photos get the filter categories too
                extra = ["sel10"] if rng.random() < 0.10 else []
                if rng.random() < 0.01:
                    extra.append("sel1")
                if extra:
                    cur.execute("UPDATE photos SET categories = categories || %s::text[] WHERE id = %s", (extra, pid))
            ids = [r[0] for r in cur.execute("SELECT id FROM photos WHERE path LIKE '/bench/synthetic/%%' ORDER BY id")]
            column = "embedding_half" if v1.config.get("storage") == "halfvec" else "embedding"
            with cur.copy(f"COPY photo_embeddings (photo_id, model_id, embedding_model, embedding_version, {column}) "
                          "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", "text", "text", "halfvec" if column == "embedding_half" else "vector"])
                for pid, vec in zip(ids, syn, strict=True):
                    copy.write_row((pid, v1.id, v1.name, v1.version, HalfVector(vec) if column == "embedding_half"
                                    else vec))
        print(f"library: {a.size} photos ({len(real)} real, {n_syn} derived) loaded in {time.perf_counter() - t:.0f}s")
        vacuum_analyze(db)

        # index build: vector, then a halfvec version of the same vectors
        indexes.drop(db, v1)
        t = time.perf_counter()
        indexes.ensure(db, v1)
        build_v = time.perf_counter() - t
        # the same vectors in the other storage, as a second version, to compare vector and halfvec
        other = "vector" if v1.config.get("storage") == "halfvec" else "halfvec"
        half, _ = local.register_folder(db, settings, ref="conse-effnetl0-minilm@v1.0.1", source_dir=v1.artifact_dir(
            settings), type_="embedding", backend="conse", config={**v1.config, "storage": other})
        with db.connection() as conn:
            target, source = ("embedding", "embedding_half::vector") if other == "vector" else (
                "embedding_half", "embedding::halfvec")
            conn.execute(f"INSERT INTO photo_embeddings (photo_id, model_id, embedding_model, embedding_version, "
                         f"{target}) SELECT photo_id, %s, %s, %s, {source} FROM photo_embeddings "
                         "WHERE model_id = %s", (half.id, half.name, half.version, v1.id))
        vacuum_analyze(db)  # a fresh bulk insert: what autovacuum does soon after a job in real use
        t = time.perf_counter()
        indexes.ensure(db, half)
        build_h = time.perf_counter() - t
        found = indexes.info(db, v1) or {}
        print(f"IVFFlat (lists={found.get('lists')}, probes={found.get('probes')}) over {a.size} x "
              f"{v1.config['dim']}-d: {v1.config.get('storage', 'vector')} (built-in default) {build_v:.1f}s, "
              f"{indexes.size_bytes(db, v1) / 1e6:.0f} MB; {other} {build_h:.1f}s, "
              f"{indexes.size_bytes(db, half) / 1e6:.0f} MB")

        # recall and latency
        engine = SearchEngine(db, settings)
        engine.warm_up()
        with db.connection() as conn:
            rows = conn.execute("SELECT e.photo_id, coalesce(e.embedding, e.embedding_half::vector), p.categories "
                                "FROM photo_embeddings e JOIN photos p "
                                "ON p.id = e.photo_id WHERE e.model_id = %s", (v1.id,)).fetchall()
        all_ids = np.array([r[0] for r in rows])
        matrix = np.stack([as_array(r[1]) for r in rows])
        masks = {"none": np.ones(len(rows), bool), "sel10": np.array(["sel10" in r[2] for r in rows]),
                 "sel1": np.array(["sel1" in r[2] for r in rows])}
        embedder = engine.embedder(v1)
        qvecs = embedder.embed_texts(QUERIES)
        for ref, label in ((V1, v1.config.get("storage", "vector")), (half.ref, other)):
            model = lifecycle.get(db, ref)
            for name, mask in masks.items():
                filters = Filters(categories=() if name == "none" else (name,))
                recalls, lat, exact_used = [], [], 0
                for q, text in zip(qvecs, QUERIES, strict=True):
                    sims = matrix[mask] @ q
                    truth = set(all_ids[mask][np.argsort(-sims)[:10]].tolist())
                    got, exact = engine.nearest(model, q, filters, 10)
                    exact_used += exact
                    recalls.append(len(truth & {pid for pid, _ in got}) / 10)
                    engine._cache.clear()  # end to end, query embedding included (no cache)
                    t = time.perf_counter()
                    engine.search(text, limit=10, filters=filters, model_ref=ref)
                    lat.append((time.perf_counter() - t) * 1000)
                share = {"none": "unfiltered", "sel10": "10% filter", "sel1": "1% filter"}[name]
                print(f"{label:8s} {share:11s}: recall@10 {statistics.mean(recalls):.3f} (min {min(recalls):.1f}); "
                      f"latency p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms"
                      f"{' (exact scan: filter selective)' if exact_used == len(QUERIES) else ''}")

        # throughput with 4 clients while an embedding job runs
        v2, _ = local.register_folder(db, settings, ref="conse-effnetl0-minilm@v1.1.0",
                                      source_dir=v1.artifact_dir(settings), type_="embedding", backend="conse",
                                      config={**v1.config, "top_t": 5})
        job = store.create_job(db, kind="embed", model_ref=v2.ref, unit_size=8)
        env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
        worker = subprocess.Popen([PHOTOSCOUT, "jobs", "run", str(job["id"]), "--json"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        count = [0] * 4
        stop = time.monotonic() + 15

        def client(i: int) -> None:
            k = i
            while time.monotonic() < stop:
                engine.search(QUERIES[k % len(QUERIES)], limit=10)
                count[i] += 1
                k += 4

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        done = store.get_job(db, job["id"])["progress"]
        worker.terminate()
        worker.wait()
        print(f"throughput: {sum(count) / 15:.1f} searches/s with 4 concurrent clients (query cache warm after the "
              f"first {len(QUERIES)} queries) while an embedding job ran ({done['done']} photos embedded meanwhile)")

    # cold start: a new process, embedded server running (db start) and stopped
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "start"], capture_output=True, check=True)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([PHOTOSCOUT, "--home", str(home), "search", "a red car", "--json"], capture_output=True,
                       check=True)
        times.append(time.perf_counter() - t)
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True, check=True)
    t = time.perf_counter()
    subprocess.run([PHOTOSCOUT, "--home", str(home), "search", "a red car", "--json"], capture_output=True,
                   check=True)
    cold = time.perf_counter() - t
    print(f"first search after a cold start (new process: imports, model load, query): median "
          f"{statistics.median(times):.2f}s with the database running; {cold:.2f}s including starting PostgreSQL")
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)


if __name__ == "__main__":
    main()
