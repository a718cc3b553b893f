"""What a user may do with a model version now, decided once for every face: run a job of it, evaluate or compare
it, promote it (an embedding version, through the gate), activate it (another type), roll its type back. The pages
show the buttons these allow; the API and the CLI enforce the same rules where the operation runs."""

from __future__ import annotations

from typing import Any

from photoscout.database import Database
from photoscout.jobs.states import KIND_FOR_TYPE
from photoscout.registry import lifecycle
from photoscout.registry.lifecycle import RegisteredModel

CANDIDATE = ("staging", "deprecated")  # versions that can become active (a deprecated one is an old active)


def allowed(model: RegisteredModel, *, can_roll_back: bool) -> dict[str, Any]:
    """The actions ``model`` allows: ``job`` is the job kind that runs it (None: no job), the rest are yes or no.
    ``can_roll_back``: its type has a version to roll back to (``lifecycle.rollback_target``)."""
    usable = model.status != "disabled"
    embedding = model.type == "embedding"
    candidate = model.status in CANDIDATE
    return {
        "job": str(KIND_FOR_TYPE[model.type]) if usable and model.type in KIND_FOR_TYPE else None,
        "evaluate": embedding and candidate,
        "compare": embedding and candidate,
        "promote": embedding and candidate,  # replacing the active search model goes through the gate
        "activate": not embedding and candidate,
        "rollback": model.status == "active" and can_roll_back,
    }


def for_models(db: Database, models: list[RegisteredModel]) -> dict[str, dict[str, Any]]:
    """``allowed`` for each model (by ref), asking for each type's rollback target once."""
    targets: dict[tuple[str, str], bool] = {}
    out = {}
    for m in models:
        key = (m.type, m.purpose)
        if m.status == "active" and key not in targets:
            targets[key] = lifecycle.rollback_target(db, m.type, m.purpose) is not None
        out[m.ref] = allowed(m, can_roll_back=targets.get(key, False))
    return out
