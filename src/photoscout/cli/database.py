"""``photoscout db``: the embedded server's lifecycle and where the database is."""

from __future__ import annotations

from typing import Annotated

import typer

from photoscout.cli.common import JsonOption, console, core, output

db_app = typer.Typer(help="The database: embedded server start/stop, status, migrations.", no_args_is_help=True)


@db_app.command("status")
def db_status(json_out: JsonOption = False) -> None:
    """Where the database is, its versions and the schema migrations applied."""
    with core() as app:
        info = app.db_status()

    def render() -> None:
        for k, v in info.items():
            console.print(f"[bold]{k}[/bold]: {v}", highlight=False)

    output(info, json_out, render)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server and leave it running (commands then skip the ~0.3 s start)."""
    with core() as app:
        url = app.db_start()
    console.print(f"embedded PostgreSQL running: {url}", highlight=False)


@db_app.command("stop")
def db_stop(force: Annotated[bool, typer.Option(
        "--force", help="Stop it even while other photoscout commands use it.")] = False) -> None:
    """Stop the embedded server cleanly (fast shutdown: committed work is on disk). Refused while other photoscout
    commands use it, unless --force."""
    with core() as app:
        stopped = app.db_stop(force=force)
    console.print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL is not running")


@db_app.command("url")
def db_url() -> None:
    """Print a connection URL (e.g. for psql) while the embedded server runs."""
    with core() as app:
        typer.echo(app.db_url())
