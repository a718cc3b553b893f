"""Indexing photos-dev end to end with the README's first command (issue #14), side by side in one run: a baseline
commit and this checkout, each from a fresh clone of its commit with a fresh home (``scripts/quickstart.sh``: the
virtual environment, the built-in models from PyPI, the scan and every model). Printed for each: wall time, the
"Ran ... models" line of ``index``, and how many documents and screenshots have OCR text (the issue: at least as
many as before).

Usage: .venv/bin/python -m benchmarks.bench_index [--baseline COMMIT] [--workdir DIR] [--order baseline,current]
(default baseline: 152c62f, the last commit before issue #14's work; pip's cache makes the two setups alike.)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.genlib import DATASET

REPO = Path(__file__).resolve().parents[1]


def run_one(label: str, commit: str, work: Path) -> dict[str, object]:
    root = work / label
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["git", "clone", "-q", str(REPO), str(root / "main")], check=True)
    subprocess.run(["git", "-C", str(root / "main"), "checkout", "-q", commit], check=True)
    (root / "shared").symlink_to(DATASET.parent.parent)
    home = root / "home"
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
    t = time.perf_counter()
    proc = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=root / "main", env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{label}: quickstart failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    ran = next((line for line in proc.stdout.splitlines() if line.startswith("Ran ")), "")
    counts = subprocess.run(
        [str(root / "main" / ".venv" / "bin" / "python"), "-c",
         "from photoscout.app import Photoscout\n"
         "with Photoscout.open() as ps, ps.db.connection() as c:\n"
         "    for cat, n, total in c.execute(\"SELECT split_part(p.path, '/', -2), count(t.photo_id), count(*) "
         "FROM photos p LEFT JOIN photo_text t ON t.photo_id = p.id AND length(t.text) > 0 "
         "WHERE split_part(p.path, '/', -2) IN ('documents', 'screenshots') GROUP BY 1 ORDER BY 1\"):\n"
         "        print(cat, n, total)\n"],
        env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    subprocess.run([str(root / "main" / ".venv" / "bin" / "photoscout"), "db", "stop"], env=env,
                   capture_output=True)
    return {"wall": wall, "ran": ran, "text": [c for c in counts if c]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="152c62f")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photoscout-bench-index")
    ap.add_argument("--order", default="baseline,current")
    a = ap.parse_args()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    if subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                      capture_output=True, text=True).stdout.strip():
        print("note: uncommitted changes are not measured (each side is a fresh clone of a commit)")
    commits = {"baseline": a.baseline, "current": head}
    results = {}
    for label in a.order.split(","):
        results[label] = run_one(label, commits[label], a.workdir)
        r = results[label]
        print(f"{label} ({commits[label]}): {r['wall']:.0f} s wall; {r['ran']}; OCR text: {', '.join(r['text'])}",
              flush=True)
    base, cur = results["baseline"]["wall"], results["current"]["wall"]
    print(f"speed-up, baseline / current wall time: {base / cur:.2f}x (aim: >= 2x)")  # type: ignore[operator]
    seconds = re.compile(r"in ([\d.]+)s")
    for label, r in results.items():
        found = seconds.search(str(r["ran"]))
        if found:
            print(f"{label}: models {float(found.group(1)):.0f} s of {r['wall']:.0f} s")


if __name__ == "__main__":
    main()
