"""``photoscout run`` (the always-on service without a web server), ``photoscout service status|install`` and
``photoscout roots list|forget``: the library as a service of a home NAS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, console, core, err_console, output

service_app = typer.Typer(help="The always-on service: its status, and a systemd unit to run it at boot.",
                          no_args_is_help=True)
roots_app = typer.Typer(help="The folders the library is made of (what the service watches).", no_args_is_help=True)


def run_command() -> None:
    """Run the library's always-on service without a web server (a NAS with no browser use): watch the roots, rescan
    them on a schedule, run the active models on new photos as jobs, resume what a kill interrupted. Stops on
    Ctrl-C or SIGTERM, keeping what was committed. One service per library: refused while serve or run holds it."""
    from photoscout.service.lock import ServiceLock
    from photoscout.service.runner import Service

    with core() as app, ServiceLock(app.settings, "run"):
        app.db  # noqa: B018 - open (and migrate) the database before saying it runs
        service = Service(app, mode="run").start()
        console.print(f"photoscout is watching the library of {app.settings.home} (Ctrl-C stops it)")
        try:
            while service.alive():
                time.sleep(0.5)
        finally:
            service.stop()


@service_app.command("status")
def service_status(json_out: JsonOption = False) -> None:
    """Whether the service runs (serve or run), what it watches and is doing, roots held back, its settings."""
    from photoscout.service.runner import describe

    with core() as app:
        data = describe(app)
        data["roots"] = app.roots()
    output(data, json_out, lambda: _print_status(data))


def _print_status(data: dict[str, Any]) -> None:
    holder, state = data["holder"], data["state"] or {}
    if data["running"]:
        console.print(f"[green]running[/green]: photoscout {holder.get('mode')} (pid {holder.get('pid')}"
                      + (f", {holder['url']}" if holder.get("url") else "") + f"): {state.get('activity', '?')}",
                      highlight=False)
    else:
        console.print("[yellow]not running[/yellow] (start it: photoscout serve, photoscout run, or "
                      "photoscout service install)")
    table = Table("root", "watched", "photos", "last scan", "state", title="roots", title_justify="left")
    for r in data["roots"]:
        table.add_row(r["path"], (state.get("watch") or {}).get(r["path"], "–"), str(r["photos_seen"]),
                      f"{r['last_scan_at']:%Y-%m-%d %H:%M}" if r["last_scan_at"] else "–",
                      "held back" if r["held_back"] else ("not there" if not r["exists"] else "ok"))
    console.print(table)
    for r in data["roots"]:
        if r["held_back"]:
            err_console.print(f"[yellow]held back:[/yellow] {r['message']}", highlight=False, soft_wrap=True)
    for issue in state.get("issues", []):
        err_console.print(f"[yellow]warning:[/yellow] {issue['path']}: {issue['message']}", highlight=False)
    console.print("settings: " + ", ".join(f"{k}={v!r}" for k, v in data["settings"].items()), highlight=False,
                  soft_wrap=True)


@service_app.command("install")
def service_install(
    mode: Annotated[str, typer.Option(help="serve (web UI and service) or run (headless).")] = "serve",
    user: Annotated[str | None, typer.Option(help="Run as this user (default: you).")] = None,
    user_unit: Annotated[bool, typer.Option("--user-unit", help="A unit for 'systemctl --user' (no root).")]
    = False,
    host: Annotated[str, typer.Option(help="serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="serve: port.", min=1, max=65535)] = 8765,
    path: Annotated[Path | None, typer.Option(help="Write the unit here (default: /etc/systemd/system/ or "
                                                    "~/.config/systemd/user/).")] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the unit instead of writing it.")] = False,
) -> None:
    """Write a systemd unit that starts the service at boot as the library's owner, restarts it when it fails and
    stops it cleanly (SIGTERM: committed work kept). Then: systemctl daemon-reload && systemctl enable --now
    photoscout."""
    from photoscout.common.errors import EnvironmentProblem
    from photoscout.service import unit

    with core() as app:
        home = app.settings.home
    text = unit.render(home, mode=mode, user=user, host=host, port=port, system=not user_unit)
    if print_only:
        typer.echo(text, nl=False)
        return
    target = path or unit.default_path(system=not user_unit)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write {target}: {exc.strerror} (use --print, or --user-unit)") from exc
    ctl = "systemctl --user" if user_unit else "systemctl"
    console.print(f"wrote {target}; start it now and at every boot: {ctl} daemon-reload && {ctl} enable --now "
                  f"{unit.UNIT_NAME}", highlight=False, soft_wrap=True)


@roots_app.command("list")
def roots_list(json_out: JsonOption = False) -> None:
    """Every root: its photos, last scan, and whether it is held back (looks unmounted) and why."""
    with core() as app:
        data = app.roots()
    def render() -> None:
        table = Table("root", "photos", "last scan", "state", title="roots", title_justify="left")
        for r in data:
            table.add_row(r["path"], str(r["photos_seen"]),
                          f"{r['last_scan_at']:%Y-%m-%d %H:%M}" if r["last_scan_at"] else "–",
                          f"held back: {r['held_back']}" if r["held_back"] else ("not there" if not r["exists"]
                                                                                  else "ok"))
        console.print(table)
    output(data, json_out, render)


@roots_app.command("forget")
def roots_forget(root: Annotated[str, typer.Argument(help="A root as 'roots list' names it.")]) -> None:
    """Stop watching a root; its photos stay in the library (index it again to add it back)."""
    with core() as app:
        app.forget_root(root)
    console.print(f"{root} is no longer a root of this library (its photos stay)", highlight=False)
