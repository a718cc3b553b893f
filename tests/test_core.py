"""The core entry (``photoscout.app.Photoscout``) holds the rules, so every face gets them: replacing an active
embedding model without the gate is refused there, not only in the CLI; promotion, rollback and activation of other
model types go through it. Tiny models built locally (random weights, never downloaded) keep this fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoscout.app import Photoscout
from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.rollout.promotion import PromotionRefused
from tests.tiny_models import build_tiny_owlvit, build_tiny_siglip


@pytest.fixture(scope="module")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(Path(tmp_path_factory.mktemp("siglip")))


def test_the_gate_cannot_be_bypassed_through_the_core(db: Database, settings: Settings, tiny_siglip: Path) -> None:
    core = Photoscout(settings, db=db)
    for version in ("v1.0.0", "v2.0.0"):
        core.register(f"tiny@{version}", tiny_siglip, type_="embedding", backend="hf-image-text")
    assert core.activate("tiny@v1.0.0", reason="first of its type").status == "active"
    steps = len(core.history())

    # a plain activation cannot replace the active embedding model: it names the gated way
    with pytest.raises(PhotoscoutError, match="promote tiny@v2.0.0"):
        core.activate("tiny@v2.0.0")
    # the gate refuses a version that was never evaluated, and forcing it needs a reason
    with pytest.raises(PromotionRefused, match="has not been evaluated") as refused:
        core.promote("tiny@v2.0.0")
    assert not refused.value.gate.passed and not core.promotion_check("tiny@v2.0.0").passed
    with pytest.raises(InvalidParameter, match="needs a reason") as no_reason:
        core.promote("tiny@v2.0.0", force=True)
    assert no_reason.value.params == ("reason",)
    # nothing changed on the way
    assert core.model("tiny@v1.0.0").status == "active" and core.model("tiny@v2.0.0").status == "staging"
    assert len(core.history()) == steps

    promoted, gate = core.promote("tiny@v2.0.0", force=True, reason="test: forced past the gate")
    assert promoted.status == "active" and not gate.passed
    assert core.model("tiny@v1.0.0").status == "deprecated"
    restored, replaced = core.rollback()
    assert (restored.ref, restored.status, replaced.ref, replaced.status) == (
        "tiny@v1.0.0", "active", "tiny@v2.0.0", "deprecated")
    assert [h["to_status"] for h in core.history()][steps:] == ["deprecated", "active", "deprecated", "active"]
    log = core.decision_log()
    assert "FORCED past the gate" in log and "rolled back embedding: tiny@v2.0.0 -> tiny@v1.0.0" in log
    assert core.decision_log(tail=1).startswith("## ") and "rolled back" in core.decision_log(tail=1)


def test_other_model_types_are_activated_without_a_gate(db: Database, settings: Settings, tmp_path: Path) -> None:
    """Evaluation sets measure search; a new detector replaces the old one by activation (rollback stays)."""
    core = Photoscout(settings, db=db)
    folder = build_tiny_owlvit(tmp_path / "owl")
    for version in ("v1.0.0", "v1.1.0"):
        core.register(f"owl@{version}", folder, type_="detector", backend="hf-owlvit")
        core.activate(f"owl@{version}", reason=f"try {version}")
    assert [m["status"] for m in core.models_list("detector")] == ["deprecated", "active"]
    restored, _ = core.rollback("detector")
    assert restored.ref == "owl@v1.0.0"
    details = core.model_details("owl@v1.0.0")
    assert details["status"] == "active" and details["manifest"]["files"] and details["photos_done"] == 0


def test_one_core_opens_the_database_on_first_use_and_closes_it(tmp_path: Path, settings: Settings) -> None:
    core = Photoscout.open(tmp_path / "home", database_url=settings.database_url)
    assert core.config()["models_dir"] == str(tmp_path / "home" / "models")  # settings alone: no database yet
    assert core._db is None
    with core:
        assert core.status()["photos"] == 0
        assert core._db is not None and core._db.pool is not None
    assert core._db is None
