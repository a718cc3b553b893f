"""Marks that teach (issue #29): a benchmark that plays a user. For each weak query of evalsets/photos-dev.toml (AP
under ``--weak`` with the active version: dishes ImageNet has no class for, headphones, a receipt...), search, mark
the first screen's results (``--screen``, 40 as on the page) ✓ or ✗ from the manifest, learn the query from its
marks (what "Teach this search" does), search again; print AP over 100 results before and after, and the same for
the photos that were not marked (held out: what the marks taught about the rest of the library). Nothing is left
behind: each learned query is forgotten at the end (the user's own marks file is not touched).

Needs a home where photos-dev is indexed (the README's first command makes one).

Usage: .venv/bin/python -m benchmarks.bench_marks [--home HOME] [--weak 0.7] [--screen 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from photoscout.app import Photoscout
from photoscout.evaluation import sets
from photoscout.evaluation.metrics import average_precision
from photoscout.search import learned

SET_FILE = Path(__file__).resolve().parent.parent / "evalsets" / "photos-dev.toml"
DEPTH = 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    ap.add_argument("--weak", type=float, default=0.7, help="queries with AP under this are played")
    ap.add_argument("--screen", type=int, default=40, help="results on the first screen (marked)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    with Photoscout.open(a.home.expanduser()) as ps:
        suite = sets.resolve(ps.db, sets.load(SET_FILE))
        for s in suite.sets:
            for q in s.usable:
                ranked = [h.photo_id for h in ps.search(q.text, limit=DEPTH).hits]
                before = average_precision(ranked, q.relevant, DEPTH)
                if before >= a.weak:
                    continue
                screen = ranked[: a.screen]
                good = [p for p in screen if p in q.relevant]
                bad = [p for p in screen if p not in q.relevant]
                if len(good) < learned.MIN_RELEVANT:
                    rows.append({"set": s.name, "query": q.text, "relevant": len(q.relevant), "before": before,
                                 "after": None, "marked": [len(good), len(bad)], "note": "too few ✓ to learn"})
                    continue
                learned.learn(ps.db, q.text, good, bad)
                try:
                    ps.engine.clear_cache()
                    again = [h.photo_id for h in ps.search(q.text, limit=DEPTH).hits]
                finally:
                    learned.forget(ps.db, q.text)
                    ps.engine.clear_cache()
                marked = set(screen)
                held = q.relevant - marked
                rows.append({
                    "set": s.name, "query": q.text, "relevant": len(q.relevant), "marked": [len(good), len(bad)],
                    "before": round(before, 3), "after": round(average_precision(again, q.relevant, DEPTH), 3),
                    "held_out_before": round(average_precision([p for p in ranked if p not in marked], held,
                                                               DEPTH), 3) if held else None,
                    "held_out_after": round(average_precision([p for p in again if p not in marked], held,
                                                              DEPTH), 3) if held else None})
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{'set':12s} {'query':34s} {'✓/✗':>7s} {'AP before':>9s} {'after':>6s}   held out: before  after")
    for r in rows:
        ho = (f"{r['held_out_before']:.3f}  {r['held_out_after']:.3f}" if r.get("held_out_before") is not None
              else "-")
        after = f"{r['after']:.3f}" if r["after"] is not None else r.get("note", "-")
        print(f"{r['set']:12s} {r['query'][:34]:34s} {r['marked'][0]:>3d}/{r['marked'][1]:<3d} {r['before']:9.3f} "
              f"{after:>6s}   {ho:>17s}")
    played = [r for r in rows if r["after"] is not None]
    if played:
        print(f"median AP of {len(played)} weak queries: {statistics.median(r['before'] for r in played):.3f} -> "
              f"{statistics.median(r['after'] for r in played):.3f}; held out: "
              f"{statistics.median(r['held_out_before'] for r in played if r['held_out_before'] is not None):.3f}"
              f" -> {statistics.median(r['held_out_after'] for r in played if r['held_out_after'] is not None):.3f}")


if __name__ == "__main__":
    main()
