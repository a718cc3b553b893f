"""Photo categories against photos-dev's manifest (issue #14): precision and recall per category (the kinds of
document, receipts and pages, against the manifest's labels receipt and document_page) for each embedding
version that analysed the library (each version keeps its own categories, ``photo_analysis.categories``), side by
side. Run it on a home where photos-dev is indexed and the versions' jobs have run.

Usage: .venv/bin/python -m benchmarks.bench_categories [--home HOME]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from benchmarks.genlib import DATASET
from photoscout.analysis.category_rules import DEFAULT_CATEGORIES
from photoscout.app import Photoscout

KIND_OF_LABEL = {"receipt": "receipts", "document_page": "pages"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("PHOTOSCOUT_HOME", "~/.photoscout")))
    a = ap.parse_args()
    manifest = list(csv.DictReader((DATASET / "manifest.csv").open()))
    truth = {r["file"]: r["category"] for r in manifest}
    # the kinds of document against the manifest's labels: a receipt, a document page
    kinds = {r["file"]: KIND_OF_LABEL.get(r["label"], "") for r in manifest}
    with Photoscout.open(a.home.expanduser()) as ps, ps.db.connection() as conn:
        rows = conn.execute(
            "SELECT m.name || '@' || m.version, p.path, a.categories FROM photo_analysis a "
            "JOIN photos p ON p.id = a.photo_id JOIN model_registry m ON m.id = a.model_id "
            "WHERE m.type = 'embedding' ORDER BY 1").fetchall()
    by_version: dict[str, dict[str, list[str]]] = {}
    for ref, path, cats in rows:
        rel = "/".join(Path(path).parts[-2:])
        if rel in truth:
            by_version.setdefault(ref, {})[rel] = list(cats or [])
    cats = [c for c in DEFAULT_CATEGORIES if c != "other"]
    print(f"{'category':12s} " + " ".join(f"{ref.split('@')[1]:>16s}" for ref in by_version) + "   (precision/recall)")
    for cat in cats:
        cells = []
        for got in by_version.values():
            want = kinds if cat in KIND_OF_LABEL.values() else truth
            tp = sum(1 for f, c in got.items() if cat in c and want[f] == cat)
            fp = sum(1 for f, c in got.items() if cat in c and want[f] != cat)
            fn = sum(1 for f, c in got.items() if cat not in c and want[f] == cat)
            cells.append(f"{tp / max(1, tp + fp):7.2f}/{tp / max(1, tp + fn):.2f}  ")
        print(f"{cat:12s} " + " ".join(f"{c:>16s}" for c in cells))
    print("photos per version: " + ", ".join(f"{ref} {len(got)}" for ref, got in by_version.items()))


if __name__ == "__main__":
    main()
