"""``photoscout disk``, ``prune``: what takes the disk, and reclaiming it on the user's word."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, console, core, output


def mb(n: float | int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f} MB"


def disk_command(json_out: JsonOption = False) -> None:
    """Disk use per model version (rows, database bytes, vector index, artifacts), thumbnails and previews, the
    database as a whole, and the free space of the volumes holding the home and the database."""
    with core() as app:
        data = app.disk()
    output(data, json_out, lambda: _print_disk(data))


def _print_disk(data: dict[str, Any]) -> None:
    table = Table("model version", "type", "status", "rows", "tables", "vector index", "artifacts", "total",
                  title=f"{data['photos']} photos", title_justify="left")
    for v in data["versions"]:
        table.add_row(v["model"], v["type"], v["status"], f"{sum(v['rows'].values()):,}", mb(v["table_bytes"]),
                      mb(v["index_bytes"]), mb(v["artifact_bytes"]), mb(v["total_bytes"]))
    console.print(table)
    files, db = data["files"], data["database"]
    console.print(f"thumbnails: {files['thumbnails']['files']:,} files, {mb(files['thumbnails']['bytes'])}; "
                  f"previews: {files['previews']['files']:,} files, {mb(files['previews']['bytes'])}", highlight=False)
    line = f"database: {mb(db['bytes'])} (library tables {mb(db['library_bytes'])})"
    if "data_dir_bytes" in db:
        line += f"; data folder with its log {mb(db['data_dir_bytes'])}"
    console.print(line, highlight=False)
    for vol in data["volumes"]:
        console.print(f"free on the volume of {vol['path']}: {vol['free_bytes'] / 1e9:,.1f} GB of "
                      f"{vol['total_bytes'] / 1e9:,.1f} GB", highlight=False)


def prune_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Also prune this version although it is the rollback target or in staging (repeatable; "
                        "never the active one).")] = None,
    missing_for: Annotated[float | None, typer.Option(
        "--missing-for", help="Also delete photos whose files have been missing for more than this many days "
                              "(never by default).", min=0)] = None,
    compact: Annotated[bool, typer.Option(
        "--compact", help="Rewrite the touched tables so the file system gets the space back (searches wait "
                          "while each table is rewritten).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the decision log).")] = "pruned by user",
    json_out: JsonOption = False,
) -> None:
    """Reclaim disk: outputs, indexes and files of deprecated versions (never the active one nor the rollback
    target unless named), leftovers of disabled models, thumbnails and previews no photo uses, and photos missing for
    longer than --missing-for. --dry-run lists exactly what would go; the bytes freed are measured."""
    with core() as app:
        chosen = app.prune_plan(include=model, missing_for_days=missing_for)
        if dry_run or chosen.empty:
            output({"dry_run": True, **chosen.as_dict()}, json_out, lambda: _print_plan(chosen.as_dict()))
            return
        if not yes and not json_out:
            _print_plan(chosen.as_dict())
            if not typer.confirm("Remove all of this?"):
                raise typer.Exit(1)
        result = app.prune(chosen, reason=reason, compact=compact)
    output(result.as_dict(), json_out, lambda: console.print(
        f"freed {mb(result.freed_bytes)} on disk (measured before and after: {mb(result.footprint_before)} → "
        f"{mb(result.footprint_after)})" + ("" if result.compacted else
                                            f"; {mb(result.deleted_row_bytes)} of deleted rows are reusable inside "
                                            "the database (--compact gives them back to the disk)"),
        highlight=False))


def _print_plan(p: dict[str, Any]) -> None:
    if not (p["versions"] or p["artifacts"] or p["thumbnails"] or p["previews"] or p["missing_photos"]):
        console.print("nothing to prune")
    for v in p["versions"]:
        console.print(f"version {v['model']} ({v['why']}): {v['rows']:,} rows, {mb(v['bytes'])}", highlight=False)
    for a in p["artifacts"]:
        console.print(f"artifacts of disabled {a['model']}: {a['path']} ({mb(a['bytes'])})", highlight=False)
    if p["thumbnails"]:
        console.print(f"{len(p['thumbnails']):,} thumbnails no photo uses ({mb(p['thumbnail_bytes'])})")
    if p["previews"]:
        console.print(f"{len(p['previews']):,} previews no photo uses ({mb(p['preview_bytes'])})")
    if p["missing_photos"]:
        console.print(f"{len(p['missing_photos']):,} photos missing for long (their rows and outputs)")
    for k in p["kept"]:
        console.print(f"kept {k['model']}: {k['why']}", style="dim", highlight=False)
    if p["bytes"]:
        console.print(f"about {mb(p['bytes'])} in all", highlight=False)


def doctor_command(json_out: JsonOption = False) -> None:
    """Is everything well? The database and its versions, migrations, one active model per type, every active
    version covered and indexed, artifacts, orphaned outputs, stuck jobs, the broker, disk space, thumbnails,
    vanished photos, the device models run on. Each finding with the command that fixes it. Exit 0 only when
    healthy (no error, no warning)."""
    with core() as app:
        report = app.health()
    output(report, json_out, lambda: _print_findings(report["findings"], report["healthy"]))
    if not report["healthy"]:
        raise typer.Exit(1)


def _print_findings(findings: list[dict[str, Any]], ok: bool) -> None:
    style = {"error": "red", "warning": "yellow", "info": "dim"}
    for f in findings:
        console.print(f"[{style[f['severity']]}]{f['severity']:>7}[/] {f['check']}: {f['message']}",
                      highlight=False)
        if f["fix"] and f["severity"] != "info":
            console.print(f"{'':>9}fix: {f['fix']}", highlight=False)
    console.print("healthy" if ok else "not healthy", style="green" if ok else "red")
