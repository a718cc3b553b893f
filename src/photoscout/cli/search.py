"""``photoscout search``: text, image and OCR-text search with filters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from photoscout.cli.common import STATE, JsonOption, console, core, err_console, find_server, output
from photoscout.common.errors import InvalidParameter
from photoscout.search.filters import Filters
from photoscout.search.results import MAX_PAGE


def search_command(
    text: Annotated[str | None, typer.Argument(help=(
        "What to look for, e.g. 'receipt from the hardware store'. Words in double quotes must be printed in the "
        "photo (OCR text): 'receipt \"total due\"'. 'rating>=4' and 'tag:holiday' filter by XMP rating and keywords."
    ))] = None,
    image: Annotated[Path | None, typer.Option("--image", help="Find photos like this one.")] = None,
    limit: Annotated[str, typer.Option("--limit", "-n", help=(
        "Number of results, or 'all': every result (with --sort date, every match), fetched a page at a time."))]
    = "20",
    sort: Annotated[str, typer.Option("--sort", help=(
        "relevance (best first), date (only the matches, newest first) or -date (only the matches, oldest first); "
        "what matches is the version's calibrated cutoff (see 'eval show')."))] = "relevance",
    widen: Annotated[int, typer.Option("--widen", help="Lower the cutoff of what matches this many steps "
                                       "(more matches).")] = 0,
    category: Annotated[list[str] | None, typer.Option(help="Only this category (or few-shot class); repeat for any "
                                                    "of several.")] = None,
    not_category: Annotated[list[str] | None, typer.Option("--not-category", help=(
        "Leave out this category or class (also '-screenshots' or 'not:documents' in the query); repeatable."))]
    = None,
    after: Annotated[str | None, typer.Option(help="Taken on or after YYYY-MM-DD.")] = None,
    before: Annotated[str | None, typer.Option(help="Taken before YYYY-MM-DD.")] = None,
    path: Annotated[list[str] | None, typer.Option("--path", help="Only under this folder; repeat for any of "
                                                    "several.")] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Camera make or model contains this; repeat for any of "
                                                     "several.")] = None,
    has_text: Annotated[bool, typer.Option("--has-text", help="Only photos with OCR text.")] = False,
    rating: Annotated[str | None, typer.Option(help="Only photos rated at least this (XMP, -1 to 5; also "
                                               "'rating>=4' in the query).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only photos with this keyword (XMP; also 'tag:holiday' in "
                                                  "the query); repeat for all of several.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help=(
        "Leave out photos with this word printed in them or as a keyword (also '-word' or '-\"total due\"' in the "
        "query); repeatable."))] = None,
    model: Annotated[str | None, typer.Option("--model", help="Query this NAME@VERSION instead of the active one.")]
    = None,
    no_server: Annotated[bool, typer.Option("--no-server", help="Search in this process even when a "
                                            "'photoscout serve' of this home is running.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Search the library by meaning, by a photo, and by the text inside photos. When a 'photoscout serve' of the
    same home runs on this machine, the question goes to it (warm: tens of milliseconds)."""
    filters = Filters.parse(category=category, after=after, before=before, folder=path, camera=camera,
                            has_text=has_text, rating=rating, tag=tag, not_category=not_category, exclude=exclude)
    if image is not None and not image.is_file():
        raise InvalidParameter(f"{image}: no such file", "image")
    wanted = _limit(limit)
    server = None if no_server or image is not None or STATE.database_url else find_server()
    if server is not None:  # the same question, in the API's words: the same answer, the same fields
        def ask(size: int, offset: int) -> dict[str, Any]:
            assert server is not None
            return server.call("GET", "/search", {"q": text, "limit": size, "offset": offset, "model": model,
                                                  "sort": sort, "widen": widen, **filters.params()})
        result = _pages(ask, wanted)
        err_console.print(f"asked the running server at {server.url}", highlight=False)
    else:
        with core() as app:
            result = _pages(lambda size, offset: app.search(
                text, image=str(image) if image else None, limit=size, offset=offset, filters=filters, model=model,
                sort=sort, widen=widen).as_dict(), wanted)

    def render() -> None:
        via = f", via {server.url}" if server is not None else ""
        counted = f" of {result['matches']} matches" if result.get("matches") is not None else ""
        order = {"date": ", newest first", "-date": ", oldest first"}.get(result.get("sort", ""), "")
        table = Table("#", Column("photo", overflow="fold"), "taken" if order else "score",
                      Column("why", overflow="fold"),
                      title=f"{len(result['results'])} results{counted}{order} ({result['model'] or 'filters only'}, "
                            f"{result['timings_ms']['total']:.0f} ms{via})", title_justify="left")
        for i, h in enumerate(result["results"], 1):
            table.add_row(str(i), h["path"], (h["taken_at"] or "")[:10] if order else f"{h['score']:.4f}",
                          "; ".join(h["why"]))
        console.print(table)
        if result.get("next_offset") is not None:
            console.print(f"more: --limit {len(result['results']) + 20} or --limit all", highlight=False)

    output(result, json_out, render)


def _limit(value: str) -> int | None:
    """``--limit``: a number of results, or 'all' (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        wanted = int(value)
    except ValueError:
        raise InvalidParameter(f"--limit takes a number or 'all', not {value!r}", "limit") from None
    if wanted < 1:
        raise InvalidParameter("--limit must be at least 1", "limit")
    return wanted


def _pages(ask: Callable[[int, int], dict[str, Any]], wanted: int | None) -> dict[str, Any]:
    """The results a page at a time (``MAX_PAGE`` each) until ``wanted`` (None: all) or the last page; one answer
    in the shape of a page (its ``next_offset`` says where more would start)."""
    first = ask(min(wanted or MAX_PAGE, MAX_PAGE), 0)
    answer = {**first, "results": list(first["results"])}
    while answer["next_offset"] is not None and (wanted is None or len(answer["results"]) < wanted):
        page = ask(min((wanted or MAX_PAGE * 4) - len(answer["results"]), MAX_PAGE), answer["next_offset"])
        answer["results"] += page["results"]
        answer["next_offset"] = page["next_offset"]
        answer["timings_ms"] = {"total": answer["timings_ms"]["total"] + page["timings_ms"]["total"]}
    answer["limit"] = len(answer["results"])
    answer.pop("next", None)  # the API's URL of its next page: the CLI says where the next page starts
    return answer
