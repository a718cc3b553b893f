"""The warm server (issue #13) at 100k photos on 2 cores.

The library: photos-dev's 1,086 real photos scanned and embedded by the built-in ConSE model, plus derived photos
(perturbed copies of the real vectors, each with its source's thumbnail) to --size in all. Then ``photoscout serve``
runs in its own process and the figures are taken over HTTP:

* serve start to ready (models loaded), and the first search after it;
* search API latency, one client: distinct text queries (the query embedding computed) and repeated ones (cached);
* 8 concurrent clients for --seconds: p50/p95 and errors;
* thumbnail requests per second (4 clients, warm cache);
* ``photoscout search`` wall time from the terminal, with the server running and with --no-server;
* a search page (HTML with 60 results; the thumbnails in view) in headless Chromium: time until the grid is
  shown.

Usage: .venv/bin/python -m benchmarks.bench_serve [--size 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
from pgvector import HalfVector

from benchmarks.veclib import index_dataset, perturbed
from photoscout.analysis.store import as_array
from photoscout.config import load_settings
from photoscout.database import Database, indexes

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
V1 = "conse-effnetl0-minilm@v1.0.0"  # what #13 was measured with (384-d); --model for another version
QUERIES = ["food", "pizza", "a receipt", "a document", "a screenshot", "a laptop computer", "headphones", "a car",
           "a dog", "a cat", "a person", "a motorcycle", "a watch", "a camera", "an airplane", "a chair",
           "strawberries", "dessert", "a salad", "a meat dish", "electronics", "animals", "vehicles", "people",
           "a bird", "a boat", "a bicycle", "a phone", "a keyboard", "flowers", "a beach", "a mountain",
           "a train", "a page of printed text"]


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else float("nan")


def build(home: Path, size: int, model: str = V1) -> None:
    (home / "config.toml").write_text("embedded_keep_running = true\n")
    settings = load_settings(home)
    settings.ensure_dirs()
    rng = np.random.default_rng(0)
    with Database(settings) as db:
        v1 = index_dataset(db, settings, model)
        with db.connection() as conn:
            real = conn.execute(
                "SELECT e.photo_id, coalesce(e.embedding, e.embedding_half::vector), p.thumbnail, p.content_hash, "
                "p.categories FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id WHERE e.model_id = %s "
                "ORDER BY e.photo_id", (v1.id,)).fetchall()
        base = np.stack([as_array(r[1]) for r in real])
        n_syn = size - len(real)
        syn, picks = perturbed(base, n_syn, 0.35, rng)
        with db.connection() as conn:
            cur = conn.cursor()
            with cur.copy("COPY photos (path, path_raw, folder, status, categories, thumbnail, content_hash) "
                          "FROM STDIN") as copy:
                for i, src in enumerate(picks):
                    path = f"/bench/derived/{i // 1000:03d}/IMG_{i:06d}.jpg"
                    r = real[int(src)]
                    copy.write_row((path, path.encode(), os.path.dirname(path), "ok", r[4], r[2], r[3]))
            ids = [r[0] for r in cur.execute("SELECT id FROM photos WHERE path LIKE '/bench/derived/%%' ORDER BY id")]
            half = v1.config.get("storage") == "halfvec"
            column = "embedding_half" if half else "embedding"
            with cur.copy(f"COPY photo_embeddings (photo_id, model_id, embedding_model, embedding_version, {column}) "
                          "FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", "text", "text", "halfvec" if half else "vector"])
                for pid, vec in zip(ids, syn, strict=True):
                    copy.write_row((pid, v1.id, v1.name, v1.version, HalfVector(vec) if half else vec))
        with db.connection() as conn:
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE photos")
            conn.execute("VACUUM ANALYZE photo_embeddings")
        indexes.drop(db, v1)
        indexes.ensure(db, v1)


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, params: dict[str, object] | None = None) -> tuple[int, bytes, float]:
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        t = time.perf_counter()
        self.conn.request("GET", url)
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, body, (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench")
    ap.add_argument("--reuse", action="store_true", help="use the library a previous run built")
    ap.add_argument("--model", default=V1, help="the embedding version of the library (default: %(default)s)")
    a = ap.parse_args()
    home = a.workdir / "serve-home"
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
    if not a.reuse:
        subprocess.run([PHOTOSCOUT, "db", "stop"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        t = time.perf_counter()
        build(home, a.size, a.model)
        print(f"library: {a.size:,} photos built in {time.perf_counter() - t:.0f} s")
    subprocess.run([PHOTOSCOUT, "db", "start"], env=env, capture_output=True, check=True)

    port = 18765
    t0 = time.perf_counter()
    server = subprocess.Popen([PHOTOSCOUT, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        ready = home / "data" / "server.json"
        while not ready.exists():
            if server.poll() is not None:
                raise SystemExit("photoscout serve exited")
            time.sleep(0.02)
        started = time.perf_counter() - t0
        c = Client(port)
        status, _body, first = c.get("/api/v1/search", {"q": "a birthday cake", "limit": 40})
        assert status == 200
        print(f"serve start to ready (models loaded): {started:.2f} s; first search after it: {first:.0f} ms")

        distinct = [c.get("/api/v1/search", {"q": q, "limit": 40})[2] for q in QUERIES]
        repeated = [c.get("/api/v1/search", {"q": q, "limit": 40})[2] for _ in range(3) for q in QUERIES]
        print(f"search API, 1 client, {len(QUERIES)} distinct queries (embedding computed): "
              f"p50 {pct(distinct, 50):.1f} ms, p95 {pct(distinct, 95):.1f} ms")
        print(f"search API, 1 client, repeated queries (embedding cached): p50 {pct(repeated, 50):.1f} ms, "
              f"p95 {pct(repeated, 95):.1f} ms")

        def load(clients: int, seconds: float, request: object) -> tuple[list[float], int, int]:
            lat: list[float] = []
            errors = [0]
            lock = threading.Lock()
            stop = time.monotonic() + seconds

            def run(i: int) -> None:
                cl = Client(port)
                rnd = random.Random(i)
                while time.monotonic() < stop:
                    try:
                        st, _b, ms = request(cl, rnd)  # type: ignore[operator]
                        ok = st in (200, 304)
                    except OSError:
                        ok, ms = False, 0.0
                        cl = Client(port)
                    with lock:
                        if ok:
                            lat.append(ms)
                        else:
                            errors[0] += 1

            threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            return lat, errors[0], len(lat)

        words = ["red", "old", "small", "my", "a", "the", "big", "new", "blue", "two"]
        lat, errors, n = load(8, a.seconds, lambda cl, rnd: cl.get("/api/v1/search", {
            "q": f"{rnd.choice(words)} {rnd.choice(QUERIES)}", "limit": 40}))
        print(f"search API, 8 concurrent clients, {a.seconds:.0f} s: {n / a.seconds:.1f} searches/s, "
              f"p50 {pct(lat, 50):.0f} ms, p95 {pct(lat, 95):.0f} ms, errors {errors}")

        c = Client(port)  # the first one's keep-alive has timed out meanwhile
        with_thumbs = json.loads(c.get("/api/v1/search", {"q": "food", "limit": 500})[1])["results"]
        ids = [h["photo_id"] for h in with_thumbs if h["thumbnail"]]
        lat, errors, n = load(4, 5, lambda cl, rnd: cl.get(f"/api/v1/photos/{rnd.choice(ids)}/thumbnail"))
        bound, _e, bn = load(4, 5, lambda cl, rnd: cl.get("/static/app.css"))
        print(f"thumbnails, 4 clients, warm cache: {n / 5:.0f} requests/s (p50 {pct(lat, 50):.1f} ms), "
              f"errors {errors}; bound in the same run, a static file with no database lookup: {bn / 5:.0f}/s "
              f"(ratio {n / max(bn, 1):.2f})")

        def wall(args: list[str], runs: int = 5) -> float:
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                subprocess.run([PHOTOSCOUT, *args], env=env, capture_output=True, check=True)
                times.append(time.perf_counter() - t)
            return statistics.median(times)

        print(f"'photoscout search food' wall: with the server {wall(['search', 'food', '--json']):.2f} s; "
              f"without (--no-server) {wall(['search', 'food', '--json', '--no-server']):.2f} s; "
              f"'photoscout --version' {wall(['--version']):.2f} s (medians of 5)")

        chromium = shutil.which("chromium")
        if chromium:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                times = []
                for q in ("food", "a receipt", "a dog", "a screenshot", "a car"):
                    page = browser.new_page(viewport={"width": 1440, "height": 900})
                    t = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{port}/?q={urllib.parse.quote(q)}&n=60")
                    page.wait_for_function("() => { const i = document.querySelectorAll('#grid .card img'); "
                                           "return i.length >= 60 && Array.from(i).filter(x => "
                                           "x.getBoundingClientRect().top < innerHeight).every("
                                           "x => x.complete && x.naturalWidth > 0); }", timeout=60_000)
                    times.append((time.perf_counter() - t) * 1000)
                    page.close()
                browser.close()
            print(f"search page (HTML + 60 thumbnails) in Chromium, time to the grid shown: median "
                  f"{statistics.median(times):.0f} ms (runs: {', '.join(f'{x:.0f}' for x in times)})")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
