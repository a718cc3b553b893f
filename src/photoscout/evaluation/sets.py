"""Curated evaluation sets: a TOML file naming queries and the photos that answer them.

    name = "photos-dev"                         # the file's name in results and the decision log
    root = "../../shared/datasets/photos-dev"   # where the photos are (relative to this file, or absolute)
    manifest = "manifest.csv"                   # optional, relative to root: columns file, category, label
    k = 10                                      # precision@k, recall@k, nDCG@k; mAP looks at `depth` results
    depth = 100

    [[sets]]
    name = "food"
    queries = [
      { text = "pizza", label = "pizza" },                       # a manifest label (or a list of labels)
      { text = "food", category = "food" },                      # a manifest category
      { text = "my kitchen", folder = "kitchen" },               # every photo under root/kitchen
      { text = "the cake", paths = ["2024/cake1.jpg"] },         # explicit paths (relative to root or absolute)
      { text = "my cat", class = "tom" },                        # members of a few-shot class (photoscout classes)
    ]

Selectors in one query add up. Relevance is resolved against the library (photos that were scanned and are
readable); a query none of whose photos is in the library is skipped with a warning. The digest of each set covers
its queries, k, depth and the resolved photo ids, so results are compared like with like.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photoscout.common.errors import PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.library.paths import like_prefix

SELECTORS = ("category", "label", "folder", "paths", "class")
MAX_QUERY_CHARS = 1000  # the search engine's limit


@dataclass
class Query:
    text: str
    selectors: dict[str, list[str]]
    relevant: set[int] = field(default_factory=set)


@dataclass
class EvalSet:
    name: str
    queries: list[Query]
    digest: str = ""

    @property
    def usable(self) -> list[Query]:
        return [q for q in self.queries if q.relevant]


@dataclass
class Suite:
    name: str
    file: Path
    root: Path
    k: int
    depth: int
    sets: list[EvalSet]
    description: str = ""
    manifest: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return _digest({"suite": self.name, "sets": [s.digest for s in self.sets]})


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _as_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise PhotoscoutError(f"{where}: expected a string or a list of strings")


def load(file: str | Path) -> Suite:
    """Read and check a set file (no database needed); ``resolve`` then finds the photos."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise PhotoscoutError(f"evaluation set {path}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PhotoscoutError(f"evaluation set {path}: not valid TOML ({exc})") from exc
    unknown = set(data) - {"name", "description", "root", "manifest", "k", "depth", "sets"}
    if unknown:
        raise PhotoscoutError(f"evaluation set {path}: unknown key(s) {', '.join(sorted(unknown))}")
    root_value = data.get("root", ".")
    root = Path(os.path.expanduser(str(root_value)))
    if not root.is_absolute():
        root = path.parent / root
    root = Path(os.path.normpath(os.path.abspath(root)))
    k, depth = data.get("k", 10), data.get("depth", 100)
    if not isinstance(k, int) or not 1 <= k <= 100:
        raise PhotoscoutError(f"evaluation set {path}: k must be an integer from 1 to 100")
    if not isinstance(depth, int) or not k <= depth <= 500:
        raise PhotoscoutError(f"evaluation set {path}: depth must be an integer from k to 500")
    raw_sets = data.get("sets")
    if not isinstance(raw_sets, list) or not raw_sets:
        raise PhotoscoutError(f"evaluation set {path}: no [[sets]]")
    sets: list[EvalSet] = []
    for i, s in enumerate(raw_sets):
        where = f"evaluation set {path}, sets[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or not s["name"].strip():
            raise PhotoscoutError(f"{where}: every set needs a name")
        if s["name"].startswith("*"):
            raise PhotoscoutError(f"{where}: set names cannot start with '*'")
        queries = []
        for j, q in enumerate(s.get("queries") or []):
            qwhere = f"{where} ({s['name']}), queries[{j}]"
            if not isinstance(q, dict) or not isinstance(q.get("text"), str) or not q["text"].strip():
                raise PhotoscoutError(f"{qwhere}: every query needs a text")
            if len(q["text"]) > MAX_QUERY_CHARS:
                raise PhotoscoutError(f"{qwhere}: the text has {len(q['text'])} characters; at most "
                                      f"{MAX_QUERY_CHARS} (what search accepts)")
            extra = set(q) - {"text", *SELECTORS}
            if extra:
                raise PhotoscoutError(f"{qwhere}: unknown key(s) {', '.join(sorted(extra))} "
                                      f"(relevance is given by {', '.join(SELECTORS)})")
            selectors = {key: _as_list(q[key], f"{qwhere}.{key}") for key in SELECTORS if key in q}
            if not selectors:
                raise PhotoscoutError(f"{qwhere}: say which photos answer it ({', '.join(SELECTORS)})")
            queries.append(Query(q["text"].strip(), selectors))
        if not queries:
            raise PhotoscoutError(f"{where} ({s['name']}): no queries")
        if len({q.text for q in queries}) != len(queries):
            raise PhotoscoutError(f"{where} ({s['name']}): a query text appears twice")
        sets.append(EvalSet(s["name"].strip(), queries))
    if len({s.name for s in sets}) != len(sets):
        raise PhotoscoutError(f"evaluation set {path}: two sets have the same name")
    manifest = None
    if "manifest" in data:
        manifest = root / str(data["manifest"])
    elif (root / "manifest.csv").is_file():
        manifest = root / "manifest.csv"
    return Suite(str(data.get("name") or path.stem), path, root, k, depth, sets, str(data.get("description", "")),
                 manifest)


