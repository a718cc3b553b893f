"""Evaluation and promotion, end to end on real photos, real models and the embedded PostgreSQL:

install built-ins -> index a sample of photos-dev -> v2 in staging -> its job -> evaluation against the active
version on the shipped sample sets -> promote -> new photos covered by both -> rollback -> promote again ->
a random-vector version refused by the gate -> prune v1; search answering correctly at every step, every step in
the history and the decision log. Plus the metrics against hand-computed values and bad set files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoscout.app import Photoscout
from photoscout.common.errors import PhotoscoutError
from photoscout.config import Settings, load_settings
from photoscout.database import Database
from photoscout.evaluation import metrics, runner, sets
from photoscout.evaluation.report import log_evaluation
from photoscout.jobs import store
from photoscout.jobs.enrich import enrich
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.maintenance.prune import prune_model
from photoscout.registry import builtin, decisions, lifecycle
from photoscout.rollout import activation, promotion
from photoscout.search.engine import SearchEngine
from tests.conftest import DATASET, REPO, _new_database, run_cli, sample_rows

V1 = "conse-effnetl0-minilm@v1.0.0"  # the default before #14: an existing home has it active
V2 = "conse-effnetl0-minilm@v4.1.0"  # the default since: install-builtin brings it in staging
RANDOM = "random-vectors@v0.1.0"
SAMPLE_SETS = REPO / "evalsets" / "photos-dev.toml"
SAMPLE = {"laptop": 8, "cellphone": 6, "camera": 4, "headphone": 4, "pizza": 8, "strawberry": 6, "apple_pie": 4,
          "baklava": 4, "receipt": 6, "document_page": 5, "screenshot": 8, "elephant": 5, "panda": 5,
          "dalmatian": 5, "airplanes": 6, "motorbikes": 5, "car_side": 4, "face": 6, "other": 6}
LATER = {"laptop": 11, "pizza": 10}  # the first N of these labels: the ones beyond SAMPLE arrive later


# -- metrics ------------------------------------------------------------------------------------------------
def test_metrics_match_hand_computed_values() -> None:
    ranked = [1, 9, 2, 8, 3]
    relevant = {1, 2, 3, 4}
    assert metrics.precision_at(ranked, relevant, 5) == pytest.approx(3 / 5)
    assert metrics.recall_at(ranked, relevant, 5) == pytest.approx(3 / 4)
    # AP: hits at ranks 1, 3, 5 -> (1/1 + 2/3 + 3/5) / min(4, depth)
    assert metrics.average_precision(ranked, relevant, 100) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert metrics.average_precision(ranked, relevant, 3) == pytest.approx((1 + 2 / 3) / 3)
    import math

    dcg = 1 + 1 / math.log2(4) + 1 / math.log2(6)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    assert metrics.ndcg_at(ranked, relevant, 5) == pytest.approx(dcg / ideal)
    assert metrics.ndcg_at([1, 2, 3, 4], relevant, 4) == pytest.approx(1.0)
    assert metrics.query_metrics([], relevant, 10, 100) == {"precision": 0, "recall": 0, "map": 0, "ndcg": 0}
    assert metrics.percentile([5, 1, 3, 2, 4], 50) == 3 and metrics.percentile([5, 1, 3, 2, 4], 95) == 5


@pytest.mark.parametrize(("text", "message"), [
    ("sets = [", "not valid TOML"),
    ('name = "x"', "no [[sets]]"),
    ('[[sets]]\nname = "a"\nqueries = [{ text = "cat" }]', "say which photos answer it"),
    ('[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = "cat", colour = "red" }]', "unknown key(s) colour"),
    ('[[sets]]\nname = "a"\nqueries = [{ label = "cat" }]', "needs a text"),
    ('k = 0\n[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = "cat" }]', "k must be"),
    ('[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = 3 }]', "expected a string or a list"),
    ('[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = "cat" }, { text = "cat", label = "dog" }]',
     "appears twice"),
    ('[[sets]]\nname = "a"\nqueries = [{ text = "' + "x" * 1001 + '", label = "cat" }]', "1001 characters"),
    ('[[sets]]\nname = "*x"\nqueries = [{ text = "cat", label = "cat" }]', "cannot start with"),
])
def test_bad_set_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(PhotoscoutError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        sets.load(f)
    with pytest.raises(PhotoscoutError, match="no such file"):
        sets.load(tmp_path / "missing.toml")


def test_the_sample_sets_cover_the_required_categories() -> None:
    suite = sets.load(SAMPLE_SETS)
    assert {"electronics", "food", "documents", "screenshots"} <= {s.name for s in suite.sets}
    assert suite.manifest is not None and suite.manifest.is_file()  # ../shared/datasets/photos-dev/manifest.csv
    assert all(len(s.queries) >= 3 for s in suite.sets)


# -- the workflow -------------------------------------------------------------------------------------------
def _copy(rows: list[dict[str, str]], lib: Path) -> None:
    for row in rows:
        target = lib / row["file"]
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(DATASET / row["file"], target)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory, pg_server: object,
             builtin_wheels: Path) -> Iterator[tuple[Settings, Database, Path]]:
    """A home made before #14 (v1 active), upgraded: a plain install-builtin brings the new default v3.2 in staging
    (the random version too, on request), and a sample of photos-dev, indexed, in a folder named photos-dev (the
    shipped set file finds the photos by their path under it)."""
    root = Path(tmp_path_factory.mktemp("evaluation"))
    lib = root / "photos-dev"
    _copy(sample_rows(SAMPLE), lib)
    home = root / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'database_url = "{_new_database(pg_server)}"\n')  # type: ignore[arg-type]
    settings = load_settings(home)
    # Sets of 4 to 8 photos a label: one photo two ranks lower moves a set's mAP by up to 0.09 ("a motorbike" with
    # 5 relevant photos). The gate's default (0.02) is for real evaluation sets (photos-dev's: v3.2 against v1 in the
    # README); this checks the workflow with a tolerance this sample can carry. The random version stays far outside.
    settings.promotion_max_drop = {**settings.promotion_max_drop, "map": 0.05, "ndcg": 0.05}
    # Latency is timed here on whatever else the machine runs (a benchmark beside the suite doubled v4.1's p95
    # against v1's); the workflow is about quality and switching, so its latency allowance is wide.
    settings.promotion_max_latency_ratio = 4.0
    settings.ensure_dirs()
    with Database(settings) as db:
        builtin.install(db, settings, wheels_dir=builtin_wheels, refs=[V1])
        activation.activate(db, settings, V1, reason="the default of an older photoscout")
        report = Photoscout(settings, db=db).install_builtin(wheels_dir=builtin_wheels)
        assert {r["model"]: r["status"] for r in report}[V2] == "staging"
        installed = builtin.install(db, settings, wheels_dir=builtin_wheels, refs=[RANDOM])
        assert [r["status"] for r in installed] == ["staging"]
        scanner.scan(db, settings, [lib])
        assert not enrich(db, settings).failed
        yield settings, db, lib


def _precision(engine: SearchEngine, query: str, labels: set[str], k: int = 5) -> float:
    hits = engine.search(query, limit=k).hits
    return sum(1 for h in hits if Path(h.path).name.rsplit("_", 1)[0] in labels) / k


def _assert_search_works(engine: SearchEngine, model: str) -> None:
    """Search answers with the active version, and answers correctly."""
    found = engine.search("a laptop computer", limit=5)
    assert found.model == model
    assert _precision(engine, "a laptop computer", {"laptop"}) >= 0.8
    assert _precision(engine, "pizza", {"pizza"}) >= 0.8
    assert _precision(engine, "a receipt", {"receipt"}) >= 0.8


def test_the_whole_workflow(workflow: tuple[Settings, Database, Path]) -> None:
    settings, db, lib = workflow
    engine = SearchEngine(db, settings)
    _assert_search_works(engine, V1)

    # v2 in staging cannot be promoted before its job and evaluation
    with pytest.raises(promotion.PromotionRefused, match="does not cover every photo"):
        promotion.promote(db, settings, V2)
    Worker(db, settings).run(store.create_job(db, kind="embed", model_ref=V2)["id"])
    with pytest.raises(promotion.PromotionRefused, match="has not been evaluated"):
        promotion.promote(db, settings, V2)
    _assert_search_works(engine, V1)  # the job did not change what search serves

    # evaluate v2 and the active v1 on the shipped sample sets
    suite = sets.resolve(db, sets.load(SAMPLE_SETS))
    assert any("matched photos by their path" in w for w in suite.warnings)
    assert {s.name for s in suite.sets if s.usable} >= {"electronics", "food", "documents", "screenshots"}
    v2, v1 = runner.evaluate_all(db, settings, suite, [V2, V1])
    log_evaluation(settings, v2, v1, settings.promotion_max_drop)
    for r in (v1, v2):
        assert r.coverage == 1.0 and r.latency["p50"] > 0 and r.latency["p95"] >= r.latency["p50"]
        assert r.resources["photos_per_s"] > 0 and r.resources["peak_rss_mb"] > 50
        assert r.resources["embeddings"] == r.resources["embeddings"] and r.resources["embedding_bytes"] > 0
        assert r.overall["ndcg"] > 0.5  # both are real models
    with db.connection() as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT session) FROM eval_runs").fetchone()
        queries = conn.execute("SELECT count(*) FROM eval_query_results").fetchone()
    assert stored is not None and stored[1] == 2 and stored[0] == 2 * (len([s for s in v2.sets if s.queries]) + 1)
    assert queries is not None and queries[0] == 2 * sum(len(s.usable) for s in suite.sets)
    log = decisions.read(settings)
    assert f"evaluated {V2} against {V1}" in log and "| electronics |" in log

    # a later evaluation of v1 alone does not replace the one timed side by side with v2
    runner.evaluate(db, settings, suite, V1, measure_resources=False)

    # the gate passes v2; promotion switches search and categories at once
    gate = promotion.check(db, settings, V2)
    assert gate.passed, gate.problems
    assert gate.sessions == {V2: v2.session, V1: v1.session}
    promoted, _ = promotion.promote(db, settings, V2)
    assert promoted.status == "active" and lifecycle.get(db, V1).status == "deprecated"
    assert lifecycle.rollback_target(db, "embedding") == lifecycle.get(db, V1)
    _assert_search_works(engine, V2)
    with db.connection() as conn:
        differing = conn.execute(
            "SELECT count(*) FROM photos p JOIN photo_analysis a ON a.photo_id = p.id AND a.model_id = %s "
            "WHERE p.categories IS DISTINCT FROM a.categories", (promoted.id,)).fetchone()
    assert differing is not None and differing[0] == 0

    # photos added while v2 is active get vectors from v2 and from the rollback target v1
    before = len(list(lib.rglob("*.jpg")))
    _copy(sample_rows(LATER), lib)
    scanner.scan(db, settings, [lib])
    summary = enrich(db, settings)
    assert set(summary.models) >= {V1, V2} and summary.photos == len(list(lib.rglob("*.jpg"))) - before
    for ref in (V1, V2):
        assert promotion.missing_photos(db, lifecycle.get(db, ref), None) == 0

    # rollback: v1 again, at once, new photos included
    restored, replaced = activation.rollback(db, settings, "embedding", reason="test rollback")
    assert restored.ref == V1 and replaced.status == "deprecated"
    _assert_search_works(engine, V1)
    newest = engine.search("a laptop computer", limit=11).hits
    assert sum(1 for h in newest if "laptop" in h.path) >= 10  # the later laptops are found by v1 too

    # promote v2 again (its evaluation still stands), then the random version is refused by the gate
    promotion.promote(db, settings, V2, reason="second promotion")
    _assert_search_works(engine, V2)
    Worker(db, settings).run(store.create_job(db, kind="embed", model_ref=RANDOM)["id"])
    suite = sets.resolve(db, sets.load(SAMPLE_SETS))  # the library grew: the sets resolve to more photos
    bad, _active = runner.evaluate_all(db, settings, suite, [RANDOM, V2], measure_resources=False)
    assert bad.overall["ndcg"] < 0.5
    with pytest.raises(promotion.PromotionRefused) as refused:
        promotion.promote(db, settings, RANDOM)
    gate = refused.value.gate
    assert {"electronics", "food", "animals", "vehicles"} <= set(gate.regressing_sets)
    assert "electronics" in str(refused.value) and "regresses against" in str(refused.value)
    assert lifecycle.active(db, "embedding").ref == V2  # type: ignore[union-attr]
    with pytest.raises(PhotoscoutError, match="needs a reason"):
        promotion.promote(db, settings, RANDOM, force=True)
    # evaluated on a second set file afterwards (the languages), the gate judges it on both files, not the last only
    languages = sets.resolve(db, sets.load(REPO / "evalsets" / "photos-dev-languages.toml"))
    runner.evaluate_all(db, settings, languages, [RANDOM, V2], measure_resources=False)
    gate = promotion.check(db, settings, RANDOM)
    assert {"electronics", "food", "de", "fr"} <= set(gate.regressing_sets), gate.regressing_sets
    assert len(gate.sessions[RANDOM].split(", ")) == 2

    # prune v1: outputs, index and files go; the record stays; rollback to it is no longer possible
    v1_model = lifecycle.get(db, V1)
    artifact_dir = v1_model.artifact_dir(settings)
    assert artifact_dir.is_dir()
    report = prune_model(db, settings, V1, reason="v2 is better")
    with db.connection() as conn:
        photos = conn.execute("SELECT count(*) FROM photos WHERE status = 'ok'").fetchone()
    assert photos is not None and report.rows["photo_embeddings"] == photos[0]
    assert report.was_rollback_target and report.total_bytes > 40e6 and not artifact_dir.exists()
    with db.connection() as conn:
        left = conn.execute("SELECT (SELECT count(*) FROM photo_embeddings WHERE model_id = %s), "
                            "(SELECT count(*) FROM eval_runs WHERE model_id = %s)",
                            (v1_model.id, v1_model.id)).fetchone()
    assert left is not None and left[0] == 0 and left[1] > 0  # outputs gone, evaluation results kept
    assert lifecycle.get(db, V1).status == "disabled"
    with pytest.raises(PhotoscoutError, match="active"):
        prune_model(db, settings, V2)
    _assert_search_works(engine, V2)
    # no rollback target is left: v1 is pruned, the random version was never active
    assert lifecycle.rollback_target(db, "embedding") is None

    # every step is on record
    steps = [(h["name"] + "@" + h["version"], h["from_status"], h["to_status"]) for h in lifecycle.history(db)
             if h["type"] == "embedding"]
    assert steps == [
        (V1, None, "staging"), (V1, "staging", "active"), (V2, None, "staging"), (RANDOM, None, "staging"),
        (V1, "active", "deprecated"), (V2, "staging", "active"),  # promotion
        (V2, "active", "deprecated"), (V1, "deprecated", "active"),  # rollback
        (V1, "active", "deprecated"), (V2, "deprecated", "active"),  # second promotion
        (V1, "deprecated", "disabled"),  # prune
    ]
    reasons = [h["reason"] for h in lifecycle.history(db, V2)]
    assert any(r.startswith("promoted: gate passed") for r in reasons)
    log = decisions.read(settings)
    for entry in (f"promoted {V2}", "rolled back embedding", f"promotion of {RANDOM} refused", f"pruned {V1}"):
        assert entry in log, entry
    assert log.index(f"promoted {V2}") < log.index("rolled back") < log.index(f"promotion of {RANDOM} refused")


def test_cli_eval_and_promote(workflow: tuple[Settings, Database, Path]) -> None:
    """The same through the command line, with --json for scripts (runs after the workflow: v2 active)."""
    settings, db, _lib = workflow
    home = settings.home
    out = run_cli("eval", "run", "--set", str(SAMPLE_SETS), "--model", RANDOM, "--compare-active",
                  "--no-resources", "--json", home=home, check=True)
    data = json.loads(out.stdout)[0]
    assert data["candidate"]["model"] == RANDOM and data["baseline"]["model"] == V2
    regressed = {r["set"] for r in data["comparison"] if r.get("regressed")}
    assert {"electronics", "food"} <= regressed
    dry = run_cli("models", "promote", RANDOM, "--dry-run", "--json", home=home)
    assert dry.returncode == 4 and not json.loads(dry.stdout)["passed"]
    refused = run_cli("models", "promote", RANDOM, home=home)
    assert refused.returncode == 4 and "regresses against" in refused.stderr and "electronics" in refused.stderr
    # a plain 'activate' cannot slip past the gate
    sneaky = run_cli("models", "activate", RANDOM, home=home)
    assert sneaky.returncode == 2 and "models promote" in sneaky.stderr
    listed = json.loads(run_cli("eval", "list", "--json", home=home, check=True).stdout)
    assert {r["model"] for r in listed} >= {V1, V2, RANDOM}
    shown = run_cli("eval", "show", listed[0]["session"], home=home, check=True)
    assert "electronics" in shown.stdout
    assert "promotion of random-vectors@v0.1.0 refused" in run_cli("eval", "log", home=home, check=True).stdout
    assert run_cli("eval", "run", "--model", V2, home=home).returncode == 2  # no set given, none in <home>/evalsets
    for cmd in (["eval", "--help"], ["eval", "run", "--help"], ["models", "promote", "--help"],
                ["models", "prune", "--help"]):
        assert run_cli(*cmd, home=home).returncode == 0


def test_sets_resolve_against_an_empty_library_and_a_missing_manifest(db: Database, tmp_path: Path) -> None:
    suite = sets.resolve(db, sets.load(SAMPLE_SETS))
    assert not any(s.usable for s in suite.sets)
    assert sum("skipped: none of its photos is in the library" in w for w in suite.warnings) == 35
    f = tmp_path / "set.toml"
    f.write_text('root = "photos"\n[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = "cat" }]\n')
    with pytest.raises(PhotoscoutError, match="no manifest"):
        sets.resolve(db, sets.load(f))
    f.write_text('root = "photos"\nmanifest = "m.csv"\n'
                 '[[sets]]\nname = "a"\nqueries = [{ text = "cat", label = "cat" }]\n')
    with pytest.raises(PhotoscoutError, match="manifest .*m.csv not found"):
        sets.resolve(db, sets.load(f))
