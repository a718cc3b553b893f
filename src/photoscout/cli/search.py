"""``photoscout search``: text, image and OCR-text search with filters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from photoscout.cli.common import STATE, JsonOption, console, core, err_console, find_server, output
from photoscout.common.errors import InvalidParameter
from photoscout.search.filters import Filters


def search_command(
    text: Annotated[str | None, typer.Argument(help=(
        "What to look for, e.g. 'receipt from the hardware store'. Words in double quotes must be printed in the "
        "photo (OCR text): 'receipt \"total due\"'. 'rating>=4' and 'tag:holiday' filter by XMP rating and keywords."
    ))] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Find photos like this one.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Number of results.")] = 20,
    category: Annotated[str | None, typer.Option(help="Only this category (or few-shot class).")] = None,
    after: Annotated[str | None, typer.Option(help="Taken on or after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Taken before YYYY-MM-DD.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Only under this folder.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera make or model contains this.")] = None,
    has_text: Annotated[bool, typer.Option("--has-text", help="Only photos with OCR text.")] = False,
    rating: Annotated[str | None, typer.Option(help="Only photos rated at least this (XMP, -1 to 5; also "
                                               "'rating>=4' in the query).")] = None,
    tag: Annotated[str | None, typer.Option(help="Only photos with this keyword (XMP; also 'tag:holiday' in the "
                                            "query).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Query this NAME@VERSION instead of the active one.")]
    = None,
    no_server: Annotated[bool, typer.Option("--no-server", help="Search in this process even when a "
                                            "'photoscout serve' of this home is running.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Search the library by meaning, by a photo, and by the text inside photos. When a 'photoscout serve' of the
    same home runs on this machine, the question goes to it (warm: tens of milliseconds)."""
    filters = Filters.parse(category=category, after=after, before=before, folder=path, camera=camera,
                            has_text=has_text, rating=rating, tag=tag)
    if image is not None and not image.is_file():
        raise InvalidParameter(f"{image}: no such file", "image")
    server = None if no_server or image is not None or STATE.database_url else find_server()
    if server is not None:  # the same question, in the API's words: the same answer, the same fields
        result = server.call("GET", "/search", {"q": text, "limit": limit, "model": model, **filters.params()})
        err_console.print(f"asked the running server at {server.url}", highlight=False)
    else:
        with core() as app:
            result = app.search(text, image=str(image) if image else None, limit=limit, filters=filters,
                                model=model).as_dict()

    def render() -> None:
        via = f", via {server.url}" if server is not None else ""
        table = Table("#", Column("photo", overflow="fold"), "score", Column("why", overflow="fold"),
                      title=f"{len(result['results'])} results ({result['model'] or 'filters only, newest first'}, "
                            f"{result['timings_ms']['total']:.0f} ms{via})", title_justify="left")
        for i, h in enumerate(result["results"], 1):
            table.add_row(str(i), h["path"], f"{h['score']:.4f}", "; ".join(h["why"]))
        console.print(table)

    output(result, json_out, render)
