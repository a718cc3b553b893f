"""Full-size rehearsal of the design note's upgrade (issue #30): a SigLIP2-base-sized model (random weights, built by
``benchmarks/fullsize.py``, registered through ``models register --from DIR --backend hf-image-text``) over a
library of ``--size`` photos, and search at ``--search-size`` photos; on the embedded server or on a server reached
by URL (``--database-url``).

Parts (``--parts``, comma-separated; all by default):

- ``embed``: the full-size model's photos/s on these cores: torch and ONNX Runtime, fp32 and int8, forward-only (the
  image tower on preprocessed pixels) and, for the product's backend (torch fp32, ``hf-image-text``), the whole job
  path (thumbnail decode, preprocessing, forward, zero-shot categories, rows stored, units completed); the ratio;
  peak memory of each (its own process); projected hours for 30k and 100k photos; the CPU side of a CUDA worker
  (decode + preprocessing + storing, what a GPU cannot speed up) as the bound a CUDA worker would reach here.
- ``upgrade``: a library of ``--size`` photos (photos-dev's real photos plus synthetic rows whose vectors of the
  active version are perturbed real vectors, as ``veclib`` does); the full-size version registered, the job's extra
  disk estimated before it starts; the job runs the model for real on ``--sample`` real photos and writes 768-d
  vectors for the rest through the same job code path (claim, store, complete; the model's forward pass is the only
  thing skipped, its cost is the ``embed`` part's); 4 clients search the active version meanwhile; then the 768-d
  index (build time, size), disk of each version and both side by side, promotion, rollback and prune timed.
- ``search``: ``--search-size`` photos (default 1M) with 384-d and 768-d halfvec vectors (perturbed copies of
  real vectors: the built-in version's 384-d ConSE part, and the same projected to 768-d so the library clusters
  as a real one does); IVFFlat built with the parameters ``database/indexes.py`` chooses for the size (recorded in
  the index's comment); each version searched as the active one (what a user searches: its supporting category
  rankings read the photos' categories, which the synthetic photos copy from the real photo each derives from);
  recall@10 against exact search unfiltered and with 10% and 1% filters; search p50/p95 with
  the query vector given (ANN + metadata, what a cached query costs) and the query embedding's own cost; the first
  search after a cold start.

Every figure is printed, and written as one JSON object with ``--json``.

Usage: .venv/bin/python -m benchmarks.bench_rehearsal [--parts embed,upgrade,search] [--size 100000]
       [--search-size 1000000] [--sample 256] [--database-url URL] [--json] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
FULLSIZE_REF = "siglip2-base-random@v1.0.0"
OLD_REF = "conse-effnetl0-minilm@v4.1.0"  # the built-in default, active before the upgrade
QUERIES = ["a receipt", "food", "a screenshot", "laptop", "pizza", "a dog", "a cat", "my car", "an airplane",
           "a boat", "a phone", "headphones", "a camera", "a person", "birthday cake", "a salad", "dessert",
           "breakfast", "a document", "a letter", "settings dialog", "error message", "a chair", "a watch",
           "a cup of coffee", "a piano", "a motorbike", "an elephant", "a flamingo", "a panda", "strawberries",
           "a burrito", "apple pie", "a keyboard", "a monitor", "a bicycle", "a sunset at the beach", "my dog",
           "a wedding", "a birthday party"]
VARIANTS = ("torch-fp32", "torch-int8", "onnx-fp32", "onnx-int8")


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    return round(float(np.percentile(np.array(values), p)), 1) if values else float("nan")


def model_folder(workdir: Path) -> Path:
    """The full-size model's folder, built once per work folder."""
    from benchmarks import fullsize

    folder = workdir / "siglip2-base-random"
    if not (folder / "model.safetensors").is_file():
        t = time.perf_counter()
        shutil.rmtree(folder, ignore_errors=True)
        fullsize.build(folder)
        log(f"built {folder} in {time.perf_counter() - t:.0f}s")
    return folder


def real_photos(count: int) -> list[Path]:
    from benchmarks.genlib import DATASET

    return sorted(DATASET.rglob("*.jpg"))[:count]


# --- embed ---------------------------------------------------------------------------------------------------------

def _pixels(folder: Path, count: int) -> Any:
    """The first ``count`` real photos, preprocessed by the model's image processor, as one tensor."""
    import transformers
    from PIL import Image

    processor = transformers.AutoImageProcessor.from_pretrained(str(folder))
    images = [Image.open(p).convert("RGB") for p in real_photos(count)]
    return processor(images=images, return_tensors="pt")["pixel_values"]


def exported(folder: Path, workdir: Path, int8: bool) -> Path:
    """The full-size model exported to ONNX by the product's export (``models export-onnx``), once per work folder."""
    from photoscout.models.hub.export import export

    target = workdir / ("export-onnx-int8" if int8 else "export-onnx-fp32")
    if not (target / "onnx.json").is_file():
        shutil.rmtree(target, ignore_errors=True)
        t = time.perf_counter()
        export(folder, target, int8=int8)
        log(f"  exported to {target} in {time.perf_counter() - t:.0f}s")
    return target