def user_folder(settings: Settings) -> Path:
    """Where a user keeps their own set files: ``<home>/evalsets``."""
    return settings.home / "evalsets"


def default_files(settings: Settings) -> list[Path]:
    """The user's set files (``<home>/evalsets/*.toml``), used when no file is named."""
    folder = user_folder(settings)
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def _read_manifest(suite: Suite) -> list[dict[str, str]]:
    if suite.manifest is None:
        return []
    if not suite.manifest.is_file():
        raise PhotoscoutError(f"evaluation set {suite.file}: manifest {suite.manifest} not found "
                              f"(is root {suite.root} right?)")
    with open(suite.manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and "file" not in rows[0]:
        raise PhotoscoutError(f"{suite.manifest}: needs a 'file' column (and 'category', 'label')")
    return rows


def resolve(db: Database, suite: Suite) -> Suite:
    """Find each query's relevant photos in the library; fills ``relevant``, ``digest`` and ``warnings``."""
    manifest = _read_manifest(suite)
    needs_manifest = any(key in ("category", "label") for s in suite.sets for q in s.queries for key in q.selectors)
    if needs_manifest and not manifest:
        raise PhotoscoutError(f"evaluation set {suite.file}: queries select by category or label but there is no "
                              "manifest (set 'manifest' or put manifest.csv in root)")
    root = os.fspath(suite.root)
    with db.connection() as conn:
        rows = conn.execute("SELECT id, path FROM photos WHERE status = 'ok' AND path LIKE %s",
                            (like_prefix(root),)).fetchall()
        by_rel = {path[len(root.rstrip("/")) + 1:]: pid for pid, path in rows}
        if not by_rel:  # the library reached the same folder by another route (a symlink, a mount): match the ends
            base = os.path.basename(root)
            rows = conn.execute("SELECT id, path FROM photos WHERE status = 'ok' AND path LIKE %s",
                                ("%/" + like_prefix(base),)).fetchall()
            for pid, path in rows:
                rel = path.rsplit(f"/{base}/", 1)[-1]
                by_rel.setdefault(rel, pid)
            if by_rel:
                suite.warnings.append(f"no photo under {root} in the library; matched photos by their path under "
                                      f"a folder named {base}/")
        classes = _fewshot_members(conn, {c for s in suite.sets for q in s.queries
                                          for c in q.selectors.get("class", [])})
    for s in suite.sets:
        for q in s.queries:
            q.relevant = set()
            for key, values in q.selectors.items():
                if key == "category":
                    q.relevant |= {by_rel[r["file"]] for r in manifest if r.get("category") in values
                                   and r["file"] in by_rel}
                elif key == "label":
                    q.relevant |= {by_rel[r["file"]] for r in manifest if r.get("label") in values
                                   and r["file"] in by_rel}
                elif key == "folder":
                    for folder in values:
                        prefix = folder.strip("/") + "/"
                        q.relevant |= {pid for rel, pid in by_rel.items() if rel.startswith(prefix)}
                elif key == "paths":
                    for p in values:
                        rel = os.path.relpath(p, root) if os.path.isabs(p) else os.path.normpath(p)
                        if rel in by_rel:
                            q.relevant.add(by_rel[rel])
                elif key == "class":
                    for name in values:
                        if name not in classes:
                            raise PhotoscoutError(f"evaluation set {suite.file}: no few-shot class {name!r} "
                                                  "(see 'photoscout classes list')")
                        q.relevant |= classes[name]
            if not q.relevant:
                suite.warnings.append(f"{s.name}: query {q.text!r} skipped: none of its photos is in the library")
        s.digest = _digest({"suite": suite.name, "set": s.name, "k": suite.k, "depth": suite.depth,
                            "queries": sorted([q.text, sorted(q.relevant)] for q in s.queries)})
    return suite


def _fewshot_members(conn: Any, names: set[str]) -> dict[str, set[int]]:
    if not names:
        return {}
    out: dict[str, set[int]] = {}
    for name, examples, members in conn.execute(
        "SELECT fc.name, fc.example_ids, array(SELECT f.photo_id FROM photo_features f WHERE f.model_id = fc.model_id "
        "AND 1 - (f.features <=> fc.prototype) >= fc.threshold) FROM fewshot_classes fc JOIN model_registry m "
        "ON m.id = fc.model_id AND m.status = 'active' WHERE fc.name = ANY(%s)", (sorted(names),)):
        out[name] = set(examples) | set(members)
    return out
