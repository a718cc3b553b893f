"""The decision log: a human-readable Markdown file, ``data/decision-log.md``, with one entry per evaluation,
promotion (or refusal), rollback, status change and prune - what was decided, when, why, on what evidence.
The registry's ``model_status_history`` table is the machine-readable half of the same story."""

from __future__ import annotations

import fcntl
from datetime import UTC, datetime
from pathlib import Path

from photoscout.common.errors import EnvironmentProblem
from photoscout.config import Settings

FILE_NAME = "decision-log.md"
HEADER = ("# photoscout decision log\n\nEvery evaluation, promotion, refusal, rollback and prune, newest last. "
          "Written by photoscout; `photoscout models history` has the same status changes.\n")


def path(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def append(settings: Settings, title: str, lines: list[str] | None = None, *, table: str | None = None) -> Path:
    """Append one entry (a heading with the UTC time, bullet lines, an optional Markdown table)."""
    target = path(settings)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts = [f"\n## {now} · {title}\n"]
    if lines:
        parts.append("\n" + "\n".join(f"- {line}" for line in lines) + "\n")
    if table:
        parts.append("\n" + table.rstrip() + "\n")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # several processes (CLI, workers) may write
            if f.tell() == 0:
                f.write(HEADER)
            f.write("".join(parts))
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the decision log {target}: {exc.strerror} (the decision itself "
                                 f"is in the database: {title})") from exc
    return target


def read(settings: Settings, *, tail: int = 0) -> str:
    """The log (empty when nothing was decided yet); with ``tail``, only the last ``tail`` entries."""
    target = path(settings)
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    if tail and text:
        _header, *entries = text.split("\n## ")
        text = "## " + "\n## ".join(entries[-tail:])
    return text