def child_forward(variant: str, folder: Path, workdir: Path, count: int, batch: int, threads: int) -> dict[str, Any]:
    """Forward-only photos/s of one variant's image tower on preprocessed pixels (run in a process of its own, so
    its peak memory is its own)."""
    import torch

    torch.set_num_threads(threads)
    pixels = _pixels(folder, count)
    t = time.perf_counter()
    if variant.startswith("torch"):
        from transformers import SiglipVisionModel

        # the image tower alone: what an embedding job runs for each photo
        model = SiglipVisionModel.from_pretrained(str(folder)).eval()
        if variant == "torch-int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

        def run(x: Any) -> Any:
            with torch.inference_mode():
                return model(pixel_values=x).pooler_output
    else:
        from photoscout.models.base import RuntimeOptions
        from photoscout.models.onnx_runtime import session

        onnx = session(exported(folder, workdir, variant == "onnx-int8") / "image.onnx",
                       RuntimeOptions(threads=threads))

        def run(x: Any) -> Any:
            return onnx.run(None, {"pixel_values": x.numpy()})[0]
    load_s = time.perf_counter() - t
    run(pixels[:batch])  # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        for start in range(0, len(pixels), batch):
            run(pixels[start:start + batch])
        times.append(time.perf_counter() - t)
    return {"variant": variant, "photos": len(pixels), "batch": batch, "load_s": round(load_s, 1),
            "forward_per_s": round(len(pixels) / statistics.median(times), 2), "peak_rss_mb": round(peak_rss_mb())}


def child_job(variant: str, folder: Path, workdir: Path, count: int, threads: int) -> dict[str, Any]:
    """The whole job path on ``count`` real photos: a home, ``index`` without models, ``models register`` of the
    folder (``hf-image-text``, or the ONNX export's folder as ``onnx-image-text``), an embedding job run by the
    worker (model loaded first, as a long job amortises it); and the CPU side of the same work (decode,
    preprocessing and storing, no forward pass)."""
    from photoscout.app import Photoscout
    from photoscout.jobs import store
    from photoscout.jobs.worker import Worker
    from photoscout.library import scanner
    from photoscout.models.base import EmbeddingModel
    from photoscout.models.cache import ModelCache
    from photoscout.registry import lifecycle

    home = workdir / "embed-home"
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    photos = workdir / "embed-photos"
    shutil.rmtree(photos, ignore_errors=True)
    photos.mkdir(parents=True)
    for p in real_photos(count):
        shutil.copy2(p, photos / p.name)
    out: dict[str, Any] = {"variant": variant}
    source, backend = (folder, "hf-image-text") if variant == "torch-fp32" else (
        exported(folder, workdir, variant == "onnx-int8"), "onnx-image-text")
    with Photoscout.open(home, threads=threads) as app:
        scanner.scan(app.db, app.settings, [photos])
        app.register(FULLSIZE_REF, source, type_="embedding", backend=backend, config={"storage": "halfvec"})
        reg = lifecycle.get(app.db, FULLSIZE_REF)
        models = ModelCache(app.settings)
        t = time.perf_counter()
        models.get(reg).load()
        out["load_s"] = round(time.perf_counter() - t, 1)
        job = store.create_job(app.db, kind="embed", model_ref=FULLSIZE_REF, unit_size=app.settings.job_unit_size)
        t = time.perf_counter()
        stats = Worker(app.db, app.settings, models=models).run(job["id"])
        wall = time.perf_counter() - t
        out.update({"photos": stats.photos, "failed": stats.failed, "job_s": round(wall, 1),
                    "job_per_s": round(stats.photos / wall, 2), "peak_rss_mb": round(peak_rss_mb())})
        embedder = models.get(reg)
        assert isinstance(embedder, EmbeddingModel)
        times = []
        for text in QUERIES[:12]:  # one query at a time, as a search embeds it (uncached)
            t = time.perf_counter()
            embedder.embed_queries([text])
            times.append((time.perf_counter() - t) * 1000)
        out["query_embed_ms"] = round(statistics.median(times), 1)
        # the CPU side alone: the same units again with the forward pass replaced by a constant (a CUDA worker's
        # bound on this machine: decoding, preprocessing and storing do not move to the GPU)
        model = models.get(reg)
        real_images = model._images  # type: ignore[attr-defined]
        preprocess = getattr(model, "preprocess", None)
        from PIL import Image

        constant = real_images([Image.new("RGB", (8, 8))])

        def no_forward(images: list[Any]) -> np.ndarray:
            if preprocess is not None:
                preprocess(images)
            else:
                model.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
            return np.tile(constant, (len(images), 1))

        model._images = no_forward  # type: ignore[attr-defined]
        job = store.create_job(app.db, kind="embed", model_ref=FULLSIZE_REF, unit_size=app.settings.job_unit_size)
        t = time.perf_counter()
        stats = Worker(app.db, app.settings, models=models).run(job["id"])
        out["cpu_side_per_s"] = round(stats.photos / (time.perf_counter() - t), 1)
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    return out


