"""What every command shares: global options, the core entry (``Photoscout``), "JSON or table" output, progress
bars, and core errors in the CLI's own words."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

from photoscout.common.errors import InvalidParameter, PhotoscoutError

if TYPE_CHECKING:
    from photoscout.app import Photoscout
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


@contextmanager
def core() -> Iterator[Photoscout]:
    """The core for one command (the database opens on first use and closes at the end)."""
    from photoscout.app import Photoscout  # imported when a command needs the core, not for --help or --version

    overrides: dict[str, Any] = {"database_url": STATE.database_url} if STATE.database_url else {}
    with Photoscout.open(STATE.home, **overrides) as app:
        yield app


def find_server() -> Any:
    """A running ``photoscout serve`` of this home on this machine (``photoscout.client.Server``), or None."""
    from photoscout import client
    from photoscout.config import load_settings

    return client.find(load_settings(STATE.home))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def output(data: Any, json_out: bool, render: Callable[[], None]) -> None:
    """The one "JSON or table" path: ``--json`` prints ``data`` for scripts, else ``render()`` draws it for
    people."""
    if json_out:
        print_json(data)
    else:
        render()


# The core's parameter names, as this CLI spells them (others: --name-with-dashes).
OPTIONS = {"sample_count": "--sample", "set_files": "--set", "text": "TEXT", "image": "--image"}


def option(param: str) -> str:
    return OPTIONS.get(param, "--" + param.replace("_", "-"))


def message(exc: PhotoscoutError) -> str:
    """A core error in the CLI's words: the options it is about are named."""
    if isinstance(exc, InvalidParameter) and exc.params:
        return f"{exc} ({', '.join(option(p) for p in exc.params)})"
    return str(exc)


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


@contextmanager
def progress_bar(enabled: bool = True, unit: str = "photos") -> Iterator[RichProgress | None]:
    """A progress bar on stderr while the block runs; none when ``enabled`` is false (``--json``, ``--no-progress``)."""
    if not enabled:
        yield None
        return
    with RichProgress(unit) as progress:
        yield progress
