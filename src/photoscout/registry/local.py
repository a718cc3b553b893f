"""Registering models from a folder the user copied in, pulled from a model hub (huggingface_hub), or exported to
ONNX from a registered hub model (``export_onnx``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from photoscout.common.errors import PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.models import artifacts, factory
from photoscout.registry import lifecycle


def _describe(backend: str, folder: Path) -> dict[str, Any]:
    """Config a backend derives from its files (e.g. the embedding dimension from config.json)."""
    import importlib

    _type, module, cls_name = factory.BACKENDS[backend]
    cls = getattr(importlib.import_module(module), cls_name)
    describe = getattr(cls, "describe", None)
    return dict(describe(folder)) if describe else {}


def register_folder(db: Database, settings: Settings, *, ref: str, source_dir: Path, type_: str, backend: str,
                    config: dict[str, Any] | None = None, purpose: str = "default",
                    source: dict[str, Any] | None = None) -> tuple[lifecycle.RegisteredModel, str]:
    """Copy ``source_dir`` to ``models/<name>/<version>/`` and register it (staging). A folder that brings its own
    manifest is verified against it; one without gets a manifest written now (its files are trusted as they are)."""
    name, version = lifecycle.parse_ref(ref)
    if version is None:
        raise PhotoscoutError("give the version to register: NAME@vX.Y.Z")
    lifecycle.validate_version(version)
    factory.backend_type(backend)
    if not source_dir.is_dir():
        raise PhotoscoutError(f"{source_dir}: not a folder")
    target = settings.models_dir / name / version
    if target.exists() and target.resolve() != source_dir.resolve():
        raise PhotoscoutError(f"{target} already exists; choose another version")
    note = "manifest verified"
    if target.resolve() != source_dir.resolve():
        tmp = target.with_name(f".{version}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source_dir, tmp, ignore=shutil.ignore_patterns("__pycache__", ".git"))
        tmp.rename(target)
    if not (target / artifacts.MANIFEST).exists():
        artifacts.write_manifest(target, source or {"kind": "local", "path": str(source_dir)})
        note = "manifest written (files trusted as copied)"
    merged = {**_describe(backend, target), **(config or {})}
    if type_ == "embedding":  # as the built-ins: half the bytes per vector unless the version says otherwise
        merged.setdefault("storage", settings.vector_storage)
    try:
        model = lifecycle.register(db, settings, name=name, version=version, type_=type_, backend=backend,
                                   config=merged, purpose=purpose, reason=f"registered from {source_dir}")
    except Exception:
        if target.resolve() != source_dir.resolve():
            shutil.rmtree(target, ignore_errors=True)
        raise
    return model, note


def pull(db: Database, settings: Settings, *, repo_id: str, ref: str, type_: str, backend: str,
         revision: str | None = None, config: dict[str, Any] | None = None) -> lifecycle.RegisteredModel:
    """Download a model from the Hugging Face hub into ``models/`` and register it."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:
        raise PhotoscoutError("pulling from a model hub needs the 'hub' extra: pip install 'photoscout[hub]'") from exc
    name, version = lifecycle.parse_ref(ref)
    if version is None:
        raise PhotoscoutError("give the version to register: NAME@vX.Y.Z")
    staging = settings.models_dir / name / f".{version}.download"
    try:
        path = snapshot_download(repo_id=repo_id, revision=revision, local_dir=staging)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PhotoscoutError(f"could not download {repo_id} from the model hub ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else 'no network?'}); copy the files in and "
                              "use 'photoscout models register --from DIR' instead") from exc
    shutil.rmtree(Path(path) / ".cache", ignore_errors=True)
    commit = revision
    try:
        from huggingface_hub import HfApi

        commit = HfApi().model_info(repo_id, revision=revision).sha
    except Exception:  # noqa: BLE001 - the revision is informative only
        pass
    artifacts.write_manifest(Path(path), {"kind": "huggingface", "repo_id": repo_id, "revision": commit})
    model, _ = register_folder(db, settings, ref=ref, source_dir=Path(path), type_=type_, backend=backend,
                               config=config)
    shutil.rmtree(staging, ignore_errors=True)
    return model


def export_onnx(db: Database, settings: Settings, *, source_ref: str, ref: str, int8: bool = False,
                threads: int = 0) -> tuple[lifecycle.RegisteredModel, dict[str, Any]]:
    """Export the registered ``hf-image-text`` version ``source_ref`` to ONNX (int8 weights with ``int8``) and
    register the export as the new version ``ref`` (backend ``onnx-image-text``, staging, the source's storage):
    its vectors are its own, so it goes through a job, an evaluation and the gate like any new version."""
    from photoscout.models.hub.export import export

    source = lifecycle.get(db, source_ref)
    if source.backend != "hf-image-text":
        raise PhotoscoutError(f"{source.ref} runs on {source.backend!r}; only hf-image-text models export to ONNX")
    name, version = lifecycle.parse_ref(ref)
    if version is None:
        raise PhotoscoutError("give the version to register: NAME@vX.Y.Z")
    lifecycle.validate_version(version)
    target = settings.models_dir / name / version
    if target.exists():
        raise PhotoscoutError(f"{target} already exists; choose another version")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = source.artifact_dir(settings)  # inside models/, or refused before it is read
    try:
        manifest = export(folder, target, int8=int8, threads=threads)
        kept: dict[str, Any] = {k: source.config[k] for k in ("storage", "prompt", "logit_scale")
                                if k in source.config}
        model, _note = register_folder(db, settings, ref=ref, source_dir=target, type_="embedding",
                                       backend="onnx-image-text", config=kept,
                                       source={"kind": "onnx-export", "from": source.ref, "int8": int8})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return model, manifest
