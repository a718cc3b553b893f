"""``photoscout eval``: run a model version against curated evaluation sets, list and show stored results, read the
decision log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, RichProgress, console, err_console, open_db, print_json
from photoscout.errors import PhotoscoutError
from photoscout.evaluation import metrics, runner, sets
from photoscout.registry import decisions, lifecycle

eval_app = typer.Typer(help="Evaluation sets: measure a model version before promoting it.", no_args_is_help=True)


def default_sets(settings: Any) -> list[Path]:
    """``<home>/evalsets/*.toml`` (the user's curated sets)."""
    folder = settings.home / "evalsets"
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


@eval_app.command("run")
def run_cmd(
    model: Annotated[str, typer.Option("--model", help="The version to evaluate, NAME@vX.Y.Z.")],
    set_files: Annotated[list[Path] | None, typer.Option(
        "--set", help="Evaluation set file (TOML; repeatable). Default: every <home>/evalsets/*.toml.")] = None,
    compare_active: Annotated[bool, typer.Option(
        "--compare-active", help="Also evaluate the active version, side by side, differences marked.")] = False,
    k: Annotated[int | None, typer.Option("--k", min=1, max=100, help="Override the set file's k.")] = None,
    no_resources: Annotated[bool, typer.Option(
        "--no-resources", help="Skip the throughput / peak-memory measurement (a few seconds per model).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Precision@k, recall@k, mAP and nDCG@k per set and overall; search latency p50/p95; embedding throughput and
    peak memory; embedding and index size. Stored in the database and appended to the decision log."""
    from photoscout.search.engine import SearchEngine

    with open_db() as (settings, db):
        files = set_files or default_sets(settings)
        if not files:
            raise PhotoscoutError(f"no evaluation sets: give --set FILE (the repository ships "
                                  f"evalsets/photos-dev.toml) or put set files in {settings.home / 'evalsets'}")
        candidate = lifecycle.get(db, model)
        baseline = lifecycle.active(db, candidate.type, candidate.purpose) if compare_active else None
        if compare_active and baseline is None:
            raise PhotoscoutError(f"there is no active {candidate.type} model to compare with")
        if baseline is not None and baseline.id == candidate.id:
            baseline = None
            err_console.print(f"{candidate.ref} is the active model; nothing to compare with")
        engine = SearchEngine(db, settings)
        out = []
        for file in files:
            suite = sets.load(file)
            if k is not None:
                suite.k = k
                suite.depth = max(suite.depth, k)
            sets.resolve(db, suite)
            for w in suite.warnings:
                err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
            refs = [candidate.ref] + ([baseline.ref] if baseline else [])
            if json_out:
                reports = runner.evaluate_all(db, settings, suite, refs, engine=engine,
                                              measure_resources=not no_resources)
            else:
                with RichProgress("searches") as progress:
                    reports = runner.evaluate_all(db, settings, suite, refs, engine=engine, progress=progress,
                                                  measure_resources=not no_resources)
            cand, base = reports[0], (reports[1] if len(reports) > 1 else None)
            runner.log_evaluation(settings, cand, base, settings.promotion_max_drop)
            rows = runner.comparison_rows(cand, base, settings.promotion_max_drop)
            out.append({"suite": suite.name, "file": str(file), "candidate": cand.as_dict(),
                        "baseline": base.as_dict() if base else None, "comparison": rows})
            if not json_out:
                _print(cand, base, rows)
        if not json_out:
            console.print(f"stored; decision log: {decisions.path(settings)}", highlight=False)
    if json_out:
        print_json(out)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _resource(r: runner.EvalReport, key: str, scale: float) -> str:
    v = r.resources.get(key)
    return "-" if v is None else (f"{v / scale:.1f}" if scale != 1 else str(v))


def comparison_table(rows: list[dict[str, Any]], k: int, title: str) -> Table:
    """Rows from ``runner.compare`` as a Rich table: value (difference), green better, red ✗ a drop beyond the
    gate's threshold."""
    table = Table("set", *[metrics.label(m, k) for m in metrics.METRICS], title=title)
    for r in rows:
        cells = []
        for m in metrics.METRICS:
            if "baseline" not in r:
                cells.append(_fmt(r["candidate"][m]))
                continue
            d = r["delta"][m]
            bad = m in r["regressed"]
            style = "red" if bad else ("green" if d > 0.005 else ("yellow" if d < -0.005 else ""))
            text = f"{_fmt(r['baseline'][m])}→{_fmt(r['candidate'][m])} ({d:+.3f}){' ✗' if bad else ''}"
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(r["set"], *cells)
    return table


def _print(cand: runner.EvalReport, base: runner.EvalReport | None, rows: list[dict[str, Any]]) -> None:
    title = f"{cand.suite}: " + (f"active {base.model} → {cand.model}" if base else cand.model)
    console.print(comparison_table(rows, cand.k, title))
    facts = Table("", cand.model, *([base.model] if base else []), title="latency and resources")
    for label, key in (("search p50 (ms)", "p50"), ("search p95 (ms)", "p95")):
        facts.add_row(label, str(cand.latency[key]), *([str(base.latency[key])] if base else []))
    for label, key, scale in (("embedding photos/s", "photos_per_s", 1), ("peak memory (MB)", "peak_rss_mb", 1),
                              ("embeddings (MB)", "embedding_bytes", 1e6), ("index (MB)", "index_bytes", 1e6)):
        facts.add_row(label, _resource(cand, key, scale), *([_resource(base, key, scale)] if base else []))
    facts.add_row("coverage", f"{cand.coverage:.1%}", *([f"{base.coverage:.1%}"] if base else []))
    facts.add_row("session", cand.session, *([base.session] if base else []))
    console.print(facts)
    if base:
        console.print("(value (difference); ✗ = a drop beyond the promotion gate's threshold)", style="dim")


@eval_app.command("list")
def list_cmd(model: Annotated[str | None, typer.Option("--model", help="Only this version.")] = None,
             json_out: JsonOption = False) -> None:
    """Stored evaluation sessions, newest first (overall metrics)."""
    with open_db() as (_settings, db):
        rows = runner.sessions(db, lifecycle.get(db, model) if model else None)
    if json_out:
        print_json(rows)
        return
    table = Table("when", "session", "model", "sets", "P@k", "R@k", "mAP", "nDCG@k", "p95 ms", "coverage")
    for r in rows:
        m = r["metrics"]
        table.add_row(r["created_at"][:19], r["session"], r["model"], r["suite"],
                      *[_fmt(m[x]) for x in metrics.METRICS], str(r["latency"].get("p95", "")),
                      f"{r['coverage']:.0%}")
    console.print(table)


@eval_app.command("show")
def show_cmd(session: Annotated[str, typer.Argument(help="A session id from 'eval list'.")],
             json_out: JsonOption = False) -> None:
    """One evaluation session: every set and query."""
    with open_db() as (_settings, db):
        rows = runner.session_rows(db, session)
        if not rows:
            raise PhotoscoutError(f"no evaluation session {session!r} (see 'photoscout eval list')")
        with db.connection() as conn:
            queries = {run_id: [(q, m) for q, m in conn.execute(
                "SELECT query, metrics FROM eval_query_results WHERE run_id = %s ORDER BY query", (run_id,))]
                for run_id in [r["id"] for r in rows]}
    if json_out:
        print_json([{**r, "created_at": r["created_at"].isoformat(),
                     "queries": [{"query": q, **m} for q, m in queries[r["id"]]]} for r in rows])
        return
    first = rows[0]
    table = Table("set / query", "relevant", *[metrics.label(m, first["k"]) for m in metrics.METRICS],
                  title=f"{first['model']} on {first['suite']} ({first['created_at']:%Y-%m-%d %H:%M})")
    for r in rows:
        table.add_row(f"[bold]{r['set_name']}[/]", "", *[_fmt(r["metrics"][m]) for m in metrics.METRICS])
        for q, m in queries[r["id"]]:
            table.add_row(f"  {q}", str(m.get("relevant", "")), *[_fmt(m[x]) for x in metrics.METRICS])
    console.print(table)


@eval_app.command("log")
def log_cmd(tail: Annotated[int, typer.Option("--tail", help="Only the last N entries (0: all).")] = 0) -> None:
    """Print the decision log (data/decision-log.md): evaluations, promotions, refusals, rollbacks, prunes."""
    from photoscout.cli.common import settings as load

    text = decisions.read(load())
    if not text:
        console.print("the decision log is empty")
        return
    if tail:
        head, *entries = text.split("\n## ")
        text = "\n## ".join(entries[-tail:])
        text = "## " + text
    typer.echo(text)