def _child(args: list[str], timeout: float = 3600) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_rehearsal", *args], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def part_embed(a: argparse.Namespace, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": a.threads, "cores": os.cpu_count(), "variants": {}}
    for variant in a.variants.split(","):
        runs = [_child(["--child", "forward", "--variant", variant, "--workdir", str(a.workdir),
                        "--count", str(a.forward_photos), "--threads", str(a.threads)]) for _ in range(a.repeat)]
        best = dict(runs[-1])  # the first run may have exported the model (its peak memory is the export's)
        best["forward_per_s"] = statistics.median(r["forward_per_s"] for r in runs)
        best["runs"] = [r["forward_per_s"] for r in runs]
        out["variants"][variant] = best
        log(f"  {variant}: forward-only {best['forward_per_s']} photos/s (runs {best['runs']}), peak "
            f"{best['peak_rss_mb']} MB")
    out["jobs"] = {}
    for variant in a.job_variants.split(","):
        runs = [_child(["--child", "job", "--variant", variant, "--workdir", str(a.workdir), "--count",
                        str(a.job_photos), "--threads", str(a.threads)]) for _ in range(a.repeat)]
        job = dict(runs[-1])
        job["job_per_s"] = statistics.median(r["job_per_s"] for r in runs)
        job["cpu_side_per_s"] = statistics.median(r["cpu_side_per_s"] for r in runs)
        job["query_embed_ms"] = statistics.median(r["query_embed_ms"] for r in runs)
        job["runs"] = [r["job_per_s"] for r in runs]
        fwd = out["variants"].get(variant, {}).get("forward_per_s")
        job["job_over_forward"] = round(job["job_per_s"] / fwd, 3) if fwd else None
        job["projected_hours"] = {str(n): round(n / job["job_per_s"] / 3600, 1) for n in (30_000, 100_000)}
        out["jobs"][variant] = job
        log(f"  job path {variant}: {job['job_per_s']} photos/s (runs {job['runs']}); of forward-only "
            f"{job['job_over_forward']}; CPU side {job['cpu_side_per_s']} photos/s; peak {job['peak_rss_mb']} MB; "
            f"a query {job['query_embed_ms']} ms; "
            f"30k photos {job['projected_hours']['30000']} h, 100k {job['projected_hours']['100000']} h")
    cpu_side = max(j["cpu_side_per_s"] for j in out["jobs"].values())
    out["cuda_worker"] = {
        "measured": False,
        "bound_per_s": cpu_side,
        "projected_hours": {str(n): round(n / cpu_side / 3600, 2) for n in (30_000, 100_000)},
        "why": "no GPU was lent to this run: a CUDA worker on this machine is bounded by the CPU side of the job "
               "(decode, preprocessing, storing), measured here with the forward pass taken out"}
    return out


# --- upgrade -------------------------------------------------------------------------------------------------------

def _fresh_home(workdir: Path, name: str, database_url: str | None) -> Path:
    home = workdir / name
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = "embedded_keep_running = true\n"
    if database_url:
        config += f"database_url = {json.dumps(database_url)}\n"
    (home / "config.toml").write_text(config)
    return home


def _clients(engine: Any, seconds: float, clients: int = 4, model_ref: str | None = None) -> dict[str, Any]:
    """``clients`` threads searching for ``seconds``: latency p50/p95 and searches/s (query cache warm after the
    first round, as in use)."""
    lat: list[float] = []
    count = [0] * clients
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        k = i
        while time.monotonic() < stop:
            t = time.perf_counter()
            engine.search(QUERIES[k % len(QUERIES)], limit=20, model_ref=model_ref)
            lat.append((time.perf_counter() - t) * 1000)
            count[i] += 1
            k += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return {"p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
            "searches_per_s": round(sum(count) / seconds, 1), "searches": sum(count)}


