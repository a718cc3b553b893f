"""``photoscout albums``: smart albums, searches saved under a name that stay current."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table

from photoscout.cli.common import JsonOption, console, core, output
from photoscout.search.filters import Filters

albums_app = typer.Typer(help="Smart albums: a search (query, filters, order) saved under a name; it stays current "
                              "as photos arrive and as the active model changes.", no_args_is_help=True)


@albums_app.command("save")
def save_cmd(
    name: Annotated[str, typer.Argument(help="The album's name, e.g. 'receipts 2024'.")],
    text: Annotated[str, typer.Argument(help="The search, as 'photoscout search' takes it ('' for filters only).")],
    category: Annotated[list[str] | None, typer.Option(help="Only this category or class; repeatable.")] = None,
    not_category: Annotated[list[str] | None, typer.Option("--not-category", help="Leave this category out; "
                                                           "repeatable.")] = None,
    after: Annotated[str | None, typer.Option(help="Taken on or after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Taken before YYYY-MM-DD.")] = None,
    path: Annotated[list[str] | None, typer.Option("--path", help="Only under this folder; repeatable.")] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Camera make or model contains this; repeatable.")]
    = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only photos with this keyword; repeatable.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Leave out photos with this word printed "
                                                      "or as a keyword; repeatable.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="date (newest first), -date or relevance.")] = "date",
    replace: Annotated[bool, typer.Option("--replace", help="Change an existing album of this name.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Save a search as a smart album; it holds the search's matches whenever it is looked at."""
    filters = Filters.parse(category=category, after=after, before=before, folder=path, camera=camera, tag=tag,
                            not_category=not_category, exclude=exclude)
    with core() as app:
        album = app.album_save(name, text, filters=filters, sort=sort, replace=replace)
    output(album, json_out, lambda: console.print(f"album {album['name']!r}: {album['count']} photos now",
                                                  highlight=False))


@albums_app.command("list")
def list_cmd(json_out: JsonOption = False) -> None:
    """Every album and how many photos it holds now."""
    with core() as app:
        rows = app.albums()

    def render() -> None:
        table = Table("album", Column("search", overflow="fold"), "order", "photos")
        for r in rows:
            search = " ".join([r["query"], *(f"{k}={v}" for k, v in r["filters"].items())]).strip()
            table.add_row(r["name"], search, r["sort"], str(r["count"]) if r["count"] is not None else r["error"])
        console.print(table)

    output(rows, json_out, render)


@albums_app.command("show")
def show_cmd(name: Annotated[str, typer.Argument(help="The album's name.")],
             limit: Annotated[int, typer.Option("--limit", "-n", help="Photos to list (at most 500).")] = 20,
             offset: Annotated[int, typer.Option("--offset", help="Start after this many.")] = 0,
             json_out: JsonOption = False) -> None:
    """What an album holds now (a page of it)."""
    with core() as app:
        album, result = app.album(name, limit=limit, offset=offset)
    answer = {**album, **result.as_dict()}

    def render() -> None:
        table = Table("#", Column("photo", overflow="fold"), "taken", title=f"{album['name']}: {album['count']} "
                      f"photos ({album['sort']})", title_justify="left")
        for i, h in enumerate(result.hits, offset + 1):
            table.add_row(str(i), h.path, (h.taken_at or "")[:10])
        console.print(table)

    output(answer, json_out, render)


@albums_app.command("delete")
def delete_cmd(name: Annotated[str, typer.Argument(help="The album's name.")], json_out: JsonOption = False) -> None:
    """Forget an album (its photos are not touched)."""
    with core() as app:
        app.album_delete(name)
    output({"deleted": name}, json_out, lambda: console.print(f"album {name!r} deleted", highlight=False))
