"""Search quality of the built-in search versions side by side (issues #14, #29): mAP and nDCG@10 per set and
overall on evalsets/photos-dev.toml for v1, v2, v3.1, v3.2, v4.0 and the default v4.1, the aim (mAP >= 0.80 overall
and on electronics, food, documents and screenshots) marked, the weakest queries, and what the promotion gate says
of the default against v2 (the same comparison as ``models promote``, without promoting). With ``--languages``:
English and each language of evalsets/photos-dev-languages.toml side by side per version, the foreign mean as a
share of English (the aim: at least 0.8), each version's calibrated cutoff of what matches (z, F1), and the gate of
the default against v3.2 (the default before it) on both files.

Needs a home where photos-dev is indexed (the README's first command makes one); installs the versions it lacks
(staging) and runs their embedding jobs (about 30 s each).

Usage: .venv/bin/python -m benchmarks.bench_quality [--home HOME] [--languages]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from photoscout.config import load_settings
from photoscout.database import Database
from photoscout.evaluation import report, runner, sets
from photoscout.evaluation.results import OVERALL
from photoscout.jobs import store
from photoscout.jobs.worker import Worker
from photoscout.registry import builtin, lifecycle
from photoscout.rollout import promotion

SET_FILE = Path(__file__).resolve().parent.parent / "evalsets" / "photos-dev.toml"
LANGUAGES = SET_FILE.parent / "photos-dev-languages.toml"
NAME = "conse-effnetl0-minilm"
VERSIONS = ["v1.0.0", "v2.0.0", "v3.1.0", "v3.2.0", "v4.0.0", "v4.1.0"]
AIMED = ("electronics", "food", "documents", "screenshots")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    ap.add_argument("--languages", action="store_true", help="English and six more languages side by side")
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
        if a.languages:
            languages = sets.resolve(db, sets.load(LANGUAGES))
            foreign = dict(zip(refs, runner.evaluate_all(db, settings, languages, refs, measure_resources=False,
                                                         store=False), strict=True))
            print_languages(settings, refs, reports, foreign)
            return
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


def print_languages(settings: Any, refs: list[str], english: dict[str, Any], foreign: dict[str, Any]) -> None:
    langs = [s.name for s in foreign[refs[-1]].sets]
    print(f"{'version':9s} {'English':>8s} " + " ".join(f"{lang:>6s}" for lang in langs)
          + f" {'foreign':>8s} {'share':>6s}  cutoff (English; languages)   (mAP)")
    for ref in refs:
        per = {s.name: s.metrics["map"] for s in foreign[ref].sets}
        en, mean = english[ref].overall["map"], foreign[ref].overall["map"]
        cut_en, cut_f = english[ref].resources["cutoff"], foreign[ref].resources["cutoff"]
        print(f"{ref.split('@')[1]:9s} {en:8.3f} " + " ".join(f"{per[lang]:6.3f}" for lang in langs)
              + f" {mean:8.3f} {mean / en:6.2f}  z>={cut_en['z']} F1 {cut_en['f1']:.2f}; "
                f"z>={cut_f['z']} F1 {cut_f['f1']:.2f}")
    default, before = refs[-1], f"{NAME}@v3.2.0"
    share = foreign[default].overall["map"] / english[default].overall["map"]
    print(f"aim (foreign mAP >= 0.8 x English, English not lower than v3.2): share {share:.2f}, English "
          f"{english[default].overall['map']:.3f} vs {english[before].overall['map']:.3f}: "
          + ("met" if share >= 0.8 and english[default].overall["map"] >= english[before].overall["map"] - 0.005
             else "not met"))
    regressed = []
    for reports in (english, foreign):
        rows = report.comparison_rows(reports[default], reports[before], settings.promotion_max_drop)
        regressed += [f"{r['set']} ({', '.join(r['regressed'])})" for r in rows if r.get("regressed")]
    print(f"gate, {default} against {before} on both files: "
          + ("passes" if not regressed else "refuses: " + "; ".join(regressed)))


if __name__ == "__main__":
    main()
