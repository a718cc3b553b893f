"""Search quality of the built-in search versions side by side (issue #14): mAP and nDCG@10 per set and overall on
evalsets/photos-dev.toml for v1, v2, v3.1 and the default v3.2, the aim (mAP >= 0.80 overall and on electronics,
food, documents and screenshots) marked, the weakest queries, and what the promotion gate says of the default
against v2 (the same comparison as ``models promote``, without promoting).

Needs a home where photos-dev is indexed (the README's first command makes one); installs the versions it lacks
(staging) and runs their embedding jobs (about 30 s each).

Usage: .venv/bin/python -m benchmarks.bench_quality [--home HOME]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.evaluation import report, runner, sets
from photoscout.evaluation.results import OVERALL
from photoscout.jobs import store
from photoscout.jobs.worker import Worker
from photoscout.registry import builtin, lifecycle
from photoscout.rollout import promotion

SET_FILE = Path(__file__).resolve().parent.parent / "evalsets" / "photos-dev.toml"
NAME = "conse-effnetl0-minilm"
VERSIONS = ["v1.0.0", "v2.0.0", "v3.1.0", "v3.2.0"]
AIMED = ("electronics", "food", "documents", "screenshots")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    a = ap.parse_args()
    settings = load_settings(a.home.expanduser())
    refs = [f"{NAME}@{v}" for v in VERSIONS]
    with Database(settings) as db:
        known = {m.ref for m in lifecycle.list_models(db, type_="embedding")}
        missing = [r for r in refs if r not in known]
        if missing:
            builtin.install(db, settings, refs=missing)
        for ref in refs:
            if promotion.missing_photos(db, lifecycle.get(db, ref), lifecycle.active(db, "embedding")):
                Worker(db, settings).run(store.create_job(db, kind="embed", model_ref=ref)["id"])
        suite = sets.resolve(db, sets.load(SET_FILE))
        reports = dict(zip(refs, runner.evaluate_all(db, settings, suite, refs, measure_resources=False,
                                                     store=False), strict=True))
    per = {ref: r.set_metrics() for ref, r in reports.items()}
    names = list(per[refs[-1]])
    print(f"{'set':13s} " + " ".join(f"{v.split('.')[0] + '.' + v.split('.')[1]:>13s}" for v in VERSIONS)
          + "   (mAP / nDCG@10)")
    for name in names:
        cells = []
        for ref in refs:
            m = per[ref].get(name) or {}
            cells.append(f"{m.get('map', 0):.3f}/{m.get('ndcg', 0):.3f}" if m else "-")
        mark = ""
        if name in AIMED or name == OVERALL:
            mark = "  aim met" if per[refs[-1]][name]["map"] >= 0.80 else "  under the 0.80 aim"
        print(f"{name:13s} " + " ".join(f"{c:>13s}" for c in cells) + mark)
    default = reports[refs[-1]]
    weakest = sorted((q for s in default.sets for q in s.queries), key=lambda q: q.metrics["map"])[:6]
    print("weakest queries of the default: " + "; ".join(f"{q.text!r} {q.metrics['map']:.2f}" for q in weakest))
    rows = report.comparison_rows(default, reports[f"{NAME}@v2.0.0"], settings.promotion_max_drop)
    regressed = [f"{r['set']} ({', '.join(r['regressed'])})" for r in rows if r.get("regressed")]
    print(f"gate, {refs[-1]} against v2: " + ("passes" if not regressed else "refuses: " + "; ".join(regressed)))


if __name__ == "__main__":
    main()
