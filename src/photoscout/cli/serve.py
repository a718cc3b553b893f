"""``photoscout serve``: the HTTP API and web UI over one warm core."""

from __future__ import annotations

from typing import Annotated

import typer

from photoscout.cli.common import console, core


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback needs a token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[str | None, typer.Option(
        envvar="PHOTOSCOUT_TOKEN", help="Require this token on every request (default on loopback: none; "
        "elsewhere: <home>/data/api-token, made on first use).")] = None,
    no_service: Annotated[bool, typer.Option("--no-service", help="Only serve: do not watch the library, rescan it "
                                                                  "or run models on new photos by itself.")] = False,
) -> None:
    """Serve the web UI and the JSON API (/api/v1, schema at /api/v1/openapi.json) until Ctrl-C or SIGTERM, with the
    library's always-on service beside it: new photos are found and made searchable by themselves (see 'photoscout
    run'). Models load at start, so the first search is fast; 'photoscout search' uses this server when it runs.
    One server per library: a second one is refused and names the first."""
    from photoscout import web  # FastAPI and uvicorn are imported only here

    def ready(url: str, used_token: str | None) -> None:
        console.print(f"photoscout is at [bold]{url}[/]" + (" (token required: see <home>/data/api-token or "
                                                             "your --token)" if used_token else ""))

    with core() as app:
        web.serve(app, host=host, port=port, token=token, on_ready=ready, with_service=not no_service)
