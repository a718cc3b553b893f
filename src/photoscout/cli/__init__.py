"""The ``photoscout`` command: a thin face over the core (``photoscout.app.Photoscout``). Each command parses its
arguments, calls the core and prints the result (a table for people, ``--json`` for scripts). A
:class:`PhotoscoutError` becomes a one-line message and an exit status: 0 done, 1 done with problems (e.g.
unreadable files), 2 bad input, 3 database unavailable, 4 the promotion gate refused."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import rich.markup
import typer

from photoscout import __version__
from photoscout.cli import common
from photoscout.cli.albums import albums_app
from photoscout.cli.classes import classes_app
from photoscout.cli.database import db_app
from photoscout.cli.evaluation import eval_app
from photoscout.cli.jobs import jobs_app, worker_command
from photoscout.cli.library import index_command, photos_app, status_command
from photoscout.cli.maintenance import disk_command, doctor_command, prune_command
from photoscout.cli.models import models_app
from photoscout.cli.search import search_command
from photoscout.cli.serve import serve_command
from photoscout.cli.service import roots_app, run_command, service_app
from photoscout.common.errors import InvalidParameter, PhotoscoutError

app = typer.Typer(
    name="photoscout",
    help="Local-first photo library search: PostgreSQL + pgvector, versioned models, restartable jobs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"photoscout {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    home: Annotated[Path | None, typer.Option(
        "--home", help="Home directory (data/ and models/); default $PHOTOSCOUT_HOME or ~/.local/share/photoscout.",
        file_okay=False)] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="Use this PostgreSQL (with pgvector) instead of the embedded server.",
        envvar=None)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Local-first photo library search."""
    common.STATE.home = home
    common.STATE.database_url = database_url
    common.STATE.verbose = verbose
    common.configure_logging(verbose)


app.command("index")(index_command)
app.command("status")(status_command)
app.command("search")(search_command)
app.add_typer(photos_app, name="photos")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(classes_app, name="classes")
app.add_typer(albums_app, name="albums")
app.add_typer(jobs_app, name="jobs")
app.add_typer(eval_app, name="eval")
app.command("worker")(worker_command)
app.command("disk")(disk_command)
app.command("prune")(prune_command)
app.command("doctor")(doctor_command)
app.command("serve")(serve_command)
app.command("run")(run_command)
app.add_typer(service_app, name="service")
app.add_typer(roots_app, name="roots")


config_app = typer.Typer(help="Show the effective settings (file, environment and defaults merged); 'config set' "
                                "changes them.", invoke_without_command=True)
app.add_typer(config_app, name="config")


@config_app.command("set")
def config_set(
    pairs: Annotated[list[str], typer.Argument(help="NAME=VALUE, e.g. quiet_hours=22:00-07:00 threads=2.")],
    json_out: common.JsonOption = False,
) -> None:
    """Change settings in <home>/config.toml (checked first: a bad value changes nothing). A running service
    picks up the schedule and quiet hours at once; the rest applies when it starts again."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidParameter(f"{pair!r}: give NAME=VALUE")
        values[name.strip()] = value.strip()
    with common.core() as core:
        config = core.update_settings(values)
    data = {k: config[k] for k in values}
    def render() -> None:
        for key, value in data.items():
            common.console.print(f"[bold]{key}[/bold] = {value!r}", highlight=False)

    common.output(data, json_out, render)


@config_app.callback()
def config_command(ctx: typer.Context, json_out: common.JsonOption = False) -> None:
    """Show the effective settings (file, environment and defaults merged)."""
    if ctx.invoked_subcommand is not None:
        return
    with common.core() as core:
        data = core.config()

    def render() -> None:
        for key, value in data.items():
            common.console.print(f"[bold]{key}[/bold] = {value!r}", highlight=False)

    common.output(data, json_out, render)


class Terminated(BaseException):
    """SIGTERM (a service manager stopping us, ``kill``): unwound like Ctrl-C, so the database is released and an
    embedded server whose last user this was stops cleanly."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except Terminated:
        common.err_console.print("terminated; everything committed so far is kept, run the command again to resume")
        sys.exit(143)
    except PhotoscoutError as exc:
        common.err_console.print(f"[red]error:[/red] {rich.markup.escape(common.message(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.err_console.print("interrupted; everything committed so far is kept, run the command again to resume")
        sys.exit(130)
