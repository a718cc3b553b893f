"""Making a model version active, and rolling back.

Every change of the active version goes through ``make_active``: the version must not be disabled and its
artifacts must match their manifest; the registry switches (the previous version becomes the rollback target) and,
for an embedding version, the photos' categories switch to the version's own, in one transaction; for an OCR,
detector or few-shot version, whose outputs are signals of the categories, every photo's categories are recomputed.
Who may call it:

* ``activate``: the first model of its type, or a new version of a non-embedding type (detector, OCR, ...). It
  refuses to replace an active embedding model: that is what ``promotion.promote`` (the evaluation gate) is for;
* ``rollback``: the previous version again, at once, without a gate;
* ``promotion.promote``: after the gate passed, or when forced with a reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from photoscout.analysis import categories
from photoscout.common.errors import PhotoscoutError
from photoscout.common.progress import Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.models import artifacts
from photoscout.registry import decisions, lifecycle
from photoscout.registry.lifecycle import RegisteredModel

SIGNAL_TYPES = ("ocr", "detector", "few_shot")  # types whose active version's outputs the categories read


def make_active(db: Database, settings: Settings, model: RegisteredModel, reason: str,
                progress: Progress | None = None) -> str | None:
    """Switch ``model`` to active (no gate: callers decide). Returns the previously active model's ref. An OCR,
    face or few-shot version then recomputes every photo's categories (reported to ``progress``)."""
    if model.status == "disabled":
        raise PhotoscoutError(f"{model.ref} is disabled; register a new version instead")
    problems = artifacts.verify(model.artifact_dir(settings))
    if problems:
        raise artifacts.ArtifactError(f"{model.ref} cannot be activated, artifacts failed verification: "
                                      + "; ".join(map(str, problems)))
    follow = None
    if model.type == "embedding":
        def follow(cur: object) -> None:
            categories.follow_version(cur, model.id)
    before = lifecycle.switch_active(db, model, reason, also=follow)
    if model.type in SIGNAL_TYPES and model.purpose == "default":
        categories.refresh_all(db, progress=progress)  # the categories read this type's active outputs
    return before


def activate(db: Database, settings: Settings, ref: str, *, reason: str = "activated",
             progress: Progress | None = None) -> RegisteredModel:
    """Make ``ref`` the active model of its type and purpose (the previous one becomes the rollback target).
    Replacing an active embedding model is refused: promote it through the evaluation gate instead."""
    model = lifecycle.get(db, ref)
    if model.status == "active":
        return model
    current = lifecycle.active(db, model.type, model.purpose)
    if model.type == "embedding" and current is not None:
        raise PhotoscoutError(f"{current.ref} is the active embedding model: replace it through the evaluation "
                              f"gate with 'photoscout models promote {model.ref}' (a promotion can be forced, "
                              "with a reason)")
    before = make_active(db, settings, model, reason, progress)
    decisions.append(settings, f"activated {model.ref} ({model.type})", [
        f"reason: {reason}",
        f"previous active: {before} (now deprecated: the rollback target)" if before else
        f"first active {model.type} model",
    ])
    return lifecycle.get(db, model.ref)


def activate_if_first(db: Database, settings: Settings, ref: str, *, reason: str) -> bool:
    """Activate ``ref`` when no model of its type and purpose is active yet (what a fresh install does)."""
    model = lifecycle.get(db, ref)
    if lifecycle.active(db, model.type, model.purpose) is not None:
        return False
    activate(db, settings, ref, reason=reason)
    return True


@dataclass
class Rollback:
    """A rollback that happened: the version active again, and the one it replaced (now deprecated)."""

    active: RegisteredModel
    replaced: RegisteredModel

    def __iter__(self) -> Iterator[RegisteredModel]:  # restored, replaced = rollback(...)
        return iter((self.active, self.replaced))

    def as_dict(self) -> dict[str, Any]:
        return {"active": self.active.as_dict(), "replaced": self.replaced.as_dict()}


def rollback(db: Database, settings: Settings, type_: str, purpose: str = "default", *,
             reason: str = "rollback", progress: Progress | None = None) -> Rollback:
    """Re-activate the model that was active before the current one (of this type and purpose)."""
    current = lifecycle.active(db, type_, purpose)
    if current is None:
        raise PhotoscoutError(f"no active {type_} model to roll back from")
    target = lifecycle.rollback_target(db, type_, purpose)
    if target is None:
        raise PhotoscoutError(f"{current.ref} is the only {type_} model ever active (or the earlier ones were "
                              "disabled or pruned); nothing to roll back to")
    make_active(db, settings, target, f"{reason} from {current.ref}", progress)
    decisions.append(settings, f"rolled back {type_}: {current.ref} -> {target.ref}", [
        f"reason: {reason}", f"{target.ref} is active again; {current.ref} is deprecated (kept until pruned)"])
    return Rollback(lifecycle.get(db, target.ref), lifecycle.get(db, current.ref))
