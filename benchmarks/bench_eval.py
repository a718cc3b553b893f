"""Evaluation and promotion benchmark (issue #6) on all of photos-dev.

Builds (or reuses, with --workdir) a home with the built-in models and photos-dev indexed, installs the candidate
built-ins (ConSE v2 with the label hierarchy, and random vectors), runs their embedding jobs, then:

- evaluates v2 and the active v1 on evalsets/photos-dev.toml (interleaved latency) and prints the table per set;
- asks the promotion gate about v2, and about the random version (which sets regress);
- promotes v2 and rolls back twice while 2 threads search continuously: the switch time (median), the searches
  answered during the switches, errors, and their p95 latency;
- the time one evaluation takes (both versions, 35 queries, 5 latency rounds, resource measurement).

Usage: .venv/bin/python -m benchmarks.bench_eval [--workdir DIR]   (the first run indexes photos-dev: ~10-15 min)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.genlib import DATASET, install_builtins
from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.evaluation import metrics, report, runner, sets
from photoscout.evaluation.results import EvalReport
from photoscout.jobs import store
from photoscout.jobs.enrich import enrich
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.registry import builtin, lifecycle
from photoscout.rollout import activation, promotion
from photoscout.search.engine import SearchEngine

REPO = Path(__file__).resolve().parent.parent
SET_FILE = REPO / "evalsets" / "photos-dev.toml"
V1, V2, RANDOM = "conse-effnetl0-minilm@v1.0.0", "conse-effnetl0-minilm@v2.0.0", "random-vectors@v0.1.0"


def prepare(home: Path) -> tuple[float, float]:
    """Index photos-dev with the defaults (once), run the candidates' jobs; their rates (photos/s)."""
    settings = load_settings(home)
    settings.ensure_dirs()
    rates = []
    with Database(settings) as db:
        if lifecycle.active(db, "embedding") is None:
            install_builtins(db, settings, V1)
            t = time.perf_counter()
            scanner.scan(db, settings, [DATASET])
            summary = enrich(db, settings)
            print(f"indexed photos-dev: {summary.photos} photos in {time.perf_counter() - t:.0f} s")
        builtin.install(db, settings, refs=[V2, RANDOM])
        for ref in (V2, RANDOM):
            model = lifecycle.get(db, ref)
            if promotion.missing_photos(db, model, None):
                stats = Worker(db, settings).run(store.create_job(db, kind="embed", model_ref=ref)["id"])
                rates.append(stats.photos / max(stats.elapsed_s, 1e-9))
            else:
                rates.append(float("nan"))
        if lifecycle.active(db, "embedding").ref != V1:  # type: ignore[union-attr]  # a rerun: start from v1
            activation.rollback(db, settings, "embedding", reason="benchmark: start from v1")
    return rates[0], rates[1]


def _res(r: EvalReport, key: str, scale: float) -> str:
    v = r.resources.get(key)
    return "-" if v is None else f"{v / scale:.1f}"


def table(v2: EvalReport, v1: EvalReport, max_drop: dict[str, float]) -> None:
    print("\nvalues: v1 → v2 (difference)\n")
    print(report.markdown(report.comparison_rows(v2, v1, max_drop), v2.k))
    print("\n| | v1 | v2 |\n|---|---|---|")
    for label, key in (("search p50 (ms)", "p50"), ("search p95 (ms)", "p95")):
        print(f"| {label} | {v1.latency[key]} | {v2.latency[key]} |")
    for label, key, scale in (("embedding throughput (photos/s, model only)", "photos_per_s", 1),
                              ("peak memory of a process embedding 128 photos (MB)", "peak_rss_mb", 1),
                              ("embeddings (MB)", "embedding_bytes", 1e6), ("index (MB)", "index_bytes", 1e6)):
        print(f"| {label} | {_res(v1, key, scale)} | {_res(v2, key, scale)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep (and reuse) the indexed home here.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-eval-"))
    home = work / "home"
    v2_rate, random_rate = prepare(home)
    print(f"candidate jobs: v2 {v2_rate:.1f} photos/s, random {random_rate:.1f} photos/s (nan: already done)")
    settings = load_settings(home)
    with Database(settings) as db:
        engine = SearchEngine(db, settings)
        suite = sets.resolve(db, sets.load(SET_FILE))
        started = time.perf_counter()
        v2, v1 = runner.evaluate_all(db, settings, suite, [V2, V1], engine=engine)
        eval_s = time.perf_counter() - started
        report.log_evaluation(settings, v2, v1, settings.promotion_max_drop)
        print(f"\nevaluation of v2 and v1 on {suite.name} ({sum(len(s.usable) for s in suite.sets)} queries, "
              f"{len(suite.sets)} sets): {eval_s:.1f} s")
        table(v2, v1, settings.promotion_max_drop)
        gate = promotion.check(db, settings, V2)
        print(f"\ngate on v2: {'PASSED' if gate.passed else 'REFUSED'} - {gate.summary()}")

        bad, _ = runner.evaluate_all(db, settings, suite, [RANDOM, V1], engine=engine, measure_resources=False)
        bad_gate = promotion.check(db, settings, RANDOM)
        print(f"\nrandom vectors: overall nDCG@{bad.k} {bad.overall['ndcg']:.3f} (v1 {v1.overall['ndcg']:.3f}); "
              f"gate {'PASSED' if bad_gate.passed else 'REFUSED'}; regressing sets: "
              f"{', '.join(bad_gate.regressing_sets)}")

        # switches under search load
        stop = threading.Event()
        answered: list[tuple[float, str]] = []
        errors: list[str] = []

        def searcher() -> None:
            own = SearchEngine(db, settings)
            queries = [q.text for s in suite.sets for q in s.usable]
            i = 0
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    found = own.search(queries[i % len(queries)], limit=10)
                    answered.append(((time.perf_counter() - t) * 1000, found.model))
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(f"{type(exc).__name__}: {exc}")
                    if len(errors) > 100:
                        return
                i += 1

        threads = [threading.Thread(target=searcher, daemon=True) for _ in range(2)]
        for th in threads:
            th.start()
        switches = []
        try:
            time.sleep(1.0)
            for _ in range(2):
                t = time.perf_counter()
                promotion.promote(db, settings, V2, reason="benchmark")
                switches.append(time.perf_counter() - t)
                time.sleep(0.5)
                t = time.perf_counter()
                activation.rollback(db, settings, "embedding", reason="benchmark")
                switches.append(time.perf_counter() - t)
                time.sleep(0.5)
        finally:  # the searchers stop whatever happens (they would spin on a closed pool)
            stop.set()
            for th in threads:
                th.join()
        lat = [a[0] for a in answered]
        models = {a[1] for a in answered}
        with db.connection() as conn:
            row = conn.execute("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()
        print(f"\npromote/rollback switch: median {statistics.median(switches) * 1000:.0f} ms over {len(switches)} "
              f"switches (registry and the categories of {row[0] if row else '?'} photos in one transaction; "
              "promote includes the gate check)")
        print(f"searches answered during the switches: {len(answered)} (from {', '.join(sorted(models))}), "
              f"errors {len(errors)}, p50 {metrics.percentile(lat, 50):.1f} ms, "
              f"p95 {metrics.percentile(lat, 95):.1f} ms")
        for e in errors[:5]:
            print("  error:", e)
        print(f"\nhome: {home} (decision log: {settings.data_dir / 'decision-log.md'})")


if __name__ == "__main__":
    main()
