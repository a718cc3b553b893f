"""Model artifacts: ``models/<name>/<version>/`` with a ``manifest.json`` listing every file with its size and
SHA-256, and where it came from. Verification re-hashes every file; a missing, extra-sized or changed file is named."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from photoscout.errors import PhotoscoutError

MANIFEST = "manifest.json"


class ArtifactError(PhotoscoutError):
    """Artifacts that do not match their manifest."""


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Hash every file under ``folder`` (but the manifest) and write the manifest."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        if "__pycache__" in path.parts:
            continue
        files.append({"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size,
                      "sha256": sha256_file(path)})
    if not files:
        raise ArtifactError(f"{folder}: no files to register")
    manifest = {"files": files, "source": source, "created_at": datetime.now(UTC).isoformat()}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{path}: manifest missing (the folder is not a registered model's artifacts)")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        data["files"][0]["sha256"]  # noqa: B018 - shape check
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise ArtifactError(f"{path}: manifest unreadable ({exc})") from exc
    return data


def verify(folder: Path) -> list[Problem]:
    """Every file of the manifest present, with its size and SHA-256. Returns the problems (empty: verified)."""
    if not folder.is_dir():
        return [Problem(str(folder), "artifact folder missing")]
    try:
        manifest = read_manifest(folder)
    except ArtifactError as exc:
        return [Problem(str(folder / MANIFEST), str(exc).split(": ", 1)[-1])]
    problems = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.is_file():
            problems.append(Problem(str(path), "missing"))
            continue
        size = path.stat().st_size
        if size != entry["size"]:
            problems.append(Problem(str(path), f"size {size} bytes, manifest says {entry['size']}"))
            continue
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            problems.append(Problem(str(path), f"SHA-256 {actual[:16]}... does not match the manifest "
                                               f"({entry['sha256'][:16]}...): the file was changed or corrupted"))
    return problems


def size_bytes(folder: Path) -> int:
    try:
        return sum(e["size"] for e in read_manifest(folder)["files"])
    except ArtifactError:
        return 0
