"""The promotion gate and ``promote``: a staging version becomes active only when

1. it covers every photo the active version covers (its embedding job is complete), and
2. its most recent evaluation, compared with the active version's on exactly the same sets (same digest), shows
   no metric dropping more than ``promotion_max_drop`` on any set, and search p95 within
   ``promotion_max_latency_ratio`` of the active one's;

or when the user forces it with a reason. Every decision - passed, refused, forced - goes to the decision log;
the switch itself is ``activation.make_active`` (one transaction: registry and categories), so the history
records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.database.schema import shown
from photoscout.evaluation import report, results
from photoscout.registry import decisions, lifecycle
from photoscout.registry.lifecycle import RegisteredModel
from photoscout.rollout.activation import make_active

LATENCY_SLACK_MS = 10.0


class PromotionRefused(PhotoscoutError):
    exit_code = 4  # the gate said no: distinct from bad input
    status = 409

    def __init__(self, message: str, gate: GateResult) -> None:
        super().__init__(message)
        self.gate = gate

    def details(self) -> dict[str, Any]:
        return {"promoted": False, "model": None, "gate": self.gate.as_dict()}


@dataclass
class GateResult:
    candidate: str
    active: str | None
    passed: bool = True
    problems: list[str] = field(default_factory=list)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    compared: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)
    k: int = 10

    def refuse(self, why: str) -> None:
        self.passed = False
        self.problems.append(why)

    @property
    def regressing_sets(self) -> list[str]:
        return list(dict.fromkeys(r["set"] for r in self.regressions))

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "regressing_sets": self.regressing_sets, "summary": self.summary()}

    def summary(self) -> str:
        if self.passed:
            better = [c["set"] for c in self.compared if c["delta"].get("ndcg", 0) > 0 and c["set"] != results.OVERALL]
            sets = sum(1 for c in self.compared if c["set"] != results.OVERALL)
            return (f"gate passed: no regression on {sets} set(s) against {self.active}"
                    + (f"; better nDCG on {', '.join(better)}" if better else ""))
        return "gate refused: " + "; ".join(self.problems)


@dataclass
class Promotion:
    """A promotion that happened: the version now active and the gate's verdict (forced past it, or passed)."""

    model: RegisteredModel
    gate: GateResult

    def __iter__(self) -> Iterator[Any]:  # promoted, gate = promote(...)
        return iter((self.model, self.gate))

    def as_dict(self) -> dict[str, Any]:
        return {"promoted": True, "model": self.model.as_dict(), "gate": self.gate.as_dict()}


def missing_photos(db: Database, candidate: RegisteredModel, active: RegisteredModel | None) -> int:
    """Readable photos the active version has embedded (or, with no active version, any) that the candidate has
    not."""
    with db.connection() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM photos p WHERE {shown()} "
            "AND NOT EXISTS (SELECT 1 FROM photo_embeddings e WHERE e.photo_id = p.id AND e.model_id = %s) "
            + ("AND EXISTS (SELECT 1 FROM photo_embeddings e WHERE e.photo_id = p.id AND e.model_id = %s)"
               if active else ""),
            (candidate.id, active.id) if active else (candidate.id,)).fetchone()
    return int(row[0]) if row else 0


