"""Model artifacts: ``models/<name>/<version>/`` with a ``manifest.json`` listing every file with its size, SHA-256
and modification time, and where it came from.

Nothing outside the folders it belongs to is read or deleted: a path from a registry row, a model's config or a
manifest is resolved (``..`` and symbolic links followed) and must stay inside (``contained``). A model is loaded
only from files of its verified manifest: before loading, each file's size and modification time are compared with
the manifest (cheap), and a file whose time differs is hashed; ``verify`` hashes every file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from photoscout.common.errors import PhotoscoutError

MANIFEST = "manifest.json"
IGNORED = ("__pycache__",)  # never part of a model (and never loaded: Python modules are executed from source)


class ArtifactError(PhotoscoutError):
    """Artifacts that do not match their manifest, or a path that leaves the folder it belongs to."""


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def contained(base: Path, relative: str | os.PathLike[str], what: str = "file") -> Path:
    """``base / relative``, refused unless it resolves (``..`` and symbolic links followed) to a path strictly
    inside ``base``. The unresolved path is returned (a caller removing it removes a link, not its target)."""
    rel = Path(relative)
    candidate = base / rel
    root = base.resolve()
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise ArtifactError(f"{what} {str(relative)!r}: cannot be resolved ({exc})") from exc
    if rel.is_absolute() or resolved == root or not resolved.is_relative_to(root):
        raise ArtifactError(f"{what} {str(relative)!r} is outside {base}: refused")
    return candidate


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((MANIFEST, f".{MANIFEST}"))
                  and not any(part in IGNORED for part in p.relative_to(folder).parts))


def write_manifest(folder: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Hash every file under ``folder`` (but the manifest) and write the manifest."""
    files = []
    for path in _files(folder):
        contained(folder, path.relative_to(folder))
        st = path.stat()
        files.append({"path": path.relative_to(folder).as_posix(), "size": st.st_size,
                      "sha256": sha256_file(path), "mtime_ns": st.st_mtime_ns})
    if not files:
        raise ArtifactError(f"{folder}: no files to register")
    manifest = {"files": files, "source": source, "created_at": datetime.now(UTC).isoformat()}
    _save(folder, manifest)
    return manifest


def _save(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: manifest missing (the folder is not a registered model's artifacts)")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        data["files"][0]["sha256"]  # noqa: B018 - shape check
        for entry in data["files"]:
            str(entry["path"]), int(entry["size"]), str(entry["sha256"])
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: manifest unreadable ({exc})") from exc
    return data


def verify(folder: Path, *, quick: bool = False) -> list[Problem]:
    """Every file of the manifest present, inside the folder, with its size and SHA-256, and no file that the
    manifest does not list. ``quick``: a file whose size and modification time match the manifest is not hashed
    (a hashed file's time is then recorded). Returns the problems (empty: verified)."""
    if not folder.is_dir():
        return [Problem(str(folder), "artifact folder missing")]
    try:
        manifest = read_manifest(folder)
    except ArtifactError as exc:
        return [Problem(str(folder / MANIFEST), str(exc).split(": ", 1)[-1])]
    problems = []
    listed = set()
    hashed = False
    for entry in manifest["files"]:
        try:
            path = contained(folder, entry["path"])
        except ArtifactError as exc:
            problems.append(Problem(str(folder / entry["path"]), str(exc)))
            continue
        listed.add(path.resolve())
        if not path.is_file():
            problems.append(Problem(str(path), "missing"))
            continue
        st = path.stat()
        if st.st_size != entry["size"]:
            problems.append(Problem(str(path), f"size {st.st_size} bytes, manifest says {entry['size']}"))
            continue
        if quick and entry.get("mtime_ns") == st.st_mtime_ns:
            continue
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            problems.append(Problem(str(path), f"SHA-256 {actual[:16]}... does not match the manifest "
                                               f"({entry['sha256'][:16]}...): the file was changed or corrupted"))
        elif entry.get("mtime_ns") != st.st_mtime_ns:
            entry["mtime_ns"] = st.st_mtime_ns
            hashed = True
    for extra in _files(folder):
        if extra.resolve() not in listed:
            problems.append(Problem(str(extra), "not in the manifest (added after the model was registered)"))
    if hashed and not problems:
        try:  # the next quick check need not hash these files again
            _save(folder, manifest)
        except OSError:
            pass
    return problems


def check(folder: Path, what: str) -> None:
    """Raise ``ArtifactError`` naming every problem of a quick verification."""
    problems = verify(folder, quick=True)
    if problems:
        raise ArtifactError(f"{what}: artifacts failed verification: " + "; ".join(map(str, problems)))


def size_bytes(folder: Path) -> int:
    try:
        return sum(e["size"] for e in read_manifest(folder)["files"])
    except ArtifactError:
        return 0
