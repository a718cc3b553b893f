"""``photoscout search``: text, image and OCR-text search with filters."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from photoscout.cli.common import JsonOption, console, core, output
from photoscout.errors import InvalidParameter
from photoscout.search.query import Filters


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidParameter(f"{value!r} is not a date (use YYYY-MM-DD)", name) from exc


def search_command(
    text: Annotated[str | None, typer.Argument(help="What to look for, e.g. 'receipt from the hardware store'.")]
    = None,
    image: Annotated[Path | None, typer.Option("--image", help="Find photos like this one.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Number of results.")] = 20,
    category: Annotated[str | None, typer.Option(help="Only this category (or few-shot class).")] = None,
    after: Annotated[str | None, typer.Option(help="Taken on or after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Taken before YYYY-MM-DD.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Only under this folder.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera make or model contains this.")] = None,
    has_text: Annotated[bool, typer.Option("--has-text", help="Only photos with OCR text.")] = False,
    model: Annotated[str | None, typer.Option("--model", help="Query this NAME@VERSION instead of the active one.")]
    = None,
    json_out: JsonOption = False,
) -> None:
    """Search the library by meaning, by a photo, and by the text inside photos."""
    filters = Filters(category=category, after=_date(after, "after"), before=_date(before, "before"),
                      path=path, camera=camera, has_text=has_text)
    if image is not None and not image.is_file():
        raise InvalidParameter(f"{image}: no such file", "image")
    with core() as app:
        result = app.search(text, image=str(image) if image else None, limit=limit, filters=filters, model=model)

    def render() -> None:
        table = Table("#", Column("photo", overflow="fold"), "score", Column("why", overflow="fold"),
                      title=f"{len(result.hits)} results ({result.model}, {result.timings_ms['total']:.0f} ms)",
                      title_justify="left")
        for i, h in enumerate(result.hits, 1):
            table.add_row(str(i), h.path, f"{h.score:.4f}", "; ".join(h.why))
        console.print(table)

    output(result.as_dict(), json_out, render)
