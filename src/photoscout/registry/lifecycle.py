"""The model registry: entries (``RegisteredModel``), register (staging) -> verify -> active -> deprecated /
disabled, and an append-only history of every status change (from, to, when, why). At most one active model per type
and purpose (a partial unique index enforces it); the active one cannot be deleted or deprecated without a
replacement. When a model may become active is decided in ``photoscout.rollout``; here is only the switch."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from photoscout.common.errors import NotFound, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.models import MODEL_TYPES, artifacts, factory
from photoscout.models.base import ModelSpec
from photoscout.registry import decisions

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STATUSES = ("staging", "active", "deprecated", "disabled")


@dataclass(frozen=True)
class RegisteredModel:
    id: int
    name: str
    type: str
    purpose: str
    version: str
    backend: str
    artifact_path: str | None
    config: dict[str, Any]
    status: str
    created_at: datetime
    activated_at: datetime | None
    deprecated_at: datetime | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def artifact_dir(self, settings: Settings) -> Path:
        """The version's folder in ``models/``; a registry row naming a folder elsewhere is refused."""
        return artifacts.contained(settings.models_dir, self.artifact_path or f"{self.name}/{self.version}",
                                   f"{self.ref}: artifact folder")

    def spec(self, settings: Settings) -> ModelSpec:
        return ModelSpec(name=self.name, version=self.version, type=self.type, backend=self.backend,
                         artifact_dir=self.artifact_dir(settings), config=self.config, id=self.id)

    def as_dict(self) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}
        out["ref"] = self.ref
        return out


