"""Marking search results relevant or not builds the user's own evaluation set.

Every mark is kept in ``<home>/evalsets/marked.json`` (query -> photo paths judged relevant / not relevant), and
``<home>/evalsets/marked.toml`` is written from it: one set, ``marked``, with a query for each text that has at
least one relevant photo. Being in ``<home>/evalsets/``, it is one of the sets ``eval run`` and the promotion gate
use from then on. Both files are replaced atomically; a mark given twice is kept once, the newest judgement wins.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from photoscout.common.errors import EnvironmentProblem, InvalidParameter, NotFound, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.evaluation.sets import MAX_QUERY_CHARS, user_folder

SET_NAME = "marked"
MAX_MARKS = 100_000


def _files(settings: Settings) -> tuple[Path, Path]:
    folder = user_folder(settings)
    return folder / f"{SET_NAME}.json", folder / f"{SET_NAME}.toml"


def _load(settings: Settings) -> dict[str, dict[str, list[str]]]:
    store, _ = _files(settings)
    if not store.is_file():
        return {}
    try:
        data = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PhotoscoutError(f"{store}: cannot read the marks ({exc}); move it aside to start again") from exc
    if not isinstance(data, dict) or not isinstance(data.get("queries"), dict):
        raise PhotoscoutError(f"{store}: not a marks file; move it aside to start again")
    return {str(q): {"relevant": list(v.get("relevant", [])), "not_relevant": list(v.get("not_relevant", []))}
            for q, v in data["queries"].items() if isinstance(v, dict)}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _save(settings: Settings, marks: dict[str, dict[str, list[str]]]) -> None:
    store, set_file = _files(settings)
    judged = {q: v for q, v in marks.items() if v["relevant"] or v["not_relevant"]}
    try:
        _write(store, json.dumps({"queries": judged}, indent=1, ensure_ascii=False, sort_keys=True))
        with_relevant = {q: v for q, v in sorted(judged.items()) if v["relevant"]}
        if not with_relevant:
            set_file.unlink(missing_ok=True)
            return
        lines = ["# Written by photoscout from the results you marked (marked.json); edits here are replaced.",
                 f'name = "{SET_NAME}"', 'root = "/"', "k = 10", "depth = 100", "", "[[sets]]",
                 f'name = "{SET_NAME}"', "queries = ["]
        for q, v in with_relevant.items():
            paths = ", ".join(_toml_string(p) for p in sorted(v["relevant"]))
            lines.append(f"  {{ text = {_toml_string(q)}, paths = [{paths}] }},")
        lines.append("]")
        _write(set_file, "\n".join(lines) + "\n")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the marks to {store.parent}: {exc.strerror or exc}") from exc


def mark(db: Database, settings: Settings, query: str, photo_id: int, relevant: bool | None) -> dict[str, Any]:
    """Judge ``photo_id`` for ``query``: relevant, not relevant, or (None) forget the judgement."""
    query = " ".join(query.split())
    if not query or len(query) > MAX_QUERY_CHARS:
        raise InvalidParameter(f"a marked query needs a text of 1 to {MAX_QUERY_CHARS} characters", "query")
    with db.connection() as conn:
        row = conn.execute("SELECT path FROM photos WHERE id = %s AND status = 'ok'", (photo_id,)).fetchone()
    if row is None:
        raise NotFound(f"no photo {photo_id} in the library")
    path = str(row[0])
    marks = _load(settings)
    if sum(len(v["relevant"]) + len(v["not_relevant"]) for v in marks.values()) >= MAX_MARKS:
        raise PhotoscoutError(f"{MAX_MARKS:,} marks already; remove some first")
    entry = marks.setdefault(query, {"relevant": [], "not_relevant": []})
    for key in ("relevant", "not_relevant"):
        if path in entry[key]:
            entry[key].remove(path)
    if relevant is not None:
        entry["relevant" if relevant else "not_relevant"].append(path)
    _save(settings, marks)
    return {"query": query, "photo_id": photo_id, "relevant": relevant, "set_file": str(_files(settings)[1]),
            **{k: len(v) for k, v in entry.items()}}


def marks_for(settings: Settings, query: str) -> dict[str, list[str]]:
    """The judgements for one query (paths relevant / not relevant)."""
    return _load(settings).get(" ".join(query.split()), {"relevant": [], "not_relevant": []})


def summary(settings: Settings) -> list[dict[str, Any]]:
    return [{"query": q, "relevant": len(v["relevant"]), "not_relevant": len(v["not_relevant"])}
            for q, v in sorted(_load(settings).items())]
