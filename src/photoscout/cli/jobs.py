"""``photoscout jobs`` and ``photoscout worker``: restartable background jobs, local or on Celery workers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, RichProgress, console, core, output, progress_bar

if TYPE_CHECKING:
    from photoscout.jobs.executors import Dispatched

jobs_app = typer.Typer(help="Background jobs: compute a model's outputs for all, missing or sampled photos.",
                       no_args_is_help=True)
JobArg = Annotated[int, typer.Argument(help="Job id.")]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or celery (workers).")]


def _show(job: dict[str, Any]) -> None:
    p = job["progress"]
    rate = f"{p['rate_per_s']:.1f}/s" if p["rate_per_s"] else "-"
    eta = f"{p['eta_s']:.0f}s" if p["eta_s"] is not None else "-"
    console.print(f"job {job['id']} {job['kind']} {job['model']} [bold]{job['status']}[/bold]: {p['done']}/{p['total']}"
                  f" photos ({p['fraction']:.0%}), {job['failed_items']} failed, rate {rate}, eta {eta}, "
                  f"units {job['units_done']}/{job['units']} done, {job['units_leased']} in flight, "
                  f"{job['retried_units']} retried", highlight=False, soft_wrap=True)
    if job["last_error"]:
        console.print(f"  last error: {job['last_error']}", highlight=False)


def _print_estimate(photos: int, e: dict[str, Any]) -> None:
    took = f"about {e['seconds'] / 60:,.1f} min at {e['photos_per_s']:.1f} photos/s ({e['time_basis']})" \
        if e["seconds"] is not None else f"time unknown ({e['time_basis']})"
    console.print(f"{e['model']} on {photos:,} photos: about {e['bytes'] / 1e6:,.1f} MB in the database "
                  f"({e['bytes_per_photo']:,.0f} bytes per photo, {e['bytes_basis']}; "
                  f"{e['free_bytes'] / 1e9:,.1f} GB free{'' if e['fits'] else ': NOT ENOUGH'}); {took}",
                  highlight=False, soft_wrap=True)


def _queued(job_id: int, dispatched: Dispatched | None) -> None:
    if dispatched is not None and dispatched.executor == "celery":
        console.print(f"job {job_id}: {dispatched.tasks} task(s) queued for Celery workers (photoscout worker); "
                      f"follow it with: photoscout jobs status {job_id} --watch")


@jobs_app.command("start")
def start_cmd(
    kind: Annotated[str, typer.Argument(help="embed, detect, ocr, caption or features (matches the model's type).",
                                        metavar="KIND")],
    model: Annotated[str, typer.Option("--model", help="NAME@VERSION of the model to run.")],
    sample: Annotated[int | None, typer.Option("--sample", help="Only a seeded random subset of N photos.")] = None,
    sample_fraction: Annotated[float | None, typer.Option("--sample-fraction", help="Subset as a fraction.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    missing_only: Annotated[bool, typer.Option("--missing-only", help="Only photos without its output.")] = False,
    executor: ExecutorOpt = "local",
    tasks: Annotated[int, typer.Option(help="Celery tasks to queue (workers sharing the job).")] = 2,
    no_run: Annotated[bool, typer.Option("--no-run", help="Create the job only (run later: jobs run).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only say how many photos it covers and what it will cost (disk, time).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Create a job over all photos, a sample, or those missing the model's output; then run it."""
    if dry_run:
        with core() as app:
            planned = app.plan_job(kind, model, missing_only=missing_only, sample_count=sample,
                                   sample_fraction=sample_fraction, seed=seed)
        output(planned, json_out, lambda: _print_estimate(planned["photos"], planned["estimate"]))
        return
    with core() as app:
        job = app.create_job(kind, model, missing_only=missing_only, sample_count=sample,
                             sample_fraction=sample_fraction, seed=seed)
        dispatched = None
        if not json_out:
            console.print(f"job {job['id']}: {job['total_items']} photos in {job['units']} units")
        if not no_run:
            with progress_bar(not json_out and executor == "local") as progress:
                job, dispatched = app.run_job(job["id"], executor=executor, tasks=tasks, progress=progress)

    def render() -> None:
        _queued(job["id"], dispatched)
        _show(job)

    output(job, json_out, render)


