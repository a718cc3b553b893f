"""``photoscout eval``: run a model version against curated evaluation sets, list and show stored results, read the
decision log."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, console, core, err_console, output, progress_bar
from photoscout.evaluation import metrics

if TYPE_CHECKING:
    from photoscout.evaluation.results import EvalReport

eval_app = typer.Typer(help="Evaluation sets: measure a model version before promoting it.", no_args_is_help=True)


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
    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False)

    with core() as app, progress_bar(not json_out, "searches") as progress:
        runs = app.evaluate(model, set_files, compare_active=compare_active, k=k, measure_resources=not no_resources,
                            progress=progress, warn=warn)
        log = app.decision_log_path()

    def render() -> None:
        for r in runs:
            _print(r.candidate, r.baseline, r.comparison)
        console.print(f"stored; decision log: {log}", highlight=False)

    output([r.as_dict() for r in runs], json_out, render)


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def _resource(r: EvalReport, key: str, scale: float) -> str:
    v = r.resources.get(key)
    return "-" if v is None else (f"{v / scale:.1f}" if scale != 1 else str(v))


def comparison_table(rows: list[dict[str, Any]], k: int, title: str) -> Table:
    """Rows from ``report.compare`` as a Rich table: value (difference), green better, red ✗ a drop beyond the
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


def _print(cand: EvalReport, base: EvalReport | None, rows: list[dict[str, Any]]) -> None:
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
    with core() as app:
        rows = app.evaluations(model)

    def render() -> None:
        table = Table("when", "session", "model", "sets", "P@k", "R@k", "mAP", "nDCG@k", "p95 ms", "coverage")
        for r in rows:
            m = r["metrics"]
            table.add_row(r["created_at"][:19], r["session"], r["model"], r["suite"],
                          *[_fmt(m[x]) for x in metrics.METRICS], str(r["latency"].get("p95", "")),
                          f"{r['coverage']:.0%}")
        console.print(table)

    output(rows, json_out, render)


@eval_app.command("show")
def show_cmd(session: Annotated[str, typer.Argument(help="A session id from 'eval list'.")],
             json_out: JsonOption = False) -> None:
    """One evaluation session: every set and query."""
    with core() as app:
        rows = app.evaluation(session)

    def render() -> None:
        first = rows[0]
        table = Table("set / query", "relevant", *[metrics.label(m, first["k"]) for m in metrics.METRICS],
                      title=f"{first['model']} on {first['suite']} ({first['created_at']:%Y-%m-%d %H:%M})")
        for r in rows:
            table.add_row(f"[bold]{r['set_name']}[/]", "", *[_fmt(r["metrics"][m]) for m in metrics.METRICS])
            for q in r["queries"]:
                table.add_row(f"  {q['query']}", str(q.get("relevant", "")), *[_fmt(q[x]) for x in metrics.METRICS])
        console.print(table)
        cut = (first.get("resources") or {}).get("cutoff")
        if cut:  # what --sort date keeps (search/matches.py)
            console.print(f"cutoff of what matches: z >= {cut['z']} (F1 {cut['f1']:.3f}, precision "
                          f"{cut['precision']:.3f}, recall {cut['recall']:.3f} over these queries)", highlight=False)

    output([{**r, "created_at": r["created_at"].isoformat()} for r in rows], json_out, render)


@eval_app.command("log")
def log_cmd(tail: Annotated[int, typer.Option("--tail", help="Only the last N entries (0: all).")] = 0) -> None:
    """Print the decision log (data/decision-log.md): evaluations, promotions, refusals, rollbacks, prunes."""
    with core() as app:
        text = app.decision_log(tail)
    if not text:
        console.print("the decision log is empty")
        return
    typer.echo(text)


@eval_app.command("mark")
def mark_cmd(query: Annotated[str, typer.Argument(help="The search the photo was a result of.")],
             photo: Annotated[int, typer.Argument(help="The photo's id.")],
             not_relevant: Annotated[bool, typer.Option("--not-relevant", help="Mark it not relevant (✗).")] = False,
             forget: Annotated[bool, typer.Option("--forget", help="Forget the mark.")] = False,
             json_out: JsonOption = False) -> None:
    """Mark a result relevant (✓) or not (✗) for a query, as the page's buttons do: the marks build your own
    evaluation set (marked.toml) and can teach the search ('eval learn')."""
    with core() as app:
        result = app.mark(query, photo, None if forget else not not_relevant)
    output(result, json_out, lambda: console.print(
        f"{query!r}: {result['relevant']} relevant, {result['not_relevant']} not relevant", highlight=False))


@eval_app.command("learn")
def learn_cmd(query: Annotated[str, typer.Argument(help="A query with at least two results marked relevant.")],
              forget: Annotated[bool, typer.Option("--forget", help="Forget what it taught instead.")] = False,
              json_out: JsonOption = False) -> None:
    """Make a query's marks a few-shot class of its words: the next search for them ranks the photos like the
    ✓ ones (and unlike the ✗ ones) higher."""
    with core() as app:
        if forget:
            app.forget_learned(query)
            result: dict[str, Any] = {"forgotten": query}
        else:
            result = app.learn(query)
    output(result, json_out, lambda: console.print(
        f"forgot what {query!r} taught" if forget else
        f"learned {query!r} from {result['relevant']} ✓ and {result['not_relevant']} ✗ ({result['model']})",
        highlight=False))


@eval_app.command("learned")
def learned_cmd(json_out: JsonOption = False) -> None:
    """The queries taught by marks."""
    with core() as app:
        rows = app.learned_queries()

    def render() -> None:
        table = Table("query", "✓", "✗", "model", "updated")
        for r in rows:
            table.add_row(r["query"], str(r["relevant"]), str(r["not_relevant"]), r["model"], r["updated_at"][:16])
        console.print(table)

    output(rows, json_out, render)