_COLUMNS = ("id, name, type, purpose, version, backend, artifact_path, config, status, created_at, activated_at, "
            "deprecated_at")


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``name@vX.Y.Z`` or ``name`` (then: the active version, else the newest)."""
    name, _, version = ref.partition("@")
    if not name:
        raise PhotoscoutError(f"model reference {ref!r} has no name (use NAME@vX.Y.Z)")
    if version and not VERSION_RE.match(version):
        raise PhotoscoutError(f"version {version!r} is not semantic (vMAJOR.MINOR.PATCH, e.g. v1.0.0)")
    return name, version or None


def validate_version(version: str) -> None:
    if not VERSION_RE.match(version):
        raise PhotoscoutError(f"version {version!r} is not semantic (vMAJOR.MINOR.PATCH, e.g. v1.0.0)")


def _row(r: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(**r)


def get(db: Database, ref: str) -> RegisteredModel:
    name, version = parse_ref(ref)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        if version:
            cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE name = %s AND version = %s", (name, version))
        else:
            cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE name = %s "
                        "ORDER BY (status = 'active') DESC, created_at DESC LIMIT 1", (name,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no model {ref!r} in the registry (see 'photoscout models list')")
    return _row(row)


def get_by_id(db: Database, model_id: int) -> RegisteredModel:
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE id = %s", (model_id,)).fetchone()
    if row is None:
        raise NotFound(f"no model with id {model_id}")
    return _row(row)


def list_models(db: Database, *, type_: str | None = None) -> list[RegisteredModel]:
    sql = f"SELECT {_COLUMNS} FROM model_registry"
    params: list[Any] = []
    if type_:
        sql += " WHERE type = %s"
        params.append(type_)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return [_row(r) for r in cur.execute(sql + " ORDER BY type, purpose, name, created_at", params)]


def active(db: Database, type_: str, purpose: str = "default") -> RegisteredModel | None:
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM model_registry WHERE type = %s AND purpose = %s "
                          "AND status = 'active'", (type_, purpose)).fetchone()
    return _row(row) if row else None


def register(
    db: Database, settings: Settings, *, name: str, version: str, type_: str, backend: str,
    config: dict[str, Any], purpose: str = "default", artifact_path: str | None = None, reason: str = "registered",
) -> RegisteredModel:
    """Add a model in status ``staging`` after verifying its artifacts against their manifest."""
    if not NAME_RE.match(name):
        raise PhotoscoutError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
    validate_version(version)
    if type_ not in MODEL_TYPES:
        raise PhotoscoutError(f"model type {type_!r} is not one of {', '.join(MODEL_TYPES)}")
    if factory.backend_type(backend) != type_:
        raise PhotoscoutError(f"backend {backend!r} makes {factory.backend_type(backend)} models, not {type_}")
    rel = artifact_path or f"{name}/{version}"
    folder = artifacts.contained(settings.models_dir, rel, f"{name}@{version}: artifact folder")
    problems = artifacts.verify(folder)
    if problems:
        raise artifacts.ArtifactError("artifacts failed verification: " + "; ".join(map(str, problems)))
    listed = {e["path"] for e in artifacts.read_manifest(folder)["files"]}
    files = config.get("files", {})
    unlisted = [f for f in (files.values() if isinstance(files, dict) else [files]) if str(f) not in listed]
    if unlisted:
        raise artifacts.ArtifactError(f"{name}@{version}: its settings name file(s) {', '.join(map(repr, unlisted))} "
                                      "that are not among its verified artifacts: refused")
    try:
        with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"INSERT INTO model_registry (name, type, purpose, version, backend, artifact_path, config) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                (name, type_, purpose, version, backend, rel, Jsonb(config)),
            ).fetchone()
            assert row is not None
            _history(cur, row["id"], None, "staging", reason)
    except psycopg.errors.UniqueViolation as exc:
        raise PhotoscoutError(f"{name}@{version} is already registered") from exc
    return _row(row)


def describe(settings: Settings, model: RegisteredModel, *, files: bool = False) -> dict[str, Any]:
    """A model's entry with the bytes its artifacts take; with ``files`` also where they are and their manifest
    (every file's size, SHA-256 and source)."""
    data = model.as_dict()
    try:
        folder = model.artifact_dir(settings)
    except artifacts.ArtifactError as exc:
        return {**data, "artifact_bytes": 0, "artifact_dir": None, "manifest": {"error": str(exc)}}
    data["artifact_bytes"] = artifacts.size_bytes(folder)
    if files:
        data["artifact_dir"] = str(folder)
        try:
            data["manifest"] = artifacts.read_manifest(folder)
        except artifacts.ArtifactError as exc:
            data["manifest"] = {"error": str(exc)}
    return data


def verify(db: Database, settings: Settings, ref: str) -> tuple[RegisteredModel, list[artifacts.Problem]]:
    model = get(db, ref)
    return model, artifacts.verify(model.artifact_dir(settings))


def switch_active(db: Database, model: RegisteredModel, reason: str,
                  also: Callable[[Any], None] | None = None) -> str | None:
    """The registry half of making ``model`` the active one of its type and purpose, in one transaction: the
    previous active one becomes ``deprecated`` (kept: the rollback target), both changes go to the history, and
    ``also(cursor)`` runs inside the same transaction (what else must switch with it). Returns the previous active
    model's ref. This checks nothing: activation, promotion and rollback (``photoscout.rollout``) decide when it
    may happen."""
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('model_registry'))")
        current = cur.execute("SELECT id, name, version FROM model_registry WHERE type = %s AND purpose = %s "
                              "AND status = 'active' FOR NO KEY UPDATE", (model.type, model.purpose)).fetchone()
        if current is not None:
            cur.execute("UPDATE model_registry SET status = 'deprecated', deprecated_at = now() WHERE id = %s",
                        (current["id"],))
            _history(cur, current["id"], "active", "deprecated", f"replaced by {model.ref}: {reason}")
        cur.execute("UPDATE model_registry SET status = 'active', activated_at = now(), deprecated_at = NULL "
                    "WHERE id = %s", (model.id,))
        _history(cur, model.id, model.status, "active", reason)
        if also is not None:
            also(cur)
    return f"{current['name']}@{current['version']}" if current else None


def deprecate(db: Database, ref: str, *, reason: str = "deprecated") -> RegisteredModel:
    model = get(db, ref)
    if model.status == "active":
        raise PhotoscoutError(f"{model.ref} is the active {model.type} model; activate another version or use "
                              "'models rollback' first")
    if model.status == "deprecated":
        return model
    _set_status(db, model, "deprecated", reason)
    decisions.append(db.settings, f"deprecated {model.ref} ({model.type})", [f"reason: {reason}"])
    return get(db, model.ref)


