"""Library commands: index, status, photos list/show."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from photoscout.cli.common import JsonOption, console, core, err_console, output, progress_bar

if TYPE_CHECKING:
    from photoscout.jobs.enrich import EnrichSummary
    from photoscout.library.scanner import ScanSummary

photos_app = typer.Typer(help="List and inspect photos in the library.", no_args_is_help=True)

MAX_ERRORS_SHOWN = 20


def index_command(
    paths: Annotated[list[Path], typer.Argument(help="Folders (or files) to scan; sub-folders are included.")],
    json_out: JsonOption = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Do not draw a progress bar.")] = False,
    no_models: Annotated[bool, typer.Option("--no-models", help="Only scan; do not run the active models.")]
    = False,
    retry_errors: Annotated[bool, typer.Option(
        "--retry-errors", help="Read files recorded as unreadable again, even if unchanged (those that failed "
                               "because of the disk, not the file, are always read again).")] = False,
    repair_thumbnails: Annotated[bool, typer.Option(
        "--repair-thumbnails", help="Read again unchanged photos whose thumbnail file is gone.")] = False,
    confirm_missing: Annotated[bool, typer.Option(
        "--confirm-missing", help="The photos not found were really deleted: mark them missing even where the "
                                  "folder looks unmounted (gone, empty, or half its photos gone at once).")] = False,
) -> None:
    """Scan folders into the library, then run the active models (embeddings, categories, OCR, faces) on photos
    that lack their outputs. New, changed, moved and missing photos are tracked; unreadable files are listed.

    A folder that held photos and is now gone, empty, or missing more than half of them at once (an unmounted
    share?) marks nothing missing: it is "held back" until it is whole again or --confirm-missing says the photos
    were really deleted. A file still being copied is taken by the next index.

    Exit status: 0 all good, 1 finished but some files could not be read (see `photos list --errors`) or a
    folder was held back.
    """
    with core() as app, progress_bar(not (no_progress or json_out)) as progress:
        summary, enriched = app.index(paths, run_models=not no_models, retry_errors=retry_errors,
                                      repair_thumbnails=repair_thumbnails, confirm_missing=confirm_missing,
                                      progress=progress)
    data = {**summary.as_dict(), "models": asdict(enriched) if enriched else None}
    output(data, json_out, lambda: _print_index(summary, enriched))
    if not summary.ok:
        raise typer.Exit(1)


def _print_index(s: ScanSummary, e: EnrichSummary | None) -> None:
    rate = f" ({s.processed / s.elapsed_s:,.1f} photos/s)" if s.processed and s.elapsed_s else ""
    console.print(
        f"Scanned {', '.join(s.roots)} in {s.elapsed_s:.1f}s{rate}: {s.found} files (photos, RAW, videos), "
        f"{s.new} new, {s.updated} changed, {s.moved} moved, {s.unchanged} unchanged, "
        f"{s.restored} back from missing, {s.missing} now missing, {s.errors} unreadable.",
        highlight=False, soft_wrap=True,
    )
    if s.error_files:
        table = Table(Column("unreadable file", overflow="fold"), "reason",
                      title=f"{s.errors} file(s) could not be read", title_justify="left")
        for err in s.error_files[:MAX_ERRORS_SHOWN]:
            table.add_row(err["path"], err["reason"])
        err_console.print(table)
        if s.errors > MAX_ERRORS_SHOWN:
            err_console.print(f"... and {s.errors - MAX_ERRORS_SHOWN} more: photoscout photos list --errors")
    for issue in s.issues:
        err_console.print(f"[yellow]warning:[/yellow] {issue['path']}: {issue['message']}", highlight=False,
                          soft_wrap=True)
    for held in s.held_back:
        err_console.print(f"[yellow]held back:[/yellow] {held['message']}", highlight=False, soft_wrap=True)
    if s.settling:
        err_console.print(f"{s.settling} file(s) still being written (changed while read, or too fresh to decode): "
                          "the next index takes them", highlight=False)
    if e is None:
        return
    if not e.models:
        console.print("No active models: photos are stored but not searchable yet "
                      "(run: photoscout models install-builtin).")
    elif not e.photos:
        console.print(f"Models ({', '.join(e.models)}): every photo is up to date.", soft_wrap=True)
    else:
        rate = f" ({e.photos / e.elapsed_s:,.1f} photos/s)" if e.elapsed_s else ""
        console.print(f"Ran {', '.join(e.models)} on {e.photos} photos in {e.elapsed_s:.1f}s{rate}; OCR skipped on "
                      f"{e.ocr_skipped} photos without text; {len(e.failed)} failures.", soft_wrap=True,
                      highlight=False)
        for f in e.failed[:MAX_ERRORS_SHOWN]:
            err_console.print(f"[yellow]model run failed:[/yellow] photo {f['photo_id']}: {f['reason']}",
                              highlight=False)


def status_command(json_out: JsonOption = False) -> None:
    """Counts: photos, missing, unreadable files, embeddings per model version, jobs, the last scan."""
    with core() as app:
        data = app.status()
    output(data, json_out, lambda: _print_status(data))


def _print_status(data: dict[str, Any]) -> None:
    console.print(f"[bold]{data['photos']}[/bold] photos ({data['library_bytes'] / 1e9:.2f} GB), "
                  f"{data['missing']} missing, {data['errors']} unreadable", highlight=False)
    if data["errors_by_kind"]:
        console.print("  unreadable: " + ", ".join(f"{k} {v}" for k, v in data["errors_by_kind"].items()))
    if data["embeddings"]:
        table = Table("model", "version", "status", "embeddings", title="embeddings", title_justify="left")
        for e in data["embeddings"]:
            table.add_row(e["name"], e["version"], e["status"], str(e["embeddings"]))
        console.print(table)
    else:
        console.print("embeddings: none yet")
    console.print("jobs: " + (", ".join(f"{k} {v}" for k, v in data["jobs"].items()) or "none"))
    if data["last_scan"]:
        ls = data["last_scan"]
        console.print(f"last scan #{ls['id']} {ls['status']} at {ls['started_at']:%Y-%m-%d %H:%M}: "
                      f"{', '.join(ls['roots'])}", highlight=False)
    for root in data.get("roots", []):
        if root["held_back"]:
            console.print(f"[yellow]held back:[/yellow] {root['message']}", highlight=False, soft_wrap=True)
    db_info = data["database"]
    console.print(f"database: PostgreSQL {db_info['server_version']}, pgvector {db_info['pgvector_version']}"
                  f" ({'embedded' if db_info['embedded'] else db_info['url']})", highlight=False)


@photos_app.command("list")
def photos_list(
    errors: Annotated[bool, typer.Option("--errors", help="Only files that could not be read, with the reason.")]
    = False,
    missing: Annotated[bool, typer.Option("--missing", help="Only photos whose file is gone.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Every row, whatever its status.")] = False,
    folder: Annotated[Path | None, typer.Option("--folder", help="Only photos under this folder.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many first.", min=0)] = 0,
    json_out: JsonOption = False,
) -> None:
    """List photos (default: readable ones), unreadable files (--errors) or missing ones (--missing)."""
    which = "error" if errors else "missing" if missing else "all" if all_ else "ok"
    with core() as app:
        rows = app.photos(which=which, limit=limit, offset=offset, folder=str(folder) if folder else None)

    def render() -> None:
        if which == "error":
            table = Table("id", Column("path", overflow="fold"), "reason")
            for r in rows:
                table.add_row(str(r["id"]), r["path"], r["error"] or "")
        else:
            table = Table("id", Column("path", overflow="fold"), "status", "taken", "size", "camera")
            for r in rows:
                taken = (r["taken_at"] or "")[:16].replace("T", " ")
                size = f"{r['width']}x{r['height']}" if r["width"] else ""
                camera = " ".join(x for x in (r["camera_make"], r["camera_model"]) if x)
                table.add_row(str(r["id"]), r["path"], r["status"], taken, size, camera)
        console.print(table)
        if len(rows) == limit:
            console.print(f"(first {limit} from offset {offset}; use --limit/--offset for more)")

    output(rows, json_out, render)


@photos_app.command("show")
def photos_show(
    photo: Annotated[str, typer.Argument(help="Photo id or file path.")],
    json_out: JsonOption = False,
) -> None:
    """Everything stored about one photo."""
    with core() as app:
        row = app.photo(photo)

    def render() -> None:
        for key, value in row.items():
            console.print(f"[bold]{key:>16}[/bold]  {value}", highlight=False)

    output(row, json_out, render)
