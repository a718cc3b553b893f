"""``photoscout classes``: few-shot classes built from example photos."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, console, core, output

classes_app = typer.Typer(help="Few-shot classes: mark example photos, the library is classified.",
                          no_args_is_help=True)


@classes_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="Class name, e.g. 'my car'.")],
    examples: Annotated[list[str], typer.Argument(help="Example photos (ids or paths).")],
    threshold: Annotated[float | None, typer.Option(help="Cosine similarity a photo needs (default: model's).")]
    = None,
    json_out: JsonOption = False,
) -> None:
    """Create or update a class from example photos; every photo close enough gets it as a category."""
    with core() as app:
        result = app.add_class(name, examples, threshold)
    output(result, json_out, lambda: console.print(
        f"class {name!r}: {len(result['examples'])} examples, threshold {result['threshold']:.2f}, "
        f"{result['members']} photos in it", highlight=False))


@classes_app.command("list")
def list_cmd(json_out: JsonOption = False) -> None:
    """The few-shot classes and how many photos each holds."""
    with core() as app:
        rows = app.classes()

    def render() -> None:
        table = Table("class", "model", "threshold", "examples", "photos")
        for r in rows:
            table.add_row(r["name"], r["model"], f"{r['threshold']:.2f}", str(len(r["example_ids"])),
                          str(r["members"]))
        console.print(table)

    output(rows, json_out, render)


@classes_app.command("remove")
def remove_cmd(name: Annotated[str, typer.Argument(help="Class name.")]) -> None:
    """Delete a class; photos lose it as a category."""
    with core() as app:
        app.remove_class(name)
    console.print(f"class {name!r} removed")
