"""What every command shares: global options, settings, the database, JSON output and progress bars."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from photoscout.config import Settings, load_settings
from photoscout.database import Database

console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


@dataclass
class _State:
    home: Path | None = None
    database_url: str | None = None
    verbose: bool = False


STATE = _State()


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def settings() -> Settings:
    overrides: dict[str, Any] = {}
    if STATE.database_url:
        overrides["database_url"] = STATE.database_url
    return load_settings(STATE.home, **overrides)


@contextmanager
def open_db() -> Iterator[tuple[Settings, Database]]:
    s = settings()
    s.ensure_dirs()
    with Database(s) as db:
        yield s, db


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


class RateColumn(ProgressColumn):
    """Items per second over the recent window (Rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f}/s" if speed else "–/s", style="cyan")


class RichProgress:
    """Adapts the library's Progress protocol to a Rich progress bar on stderr."""

    def __init__(self, unit: str = "photos") -> None:
        self.unit = unit
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TextColumn("eta"), TimeRemainingColumn(), TimeElapsedColumn(),
            console=err_console, transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=self._progress.tasks[-1].completed)
        self._task = self._progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)