def _synthetic_vector(base: np.ndarray, photo_id: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(photo_id)
    v = base[photo_id % len(base)] + rng.normal(size=base.shape[1]).astype(np.float32) * (noise / np.sqrt(
        base.shape[1]))
    return np.asarray(v / np.linalg.norm(v), np.float32)


def projection(dim_in: int, dim_out: int) -> np.ndarray:
    """A fixed random map from the built-in version's vectors to ``dim_out`` dimensions (distances kept, roughly):
    synthetic vectors of a bigger model's width that cluster as the real library does."""
    return np.random.default_rng(768).normal(size=(dim_in, dim_out)).astype(np.float32) / np.sqrt(dim_out)


def child_upgrade_worker(home: Path, job_id: int, sample: int, noise: float) -> dict[str, Any]:
    """The upgrade job's worker: the job code path as ``jobs run`` takes it, with the forward pass of the photos
    outside the sample (synthetic rows: no file) replaced by a 768-d vector derived from the photo's old vector."""
    from PIL import Image

    from photoscout.analysis import runner
    from photoscout.analysis.store import as_array
    from photoscout.app import Photoscout
    from photoscout.database import indexes
    from photoscout.jobs.worker import Worker
    from photoscout.models.cache import ModelCache
    from photoscout.registry import lifecycle

    with Photoscout.open(home) as app:
        reg = lifecycle.get(app.db, FULLSIZE_REF)
        active = lifecycle.active(app.db, "embedding")
        assert active is not None
        with app.db.connection() as conn:
            real = conn.execute("SELECT e.photo_id, coalesce(e.embedding, e.embedding_half::vector) FROM "
                                "photo_embeddings e JOIN photos p ON p.id = e.photo_id WHERE e.model_id = %s AND "
                                "p.path NOT LIKE '/bench/%%' ORDER BY e.photo_id", (active.id,)).fetchall()
        real_ids = [r[0] for r in real]
        in_sample = set(real_ids[:sample])
        old = np.stack([as_array(r[1]) for r in real])
        old = old[:, : int(active.config.get("index_dims") or old.shape[1])]
        base = old @ projection(old.shape[1], int(reg.config["dim"]))
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        real_load = runner.load_images

        def load_images(settings: Any, photos: Any) -> Any:
            images, failures = real_load(settings, [p for p in photos if p.id in in_sample])
            for p in photos:
                if p.id not in in_sample:
                    im = Image.new("RGB", (1, 1))
                    im.info["synthetic"] = p.id
                    images[p.id] = im
            return images, failures

        runner.load_images = load_images  # type: ignore[assignment]
        models = ModelCache(app.settings)
        model = models.get(reg)
        t = time.perf_counter()
        model.load()
        load_s = time.perf_counter() - t
        forward = model._images  # type: ignore[attr-defined]
        ran = {"real": 0, "real_s": 0.0}

        def images_fn(images: list[Any]) -> np.ndarray:
            out = np.zeros((len(images), base.shape[1]), np.float32)
            todo = [i for i, im in enumerate(images) if "synthetic" not in im.info]
            if todo:
                t0 = time.perf_counter()
                out[todo] = forward([images[i] for i in todo])
                ran["real"] += len(todo)
                ran["real_s"] += time.perf_counter() - t0
            for i, im in enumerate(images):
                if "synthetic" in im.info:
                    out[i] = _synthetic_vector(base, int(im.info["synthetic"]), noise)
            return out

        model._images = images_fn  # type: ignore[attr-defined]
        worker = Worker(app.db, app.settings, models=models)
        index_s = {"s": 0.0}
        real_index = worker._index_completed

        def index_completed(job_ids: set[int]) -> None:
            t0 = time.perf_counter()
            real_index(job_ids)
            index_s["s"] = time.perf_counter() - t0

        worker._index_completed = index_completed  # type: ignore[method-assign]
        t = time.perf_counter()
        stats = worker.run(job_id)
        wall = time.perf_counter() - t
        found = indexes.info(app.db, reg) or {}
        return {"photos": stats.photos, "failed": stats.failed, "wall_s": round(wall, 1),
                "written_s": round(wall - index_s["s"] - ran["real_s"], 1),
                "write_per_s": round((stats.photos - ran["real"]) / max(wall - index_s["s"] - ran["real_s"], 1e-9)),
                "model_photos": ran["real"], "model_s": round(ran["real_s"], 1),
                "model_per_s": round(ran["real"] / ran["real_s"], 2) if ran["real_s"] else None,
                "load_s": round(load_s, 1), "index_s": round(index_s["s"], 1),
                "index": {**found, "bytes": indexes.size_bytes(app.db, reg)}, "peak_rss_mb": round(peak_rss_mb())}


def _version_disk(app: Any, ref: str) -> dict[str, int]:
    for v in app.disk()["versions"]:
        if v["model"] == ref:
            return {"database_bytes": v["database_bytes"], "table_bytes": v["table_bytes"],
                    "index_bytes": v["index_bytes"], "artifact_bytes": v["artifact_bytes"],
                    "total_bytes": v["total_bytes"]}
    return {}


def part_upgrade(a: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks.veclib import grow, index_dataset
    from photoscout.app import Photoscout
    from photoscout.registry import lifecycle

    out: dict[str, Any] = {"size": a.size, "sample": a.sample}
    home = _fresh_home(a.workdir, "upgrade-home", a.database_url)
    rng = np.random.default_rng(0)
    with Photoscout.open(home) as app:
        db, settings = app.db, app.settings
        t = time.perf_counter()
        old = index_dataset(db, settings, OLD_REF)
        grow(db, old, a.size, a.noise, rng)
        _vacuum(db)
        from photoscout.database import indexes

        indexes.drop(db, old)
        indexes.ensure(db, old)
        out["library_s"] = round(time.perf_counter() - t)
        out["old"] = {"ref": old.ref, "dim": old.config["dim"], "storage": old.config.get("storage", "vector")}
        log(f"  library: {a.size} photos with {old.ref} in {out['library_s']}s")
        # registered through the real path, as a user does
        subprocess.run([PHOTOSCOUT, "--home", str(home), "models", "register", FULLSIZE_REF, "--from", str(folder),
                        "--type", "embedding", "--backend", "hf-image-text", "--config", '{"storage": "halfvec"}'],
                       check=True, capture_output=True)
        new = lifecycle.get(db, FULLSIZE_REF)
        plan = app.plan_job("embed", FULLSIZE_REF)
        out["estimate"] = {k: plan["estimate"][k] for k in ("bytes", "bytes_per_photo", "bytes_basis", "seconds",
                                                              "photos_per_s", "time_basis")}
        out["disk_before"] = {"old": _version_disk(app, old.ref), "database_bytes": app.disk()["database"]["bytes"]}
        engine = app.engine
        engine.warm_up()
        out["search_idle"] = _clients(engine, a.search_seconds)
        log(f"  search on {old.ref}, idle: {out['search_idle']}")
        job = app.create_job("embed", FULLSIZE_REF)
        worker = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_rehearsal", "--child", "upgrade-worker",
                                   "--home", str(home), "--job", str(job["id"]), "--sample", str(a.sample),
                                   "--noise", str(a.noise)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(5)
        out["search_during_job"] = _clients(engine, a.search_seconds)
        log(f"  search on {old.ref} while the job runs: {out['search_during_job']}")
        stdout, stderr = worker.communicate()
        if worker.returncode != 0:
            raise RuntimeError(f"upgrade worker failed:\n{stderr[-3000:]}")
        out["job"] = json.loads(stdout.strip().splitlines()[-1])
        log(f"  job: {out['job']}")
        _vacuum(db)
        new_disk = _version_disk(app, new.ref)
        out["disk_after"] = {"old": _version_disk(app, old.ref), "new": new_disk,
                             "database_bytes": app.disk()["database"]["bytes"]}
        out["disk_after"]["side_by_side_bytes"] = out["disk_after"]["old"]["total_bytes"] + new_disk["total_bytes"]
        measured = new_disk["database_bytes"]
        out["estimate_error"] = round(out["estimate"]["bytes"] / measured - 1, 3) if measured else None
        log(f"  disk: estimate {out['estimate']['bytes'] / 1e6:.0f} MB, measured {measured / 1e6:.0f} MB "
            f"({out['estimate_error']:+.1%}); old {out['disk_after']['old']['total_bytes'] / 1e6:.0f} MB, new "
            f"{new_disk['total_bytes'] / 1e6:.0f} MB with its files")
        t = time.perf_counter()
        app.promote(FULLSIZE_REF, force=True, reason="rehearsal: random weights, no quality to gate")
        out["promote_s"] = round(time.perf_counter() - t, 2)
        engine.clear_cache()
        vecs = engine.embedder(new)
        vecs.load()  # the model's load is not a query's cost
        times = []
        for text in QUERIES[:8]:
            t = time.perf_counter()
            vecs.embed_queries([text])
            times.append((time.perf_counter() - t) * 1000)
        out["new_query_embed_ms"] = round(statistics.median(times), 1)
        engine.warm_up()
        out["search_new"] = _clients(engine, a.search_seconds, clients=1)
        log(f"  promoted in {out['promote_s']}s; search on {new.ref}: {out['search_new']} (query embedding "
            f"{out['new_query_embed_ms']} ms, uncached)")
        t = time.perf_counter()
        app.rollback("embedding", reason="rehearsal")
        out["rollback_s"] = round(time.perf_counter() - t, 2)
        app.promote(FULLSIZE_REF, force=True, reason="rehearsal: again, to prune the old version")
        t = time.perf_counter()
        pruned = app.prune_model(old.ref, reason="rehearsal: the old version pruned")
        out["prune_s"] = round(time.perf_counter() - t, 1)
        out["pruned_bytes"] = pruned.total_bytes
        out["database_bytes_after_prune"] = app.disk()["database"]["bytes"]
        log(f"  rollback {out['rollback_s']}s; prune of {old.ref}: {pruned.total_bytes / 1e6:.0f} MB in "
            f"{out['prune_s']}s")
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    return out


def _vacuum(db: Any) -> None:
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as conn:
        for table in ("photos", "photo_embeddings", "photo_analysis", "photo_model_runs"):
            conn.execute(f"VACUUM ANALYZE {table}")


# --- search --------------------------------------------------------------------------------------------------------

PROBE_SWEEP = (8, 16, 32, 64, 128)


def _write_vectors(db: Any, version: Any, ids: list[int], vectors: np.ndarray) -> None:
    from pgvector import HalfVector

    with db.connection() as conn, conn.cursor().copy(
            "COPY photo_embeddings (photo_id, model_id, embedding_model, embedding_version, embedding_half) FROM STDIN "
            "WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "int4", "text", "text", "halfvec"])
        for pid, vec in zip(ids, vectors, strict=True):
            copy.write_row((pid, version.id, version.name, version.version, HalfVector(vec)))


def _watch_memory(stop: threading.Event, peak: dict[str, float]) -> None:
    """The largest resident set of one PostgreSQL process while an index is built (the building backend)."""
    import psutil

    while not stop.wait(0.5):
        for proc in psutil.process_iter(["name", "memory_info"]):
            if proc.info["name"] and proc.info["name"].startswith("postgres") and proc.info["memory_info"]:
                peak["mb"] = max(peak["mb"], proc.info["memory_info"].rss / 1e6)


def _build_index(db: Any, version: Any) -> dict[str, Any]:
    from photoscout.database import indexes

    stop, peak = threading.Event(), {"mb": 0.0}
    watcher = threading.Thread(target=_watch_memory, args=(stop, peak), daemon=True)
    watcher.start()
    indexes.drop(db, version)
    t = time.perf_counter()
    indexes.ensure(db, version)
    took = time.perf_counter() - t
    stop.set()
    watcher.join()
    with db.connection() as conn:
        mwm = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
    return {**(indexes.info(db, version) or {}), "build_s": round(took, 1), "bytes": indexes.size_bytes(db, version),
            "peak_backend_rss_mb": round(peak["mb"]), "maintenance_work_mem": mwm}


def _as_active(db: Any, version: Any) -> Any:
    """``version`` made the active one of its type and purpose (the one before it staged), as promotion leaves it
    but without promotion's copying of categories (the library's are already its): a user searches the active
    version, whose supporting category rankings read the photos' own categories."""
    from photoscout.registry import lifecycle

    with db.connection() as conn:
        conn.execute("UPDATE model_registry SET status = 'staging' WHERE type = %s AND purpose = %s "
                     "AND status = 'active'", (version.type, version.purpose))
        conn.execute("UPDATE model_registry SET status = 'active' WHERE id = %s", (version.id,))
    return lifecycle.get(db, version.ref)


def exact_top10(matrix: np.ndarray, ids: np.ndarray, qvecs: np.ndarray,
                masks: dict[str, np.ndarray]) -> dict[str, list[set[int]]]:
    """The exact top 10 of each query under each filter (numpy over the stored values)."""
    return {name: [set(ids[mask][np.argpartition(-(matrix[mask] @ q), 10)[:10]].tolist()) for q in qvecs]
            for name, mask in masks.items()}


def _measure(engine: Any, version: Any, queries: list[str], qvecs: np.ndarray,
             truth: dict[str, list[set[int]]]) -> dict[str, Any]:
    """recall@10 against exact search per filter (and across a sweep of probes), latency of the whole search with
    the query vector given (cached), per filter."""
    from photoscout.search.filters import Filters

    out: dict[str, Any] = {}
    chosen = engine.neighbours.probes(version)
    for name in truth:
        filters = Filters(categories=() if name == "none" else (name,))
        sweep, ann_p95 = {}, {}
        for probes in sorted({*PROBE_SWEEP, chosen}):
            engine.neighbours._probes[version.id] = probes
            got, ann = [], []
            for q in qvecs:
                t = time.perf_counter()
                got.append({pid for pid, _ in engine.nearest(version, q, filters, 10)[0]})
                ann.append((time.perf_counter() - t) * 1000)
            sweep[probes] = round(statistics.mean(len(g & t) / 10 for g, t in zip(got, truth[name], strict=True)), 3)
            ann_p95[probes] = percentile(ann, 95)
        engine.neighbours._probes[version.id] = chosen
        lat: list[float] = []
        stages: dict[str, list[float]] = {}
        for round_ in range(4):  # the first round warms the pages this filter's searches read (not counted)
            for text in queries:
                t = time.perf_counter()
                found = engine.search(text, limit=10, filters=filters, model_ref=version.ref)
                if round_:
                    lat.append((time.perf_counter() - t) * 1000)
                    for stage, ms in found.timings_ms.items():
                        stages.setdefault(stage, []).append(ms)
        out[name] = {"recall@10": sweep[chosen], "recall_by_probes": sweep, "ann_p95_ms_by_probes": ann_p95,
                     "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
                     "stage_p95_ms": {k: percentile(v, 95) for k, v in stages.items()}}
        log(f"    {version.config['dim']}-d {name}: recall@10 {sweep[chosen]} at {chosen} probes "
            f"(sweep {sweep}; ANN p95 {ann_p95}); p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms "
            f"(stages' p95 {out[name]['stage_p95_ms']})")
    return out


def _cold_start(home: Path, ref: str, restart: Any = None) -> dict[str, Any]:
    """A search in a new process (imports, model load, query), the database running; then after the database's
    own restart (the embedded server stopped, or ``restart`` for an external one)."""
    cmd = [PHOTOSCOUT, "--home", str(home), "search", "a red car", "--model", ref, "--json"]
    warm = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        warm.append(time.perf_counter() - t)
    out: dict[str, Any] = {"new_process_s": round(statistics.median(warm), 2)}
    if restart is not None:
        restart()
    else:
        subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True, check=True)
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    out["with_database_start_s"] = round(time.perf_counter() - t, 2)
    return out


def part_search(a: argparse.Namespace, restart: Any = None) -> dict[str, Any]:
    from benchmarks.veclib import grow, index_dataset
    from photoscout.analysis.store import as_array
    from photoscout.app import Photoscout
    from photoscout.registry import local

    out: dict[str, Any] = {"size": a.search_size}
    home = _fresh_home(a.workdir, "search-home", a.database_url)
    rng = np.random.default_rng(1)
    folder = model_folder(a.workdir)
    with Photoscout.open(home) as app:
        db, settings = app.db, app.settings
        t = time.perf_counter()
        v1 = index_dataset(db, settings, "conse-effnetl0-minilm@v1.0.0")
        # the 384-d version: v1's vectors in half precision (what the ConSE part of the default is)
        v384, _ = local.register_folder(db, settings, ref="conse-effnetl0-minilm@v1.0.1",
                                        source_dir=v1.artifact_dir(settings), type_="embedding", backend="conse",
                                        config={**v1.config, "storage": "halfvec"})
        with db.connection() as conn:
            conn.execute("INSERT INTO photo_embeddings (photo_id, model_id, embedding_model, embedding_version, "
                         "embedding_half) SELECT photo_id, %s, %s, %s, coalesce(embedding::halfvec, embedding_half) "
                         "FROM photo_embeddings "
                         "WHERE model_id = %s", (v384.id, v384.name, v384.version, v1.id))
            conn.execute("INSERT INTO photo_analysis (photo_id, model_id, labels, category_scores, text_likelihood, "
                         "cues, categories) SELECT photo_id, %s, labels, category_scores, text_likelihood, cues, "
                         "categories FROM photo_analysis WHERE model_id = %s", (v384.id, v1.id))
        grow(db, v384, a.search_size, a.noise, rng)
        log(f"  {a.search_size} photos x 384-d loaded in {time.perf_counter() - t:.0f}s")
        # the 768-d version: the full-size model's, its vectors the 384-d ones carried to 768 dimensions
        t = time.perf_counter()
        v768, _ = local.register_folder(db, settings, ref=FULLSIZE_REF, source_dir=folder, type_="embedding",
                                        backend="hf-image-text", config={"storage": "halfvec"})
        proj = projection(384, int(v768.config["dim"]))
        with db.connection() as conn:
            rows = conn.execute("SELECT e.photo_id, e.embedding_half::vector, p.categories FROM photo_embeddings e "
                                "JOIN photos p ON p.id = e.photo_id WHERE e.model_id = %s ORDER BY e.photo_id",
                                (v384.id,)).fetchall()
        ids = np.array([r[0] for r in rows])
        m384 = np.stack([as_array(r[1]) for r in rows])
        masks = {"none": np.ones(len(rows), bool), "sel10": np.array(["sel10" in r[2] for r in rows]),
                 "sel1": np.array(["sel1" in r[2] for r in rows])}
        del rows
        m768 = m384 @ proj
        m768 /= np.linalg.norm(m768, axis=1, keepdims=True)
        m768 = m768.astype(np.float16).astype(np.float32)  # as stored (halfvec)
        _write_vectors(db, v768, ids.tolist(), m768)
        log(f"  {a.search_size} x 768-d loaded in {time.perf_counter() - t:.0f}s")
        engine = app.engine
        qtext = engine.embedder(v384).embed_queries(QUERIES)
        qvecs = {384: qtext, 768: qtext @ proj / np.linalg.norm(qtext @ proj, axis=1, keepdims=True)}
        truth = {384: exact_top10(m384, ids, qvecs[384], masks), 768: exact_top10(m768, ids, qvecs[768], masks)}
        del m384, m768  # the benchmark's own memory leaves the page cache to the database
        _vacuum(db)
        out["database_bytes"] = app.disk()["database"]["bytes"]
        for version in (v384, v768):
            dim = int(version.config["dim"])
            log(f"  {dim}-d: building the index")
            index = _build_index(db, version)
            log(f"    index {index}")
            version = _as_active(db, version)
            engine.clear_cache()
            engine.neighbours.clear()
            for text, vec in zip(QUERIES, qvecs[dim], strict=True):  # the query vector given (a cached query)
                engine._cache[(version.id, text)] = vec
            engine.warm_up(version.ref)
            out[f"{dim}d"] = {"index": index, **_measure(engine, version, QUERIES, qvecs[dim], truth[dim]),
                              "disk": _version_disk(app, version.ref)}
        for version, key in ((v768, "768d"), (v384, "384d")):  # a query's own embedding, uncached, one at a time
            model = engine.embedder(version)
            model.load()
            times = []
            for text in QUERIES[:12]:
                t = time.perf_counter()
                model.embed_queries([text])
                times.append((time.perf_counter() - t) * 1000)
            out[key]["query_embed_ms"] = round(statistics.median(times), 1)
    for ref, key in ((v384.ref, "384d"), (v768.ref, "768d")):
        out[key]["cold_start"] = _cold_start(home, ref, restart)
        log(f"    {key} cold start {out[key]['cold_start']}")
    subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    return out


# --- external ------------------------------------------------------------------------------------------------------

BROKER = "redis://127.0.0.1:6379/0"


def two_workers(a: argparse.Namespace, database_url: str) -> dict[str, Any]:
    """Two ``photoscout worker`` processes, each with a home of its own (the database URL, the broker URL, a
    ``path_map`` to where it sees the photos, the model files shared), join one embedding job of photos-dev that a
    third home (the NAS) started; the photos are not where the NAS indexed them on either worker."""
    from benchmarks.genlib import DATASET, install_builtins
    from photoscout.app import Photoscout
    from photoscout.jobs import store
    from photoscout.library import scanner

    base = a.workdir / "workers"
    for home in base.glob("*/"):
        subprocess.run([PHOTOSCOUT, "--home", str(home), "db", "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
    nas = base / "nas" / "photos"
    shutil.copytree(DATASET, nas)
    main = _fresh_home(base, "nas-home", database_url)
    with open(main / "config.toml", "a") as f:
        f.write(f"broker_url = {json.dumps(BROKER)}\n")
    with Photoscout.open(main) as app:
        install_builtins(app.db, app.settings)
        scanner.scan(app.db, app.settings, [nas])
        photos = app.status()["photos"]
    moved = nas.with_name("photos-elsewhere")
    nas.rename(moved)  # only the workers' mounts reach the photos now
    workers, homes = [], []
    for name in ("a", "b"):
        home = base / f"worker-{name}"
        home.mkdir()
        (home / "models").symlink_to(main / "models")  # the model files, shared (a mount, or a copy)
        mount = base / f"mnt-{name}" / "photos"
        mount.parent.mkdir()
        mount.symlink_to(moved)
        (home / "config.toml").write_text(f"database_url = {json.dumps(database_url)}\nbroker_url = "
                                          f"{json.dumps(BROKER)}\npath_map = [{json.dumps(f'{nas}={mount}')}]\n")
        homes.append(home)
        log_file = open(base / f"worker-{name}.log", "w")  # noqa: SIM115 - kept open for the worker's life
        workers.append(subprocess.Popen([PHOTOSCOUT, "--home", str(home), "worker", "--loglevel", "WARNING"],
                                        stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True))
    time.sleep(8)  # the workers connect
    out: dict[str, Any] = {"photos": photos, "path_maps": [f"{nas}={base}/mnt-{n}/photos" for n in "ab"]}
    try:
        with Photoscout.open(main) as app:
            t = time.perf_counter()
            job, _dispatched = app.start_job("embed", OLD_REF, executor="celery", tasks=2)
            job_id = int(job["id"])
            while store.get_job(app.db, job_id)["status"] not in ("completed", "failed", "cancelled"):
                time.sleep(0.5)
            wall = time.perf_counter() - t
            done = store.get_job(app.db, job_id)
            with app.db.connection() as conn:
                owners = conn.execute("SELECT lease_owner, count(*), sum(cardinality(photo_ids)) FROM job_units "
                                      "WHERE job_id = %s GROUP BY lease_owner ORDER BY 1", (job_id,)).fetchall()
        out.update({"status": done["status"], "done": done["progress"]["done"], "failed": done["failed_items"],
                    "wall_s": round(wall, 1), "photos_per_s": round(done["progress"]["done"] / wall, 1),
                    "units_by_worker": {str(o): {"units": int(n), "photos": int(p)} for o, n, p in owners}})
    finally:
        for w in workers:
            os.killpg(w.pid, 15)
            w.wait(30)
    log(f"  two workers: {out}")
    return out


def part_external(a: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks import external_pg

    place = a.workdir / "external-pg"
    url = external_pg.reset(place)
    out: dict[str, Any] = {"server": "PostgreSQL with pgvector on 127.0.0.1:55432, password auth, by URL "
                                     "(benchmarks/external_pg.py)"}
    out["workers"] = two_workers(a, external_pg.reset(place))
    if a.external_size:
        sub = argparse.Namespace(**{**vars(a), "database_url": url, "search_size": a.external_size})
        external_pg.reset(place)
        out["search"] = part_search(sub, restart=lambda: external_pg.restart_cold(place))
    return out


# --- main ----------------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="embed,upgrade,search")
    ap.add_argument("--size", type=int, default=100_000, help="photos in the upgrade's library")
    ap.add_argument("--search-size", type=int, default=1_000_000, help="photos in the search part's library")
    ap.add_argument("--sample", type=int, default=256, help="real photos the full-size model embeds in the upgrade")
    ap.add_argument("--noise", type=float, default=0.35, help="perturbation of real vectors (norm of the noise)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--forward-photos", type=int, default=64)
    ap.add_argument("--job-photos", type=int, default=128)
    ap.add_argument("--job-variants", default="torch-fp32,onnx-int8", help="backends whose whole job path is timed")
    ap.add_argument("--batch", type=int, default=32, help="images per forward pass (photoscout's batch_size)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each short measurement (the median is printed)")
    ap.add_argument("--search-seconds", type=float, default=15.0)
    ap.add_argument("--database-url", help="a PostgreSQL server with pgvector, reached by URL (default: embedded)")
    ap.add_argument("--external-size", type=int, default=1_000_000,
                    help="photos in the search part's library on the external server (0: the workers only)")
    ap.add_argument("--json", action="store_true", help="print one JSON object of every figure on stdout")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-rehearsal")
    # a measurement in a process of its own
    ap.add_argument("--child", choices=["forward", "job", "upgrade-worker"], help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--job", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    if a.child:
        folder = a.workdir / "siglip2-base-random"
        if a.child == "forward":
            result = child_forward(a.variant, folder, a.workdir, a.count, a.batch, a.threads)
        elif a.child == "job":
            result = child_job(a.variant, folder, a.workdir, a.count, a.threads)
        else:
            result = child_upgrade_worker(a.home, a.job, a.sample, a.noise)
        print(json.dumps(result))
        return
    folder = model_folder(a.workdir)
    report: dict[str, Any] = {"started": datetime.now().isoformat(timespec="seconds"), "cores": os.cpu_count(),
                              "model": {"ref": FULLSIZE_REF, "folder_bytes": sum(
                                  p.stat().st_size for p in folder.iterdir())}}
    for part in a.parts.split(","):
        log(f"== {part}")
        t = time.perf_counter()
        if part == "embed":
            report["embed"] = part_embed(a, folder)
        elif part == "upgrade":
            report["upgrade"] = part_upgrade(a, folder)
        elif part == "search":
            report["search"] = part_search(a)
        elif part == "external":
            report["external"] = part_external(a, folder)
        else:
            raise SystemExit(f"unknown part {part!r}")
        log(f"   ({time.perf_counter() - t:.0f}s)")
    if a.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