def check(db: Database, settings: Settings, ref: str) -> GateResult:
    """Decide whether ``ref`` may replace the active model of its type (nothing changes)."""
    candidate = lifecycle.get(db, ref)
    current = lifecycle.active(db, candidate.type, candidate.purpose)
    gate = GateResult(candidate.ref, current.ref if current else None)
    if candidate.status == "active":
        gate.refuse(f"{candidate.ref} is already active")
        return gate
    if candidate.status == "disabled":
        gate.refuse(f"{candidate.ref} is disabled (pruned or retired); register a new version")
        return gate
    if candidate.type != "embedding":
        return gate  # evaluation sets measure search; other types are promoted on verification alone
    missing = missing_photos(db, candidate, current)
    if missing:
        gate.refuse(f"{candidate.ref} does not cover every photo: {missing} have no embedding from it "
                    f"(run: photoscout jobs start embed --model {candidate.ref} --missing-only)")
    if current is None:
        return gate
    latest = results.latest(db, candidate)  # each set file's most recent session: every language, every set
    rows = [r for r in latest if r["set_name"] != results.OVERALL]
    if not rows:
        gate.refuse(f"{candidate.ref} has not been evaluated (run: photoscout eval run --model {candidate.ref} "
                    "--compare-active)")
        return gate
    gate.sessions[candidate.ref] = ", ".join(dict.fromkeys(r["session"] for r in rows))
    for row in {r["session"]: r for r in reversed(rows)}.values():
        if row["coverage"] < 1.0:
            gate.refuse(f"its latest evaluation on {row['suite']} (session {row['session']}) ran when it covered "
                        f"only {row['coverage']:.0%} of the photos; evaluate it again")
    overall = [r for r in latest if r["set_name"] == results.OVERALL]
    for row in rows + overall:
        # prefer the active version's results timed side by side with the candidate's (eval run --compare-active)
        paired = row["resources"].get("measured_with", {}).get(current.ref)
        base = results.matching(db, current, row["set_digest"], paired)
        if base is None:
            if row["set_name"] != results.OVERALL:
                gate.refuse(f"{current.ref} has no evaluation on the same set {row['suite']}/{row['set_name']} "
                            f"(run: photoscout eval run --model {candidate.ref} --compare-active)")
            continue
        gate.sessions.setdefault(current.ref, base["session"])
        gate.k = row["k"]
        compared = report.compare(row["set_name"], row["metrics"], base["metrics"], settings.promotion_max_drop)
        gate.compared.append(compared)
        if row["set_name"] == results.OVERALL:
            p95, base_p95 = row["latency"].get("p95", 0.0), base["latency"].get("p95", 0.0)
            if base_p95 and p95 > base_p95 * settings.promotion_max_latency_ratio and p95 - base_p95 > LATENCY_SLACK_MS:
                gate.regressions.append({"set": "latency", "metric": "p95_ms", "active": base_p95, "candidate": p95,
                                         "allowed": round(base_p95 * settings.promotion_max_latency_ratio, 1)})
            continue
        gate.regressions += [{"set": row["set_name"], "metric": m, "active": base["metrics"][m],
                              "candidate": row["metrics"][m], "drop": -compared["delta"][m],
                              "allowed": settings.promotion_max_drop[m]} for m in compared["regressed"]]
    if gate.regressions:
        def drops(name: str) -> str:  # the set's largest drop
            worst = max((r for r in gate.regressions if r["set"] == name), key=lambda r: r.get("drop", 1.0))
            unit = " ms" if worst["metric"] == "p95_ms" else ""
            return f"{worst['metric']} {worst['active']:.3f}{unit} → {worst['candidate']:.3f}{unit}"

        named = "; ".join(f"{name} ({drops(name)})" for name in gate.regressing_sets)
        gate.refuse(f"{candidate.ref} regresses against {current.ref} on {named}")
    return gate


def promote(db: Database, settings: Settings, ref: str, *, force: bool = False,
            reason: str | None = None) -> Promotion:
    """Run the gate; activate when it passes (or when forced with a reason). Refusals raise ``PromotionRefused``."""
    if force and not (reason and reason.strip()):
        raise InvalidParameter("forcing a promotion past the gate needs a reason: the decision log keeps why the "
                               "gate was overridden", "reason")
    gate = check(db, settings, ref)
    candidate = lifecycle.get(db, ref)
    if candidate.status == "active":
        raise PhotoscoutError(f"{candidate.ref} is already the active {candidate.type} model")
    if candidate.status == "disabled":
        raise PhotoscoutError(gate.problems[0])
    evidence = [f"evaluation sessions: {', '.join(f'{m} {s}' for m, s in gate.sessions.items())}"] \
        if gate.sessions else []
    table = report.markdown(gate.compared, gate.k) if gate.compared else None
    if not gate.passed and not force:
        decisions.append(settings, f"promotion of {candidate.ref} refused",
                         [f"active stays: {gate.active}", *gate.problems, *evidence,
                          "override: photoscout models promote --force --reason '...'"], table=table)
        raise PromotionRefused(gate.summary(), gate)
    why = (f"forced past the gate: {reason} ({'; '.join(gate.problems)})" if not gate.passed
           else gate.summary() + (f"; {reason}" if reason else ""))
    make_active(db, settings, candidate, f"promoted: {why}")
    promoted = lifecycle.get(db, candidate.ref)
    target = lifecycle.rollback_target(db, candidate.type, candidate.purpose)
    title = f"promoted {candidate.ref} ({candidate.type})" + (" — FORCED past the gate" if not gate.passed else "")
    decisions.append(settings, title, [
        f"previous active: {gate.active} (now deprecated: the rollback target, kept until pruned)"
        if gate.active else f"first active {candidate.type} model",
        why, *evidence,
        f"undo: photoscout models rollback --type {candidate.type}" if target else "no rollback target",
    ], table=table)
    return Promotion(promoted, gate)