@jobs_app.command("run")
def run_cmd(job: Annotated[int | None, typer.Argument(help="Job id (default: every job with work left).")] = None,
            json_out: JsonOption = False) -> None:
    """Run jobs in this process (the local executor) until no work is left. Ctrl-C: resume later."""
    with core() as app, progress_bar(not json_out) as progress:
        rows = app.run_jobs(job, progress=progress)

    def render() -> None:
        for r in rows:
            _show(r)

    output(rows, json_out, render)


@jobs_app.command("list")
def list_cmd(json_out: JsonOption = False) -> None:
    """Recent jobs with progress."""
    with core() as app:
        rows = app.jobs()

    def render() -> None:
        table = Table("id", "kind", "model", "status", "done", "failed", "rate/s", "eta s", "created")
        for r in rows:
            p = r["progress"]
            table.add_row(str(r["id"]), r["kind"], r["model"], r["status"], f"{p['done']}/{p['total']}",
                          str(r["failed_items"]), str(p["rate_per_s"] or "-"),
                          str(p["eta_s"] if p["eta_s"] is not None else "-"), r["created_at"][:19])
        console.print(table)

    output(rows, json_out, render)


@jobs_app.command("status")
def status_cmd(job: JobArg, watch: Annotated[bool, typer.Option("--watch", help="Follow until it ends.")] = False,
               json_out: JsonOption = False) -> None:
    """One job's progress (rate, ETA, units in flight, retries); --watch draws a progress bar until it ends."""
    with core() as app:
        row = app.job(job)
        if watch and not json_out:
            with RichProgress() as progress:
                progress.phase(f"job {job}", row["total_items"])
                seen = 0
                while True:
                    row = app.job(job)
                    progress.advance(row["progress"]["done"] - seen)
                    seen = row["progress"]["done"]
                    if row["finished"]:  # the core says when a job is over (the web page stops on it too)
                        break
                    time.sleep(1.0)
    output(row, json_out, lambda: _show(row))


@jobs_app.command("resume")
def resume_cmd(job: JobArg, executor: ExecutorOpt = "local",
               tasks: Annotated[int, typer.Option(help="Celery tasks to queue.")] = 2,
               json_out: JsonOption = False) -> None:
    """Resume a cancelled, failed or interrupted job where it stopped."""
    with core() as app, progress_bar(not json_out and executor == "local") as progress:
        row, dispatched = app.resume_job(job, executor=executor, tasks=tasks, progress=progress)

    def render() -> None:
        _queued(job, dispatched)
        _show(row)

    output(row, json_out, render)


@jobs_app.command("cancel")
def cancel_cmd(job: JobArg, json_out: JsonOption = False) -> None:
    """Stop handing out the job's work (outputs computed so far are kept; resume continues)."""
    with core() as app:
        row = app.cancel_job(job)
    output(row, json_out, lambda: _show(row))


@jobs_app.command("retry-failed")
def retry_failed_cmd(job: JobArg, executor: ExecutorOpt = "local", json_out: JsonOption = False) -> None:
    """Put the photos that failed back into the job and run them again."""
    with core() as app, progress_bar(not json_out and executor == "local") as progress:
        row, dispatched = app.retry_failed(job, executor=executor, progress=progress)

    def render() -> None:
        _queued(job, dispatched)
        _show(row)

    output(row, json_out, render)


def worker_command(
    concurrency: Annotated[int, typer.Option(help="Tasks at once in this process (1: models load once).")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker: takes part in jobs queued with --executor celery. Needs the database URL, the broker URL
    (broker_url) and the photos (path_map rewrites paths) and models on this machine."""
    with core() as app:
        app.worker(concurrency=concurrency, loglevel=loglevel)
