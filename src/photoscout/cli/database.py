"""``photoscout db``: the embedded server's lifecycle and where the database is."""

from __future__ import annotations

import typer

from photoscout.cli.common import JsonOption, console, open_db, print_json, settings
from photoscout.database import migrations, redact
from photoscout.database.embedded import EmbeddedServer

db_app = typer.Typer(help="The database: embedded server start/stop, status, migrations.", no_args_is_help=True)


def _server() -> EmbeddedServer:
    s = settings()
    if not s.uses_embedded_db:
        raise typer.BadParameter("a database URL is configured; the embedded server is not used")
    return EmbeddedServer(s.pgdata_dir, port=s.embedded_port, keep_running=True)


@db_app.command("status")
def db_status(json_out: JsonOption = False) -> None:
    """Where the database is, its versions and the schema migrations applied."""
    with open_db() as (s, db):
        info = db.describe()
        with db.connection() as conn:
            info["migrations_applied"] = sorted(migrations.applied(conn))
            info["migrations_pending"] = [m.version for m in migrations.pending(conn)]
        info["pgdata"] = str(s.pgdata_dir) if s.uses_embedded_db else None
    if json_out:
        print_json(info)
    else:
        for k, v in info.items():
            console.print(f"[bold]{k}[/bold]: {v}", highlight=False)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server and leave it running (commands then skip the ~0.3 s start)."""
    server = _server()
    server.acquire()
    console.print(f"embedded PostgreSQL running: {redact(server.url('photoscout'))}", highlight=False)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server cleanly (fast shutdown: committed work is on disk)."""
    server = _server()
    if not server.is_running():
        console.print("embedded PostgreSQL is not running")
        return
    server.stop_server()
    console.print("embedded PostgreSQL stopped")


@db_app.command("url")
def db_url() -> None:
    """Print a connection URL (e.g. for psql) while the embedded server runs."""
    s = settings()
    if s.database_url:
        typer.echo(redact(s.database_url))
        return
    typer.echo(_server().url("photoscout"))