def disable(db: Database, ref: str, *, reason: str = "disabled", log: bool = True) -> RegisteredModel:
    model = get(db, ref)
    if model.status == "active":
        raise PhotoscoutError(f"{model.ref} is active and cannot be disabled")
    _set_status(db, model, "disabled", reason)
    if log:
        decisions.append(db.settings, f"disabled {model.ref} ({model.type})", [f"reason: {reason}"])
    return get(db, model.ref)


def delete(db: Database, ref: str) -> None:
    """Remove a registry entry that has no outputs left. The active model can never be deleted."""
    model = get(db, ref)
    if model.status == "active":
        raise PhotoscoutError(f"{model.ref} is active and cannot be deleted")
    try:
        with db.connection() as conn:
            conn.execute("DELETE FROM model_registry WHERE id = %s", (model.id,))
    except psycopg.errors.ForeignKeyViolation as exc:
        raise PhotoscoutError(f"{model.ref} still has stored outputs; prune them first") from exc
    indexes.drop(db, model)  # the version's vector index goes with it


def rollback_target(db: Database, type_: str, purpose: str = "default") -> RegisteredModel | None:
    """The model ``rollback`` would re-activate: the most recently active one other than the current, unless it
    was disabled (pruned)."""
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {', '.join('m.' + col.strip() for col in _COLUMNS.split(','))} FROM model_status_history h "
            "JOIN model_registry m ON m.id = h.model_id WHERE m.type = %s AND m.purpose = %s "
            "AND h.to_status = 'active' AND m.status NOT IN ('active', 'disabled') "
            "ORDER BY h.at DESC, h.id DESC LIMIT 1", (type_, purpose)).fetchone()
    return _row(row) if row else None


def history(db: Database, ref: str | None = None, *, limit: int = 200) -> list[dict[str, Any]]:
    sql = ("SELECT h.at, m.name, m.version, m.type, m.purpose, h.from_status, h.to_status, h.reason "
           "FROM model_status_history h JOIN model_registry m ON m.id = h.model_id")
    params: list[Any] = []
    if ref:
        model = get(db, ref)
        sql += " WHERE m.id = %s"
        params.append(model.id)
    sql += " ORDER BY h.at, h.id LIMIT %s"
    params.append(limit)
    with db.connection() as c, c.cursor(row_factory=dict_row) as cur:
        return [{**r, "at": r["at"].isoformat()} for r in cur.execute(sql, params)]


def active_at(db: Database, type_: str, when: datetime, purpose: str = "default") -> str | None:
    """Which model of a type was active at a moment (from the history)."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT m.name || '@' || m.version, h.to_status FROM model_status_history h "
            "JOIN model_registry m ON m.id = h.model_id WHERE m.type = %s AND m.purpose = %s AND h.at <= %s "
            "AND (h.to_status = 'active' OR h.from_status = 'active') ORDER BY h.at DESC, h.id DESC LIMIT 1",
            (type_, purpose, when),
        ).fetchone()
    return row[0] if row and row[1] == "active" else None


def _set_status(db: Database, model: RegisteredModel, status: str, reason: str) -> None:
    with db.connection() as c, c.cursor() as cur:
        set_status_in(cur, model, status, reason)


def set_status_in(cur: Any, model: RegisteredModel, status: str, reason: str) -> None:
    """Change a (non-active) model's status inside the caller's transaction, with its history row."""
    extra = ", deprecated_at = now()" if status in ("deprecated", "disabled") else ""
    cur.execute(f"UPDATE model_registry SET status = %s{extra} WHERE id = %s", (status, model.id))
    _history(cur, model.id, model.status, status, reason)


def _history(cur: Any, model_id: int, from_status: str | None, to_status: str, reason: str) -> None:
    cur.execute("INSERT INTO model_status_history (model_id, from_status, to_status, reason) VALUES (%s, %s, %s, %s)",
                (model_id, from_status, to_status, reason))
