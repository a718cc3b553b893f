"""``photoscout db``: the embedded server's lifecycle and where the database is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from photoscout.cli.common import JsonOption, console, core, output, progress_bar

db_app = typer.Typer(help="The database: embedded server start/stop, status, migrations, backup and restore.",
                     no_args_is_help=True)


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


@db_app.command("dump")
def db_dump(
    file: Annotated[Path, typer.Argument(help="The backup file to write (must not exist).")],
    thumbnails: Annotated[bool, typer.Option("--thumbnails", help="Include the thumbnails too.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Back the library up into one file: the database (a consistent snapshot; searches and jobs go on), the
    decision log, your evaluation sets and the artifacts of every model version that is not disabled."""
    with core() as app, progress_bar(not json_out, "files") as progress:
        info = app.dump(file, thumbnails=thumbnails, progress=progress)
    output(info, json_out, lambda: console.print(
        f"backed up {info['photos']:,} photos and {info['embeddings']:,} embeddings ({len(info['models'])} model "
        f"versions) into {info['file']} ({info['bytes'] / 1e6:,.1f} MB)", highlight=False))


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A backup written by 'db dump'.")],
    json_out: JsonOption = False,
) -> None:
    """Restore a backup into a fresh home (or an empty database): the same library, searchable at once (every
    index is rebuilt). Also the way to a newer PostgreSQL: dump with the old photoscout, restore with the new."""
    with core() as app, progress_bar(not json_out, "files") as progress:
        info = app.restore(file, progress=progress)
    output(info, json_out, lambda: console.print(
        f"restored {info['restored']['photos']:,} photos and {info['restored']['embeddings']:,} embeddings from "
        f"{info['file']} (made {info['created_at'][:19]} by photoscout {info['photoscout']})", highlight=False))


@db_app.command("url")
def db_url() -> None:
    """Print a connection URL (e.g. for psql) while the embedded server runs."""
    with core() as app:
        typer.echo(app.db_url())
