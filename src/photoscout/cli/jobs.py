"""``photoscout jobs`` and ``photoscout worker``: restartable background jobs, local or on Celery workers."""

from __future__ import annotations

import os
import socket
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, RichProgress, console, open_db, print_json
from photoscout.errors import PhotoscoutError
from photoscout.jobs import store
from photoscout.jobs.runner import Worker

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


def _run_local(db: Any, settings: Any, job_id: int | None, json_out: bool) -> None:
    worker = Worker(db, settings)
    if json_out:
        worker.run(job_id)
        return
    total = store.get_job(db, job_id)["total_items"] if job_id else None
    with RichProgress() as progress:
        progress.phase(f"job {job_id}" if job_id else "jobs", total)
        if job_id:
            progress.advance(store.get_job(db, job_id)["progress"]["done"])
        worker.run(job_id, progress=progress)


def _dispatch(settings: Any, db: Any, job_id: int, executor: str, tasks: int, json_out: bool) -> None:
    if executor == "local":
        _run_local(db, settings, job_id, json_out)
    elif executor == "celery":
        from photoscout.jobs.celery_app import enqueue

        enqueue(settings, job_id, tasks)
        if not json_out:
            console.print(f"job {job_id}: {tasks} task(s) queued for Celery workers (photoscout worker); "
                          f"follow it with: photoscout jobs status {job_id} --watch")
    else:
        raise PhotoscoutError(f"unknown executor {executor!r}: use local or celery")


@jobs_app.command("start")
def start_cmd(
    kind: Annotated[str, typer.Argument(help="embed, detect, ocr, caption or features (matches the model's type).")],
    model: Annotated[str, typer.Option("--model", help="NAME@VERSION of the model to run.")],
    sample: Annotated[int | None, typer.Option("--sample", help="Only a seeded random subset of N photos.")] = None,
    sample_fraction: Annotated[float | None, typer.Option("--sample-fraction", help="Subset as a fraction.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subset.")] = 0,
    missing_only: Annotated[bool, typer.Option("--missing-only", help="Only photos without its output.")] = False,
    executor: ExecutorOpt = "local",
    tasks: Annotated[int, typer.Option(help="Celery tasks to queue (workers sharing the job).")] = 2,
    no_run: Annotated[bool, typer.Option("--no-run", help="Create the job only (run later: jobs run).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Create a job over all photos, a sample, or those missing the model's output; then run it."""
    with open_db() as (settings, db):
        job = store.create_job(db, kind=kind, model_ref=model, missing_only=missing_only, sample_count=sample,
                               sample_fraction=sample_fraction, seed=seed, unit_size=settings.job_unit_size)
        if not json_out:
            console.print(f"job {job['id']}: {job['total_items']} photos in {job['units']} units")
        if not no_run and job["status"] != "completed":
            _dispatch(settings, db, job["id"], executor, tasks, json_out)
        job = store.get_job(db, job["id"])
    print_json(job) if json_out else _show(job)


@jobs_app.command("run")
def run_cmd(job: Annotated[int | None, typer.Argument(help="Job id (default: every job with work left).")] = None,
            json_out: JsonOption = False) -> None:
    """Run jobs in this process (the local executor) until no work is left. Ctrl-C: resume later."""
    with open_db() as (settings, db):
        _run_local(db, settings, job, json_out)
        rows = [store.get_job(db, job)] if job else store.list_jobs(db, limit=10)
    if json_out:
        print_json(rows)
    else:
        for r in rows:
            _show(r)


@jobs_app.command("list")
def list_cmd(json_out: JsonOption = False) -> None:
    """Recent jobs with progress."""
    with open_db() as (_settings, db):
        rows = store.list_jobs(db)
    if json_out:
        print_json(rows)
        return
    table = Table("id", "kind", "model", "status", "done", "failed", "rate/s", "eta s", "created")
    for r in rows:
        p = r["progress"]
        table.add_row(str(r["id"]), r["kind"], r["model"], r["status"], f"{p['done']}/{p['total']}",
                      str(r["failed_items"]), str(p["rate_per_s"] or "-"), str(p["eta_s"] if p["eta_s"] is not None
                                                                              else "-"), r["created_at"][:19])
    console.print(table)


@jobs_app.command("status")
def status_cmd(job: JobArg, watch: Annotated[bool, typer.Option("--watch", help="Follow until it ends.")] = False,
               json_out: JsonOption = False) -> None:
    """One job's progress (rate, ETA, units in flight, retries); --watch draws a progress bar until it ends."""
    with open_db() as (_settings, db):
        row = store.get_job(db, job)
        if watch and not json_out:
            with RichProgress() as progress:
                progress.phase(f"job {job}", row["total_items"])
                seen = 0
                while True:
                    row = store.get_job(db, job)
                    progress.advance(row["progress"]["done"] - seen)
                    seen = row["progress"]["done"]
                    if row["status"] in ("completed", "failed", "cancelled"):
                        break
                    time.sleep(1.0)
    print_json(row) if json_out else _show(row)


@jobs_app.command("resume")
def resume_cmd(job: JobArg, executor: ExecutorOpt = "local",
               tasks: Annotated[int, typer.Option(help="Celery tasks to queue.")] = 2,
               json_out: JsonOption = False) -> None:
    """Resume a cancelled, failed or interrupted job where it stopped."""
    with open_db() as (settings, db):
        store.set_status(db, job, "resume")
        _dispatch(settings, db, job, executor, tasks, json_out)
        row = store.get_job(db, job)
    print_json(row) if json_out else _show(row)


@jobs_app.command("cancel")
def cancel_cmd(job: JobArg, json_out: JsonOption = False) -> None:
    """Stop handing out the job's work (outputs computed so far are kept; resume continues)."""
    with open_db() as (_settings, db):
        row = store.set_status(db, job, "cancelled")
    print_json(row) if json_out else _show(row)


@jobs_app.command("retry-failed")
def retry_failed_cmd(job: JobArg, executor: ExecutorOpt = "local", json_out: JsonOption = False) -> None:
    """Put the photos that failed back into the job and run them again."""
    with open_db() as (settings, db):
        store.retry_failed(db, job)
        _dispatch(settings, db, job, executor, 1, json_out)
        row = store.get_job(db, job)
    print_json(row) if json_out else _show(row)


def worker_command(
    concurrency: Annotated[int, typer.Option(help="Tasks at once in this process (1: models load once).")] = 1,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run a Celery worker: takes part in jobs queued with --executor celery. Needs the database URL, the broker URL
    (broker_url) and the photos (path_map rewrites paths) and models on this machine."""
    from photoscout.cli.common import settings as load
    from photoscout.jobs import celery_app

    s = load()
    if s.uses_embedded_db and not s.pgdata_dir.exists():
        raise PhotoscoutError("this home has no database; set database_url to the library's PostgreSQL")
    app = celery_app.configure(s)
    app.worker_main(["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}", "--pool=solo"
                     if concurrency == 1 else "--pool=threads", "-Q", celery_app.QUEUE,
                     "-n", f"photoscout-{os.getpid()}@{socket.gethostname()}", "--without-gossip", "--without-mingle"])
