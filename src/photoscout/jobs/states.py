"""What a job can be and do, defined once: its statuses (and which of them are finished), and its kinds (the kind
that runs each model type). The store writes these, the faces show them, and every loop that follows a job (``jobs
status --watch``, the web page's live updates, the events stream) stops on ``FINISHED``, through ``finished``."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"  # created or resumed, no unit taken yet
    RUNNING = "running"  # a worker took a unit
    PAUSED = "paused"  # held: no unit is handed out, nothing is lost (the schema allows it; resume goes on)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED = frozenset(set(JobStatus) - FINISHED)  # a job of a version keeps it from being pruned
HANDED_OUT = (JobStatus.PENDING, JobStatus.RUNNING)  # statuses whose units workers lease


class UnitState(StrEnum):
    """A unit of a job (a batch of photo ids): waiting, leased by a worker, done; failed is kept for units of jobs
    made before isolation split them (a failing photo is recorded as failed, its unit done)."""

    PENDING = "pending"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    EMBED = "embed"
    DETECT = "detect"
    OCR = "ocr"
    CAPTION = "caption"
    FEATURES = "features"


KIND_FOR_TYPE: dict[str, JobKind] = {"embedding": JobKind.EMBED, "detector": JobKind.DETECT, "ocr": JobKind.OCR,
                                     "captioning": JobKind.CAPTION, "few_shot": JobKind.FEATURES}


def finished(status: str) -> bool:
    """Whether a job in ``status`` is over: nothing more will happen to it unless someone resumes it."""
    return status in FINISHED


def values(statuses: frozenset[JobStatus] | tuple[JobStatus, ...]) -> list[str]:
    """Statuses as a SQL parameter (``status = ANY(%s)``)."""
    return sorted(str(s) for s in statuses)
