"""The core entry: one ``Photoscout`` object holds the settings, the database (opened on first use) and the
loaded-model cache, and offers every operation. The faces (the CLI, later the HTTP API and web pages) only parse,
call one of these methods and format the result; a rule lives in the package that owns it, never in a face.

    with Photoscout.open(home) as ps:
        ps.index(["~/Pictures"])
        hits = ps.search("receipt from the hardware store").hits

A long-running server keeps one warm (models and query embeddings stay loaded); the CLI makes one per command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from photoscout.analysis import category_rules, fewshot
from photoscout.analysis.photos import done_count, pending_photos
from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem, NotFound, PhotoscoutError
from photoscout.common.progress import Progress
from photoscout.config import Settings, hide_password, load_settings, save_settings
from photoscout.database import EMBEDDED_DB_NAME, Database, indexes, migrations, redact
from photoscout.database.embedded import EmbeddedServer
from photoscout.evaluation import marks, results, runner
from photoscout.jobs import executors, store
from photoscout.jobs.enrich import EnrichSummary, enrich, enrich_models
from photoscout.jobs.executors import Dispatched
from photoscout.jobs.states import KIND_FOR_TYPE, JobStatus
from photoscout.jobs.worker import Worker
from photoscout.library import catalog, media, roots, scanner
from photoscout.library.scanner import ScanSummary
from photoscout.maintenance import backup, disk, doctor, estimate, prune
from photoscout.maintenance.prune import PruneReport
from photoscout.models import artifacts
from photoscout.models.cache import ModelCache
from photoscout.models.onnx_runtime import device_report
from photoscout.registry import builtin, decisions, lifecycle, local
from photoscout.registry.lifecycle import RegisteredModel
from photoscout.rollout import actions, activation, promotion
from photoscout.search import albums as album_store
from photoscout.search import compare, learned
from photoscout.search.albums import Album
from photoscout.search.engine import SearchEngine
from photoscout.search.filters import Filters
from photoscout.search.results import Hit, SearchResult

log = logging.getLogger(__name__)


class Photoscout:
    def __init__(self, settings: Settings, *, db: Database | None = None) -> None:
        self.settings = settings
        self._db = db
        self._owns_db = db is None
        self.models = ModelCache(settings)
        self._engine: SearchEngine | None = None
        self._thumbnails = media.ThumbnailCache()

    @classmethod
    def open(cls, home: Path | str | None = None, **overrides: Any) -> Photoscout:
        """Settings from ``home`` (``config.toml``, ``PHOTOSCOUT_*``, ``overrides``); nothing is started yet."""
        return cls(load_settings(home, **overrides))

    @property
    def db(self) -> Database:
        """The database, opened (embedded server started, migrations applied) on first use."""
        if self._db is None:
            self.settings.ensure_dirs()
            self._db = Database(self.settings, before_migrate=self._before_upgrade).open()
        return self._db

    def _before_upgrade(self, url: str, schema: int, target: int) -> None:
        """A newer photoscout on an older library: a dump under data/backups/ first, and the log says so."""
        taken = backup.snapshot_before_upgrade(self.settings, url, schema, target)
        if taken is not None:
            log.warning("upgrading the library's schema from %04d to %04d; its database was dumped first to %s "
                        "(photoscout db restore reads it)", schema, target, taken)

    def close(self) -> None:
        if self._owns_db and self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Photoscout:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the library ----------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | os.PathLike[str]], *, run_models: bool = True, retry_errors: bool = False,
              repair_thumbnails: bool = False, confirm_missing: bool = False, progress: Progress | None = None
              ) -> tuple[ScanSummary, EnrichSummary | None]:
        """Scan folders into the library (``retry_errors``: read unreadable files again; ``repair_thumbnails``:
        photos whose thumbnail is gone; ``confirm_missing``: mark gone photos missing even where a root looks
        unmounted), then (unless ``run_models`` is false) run the models new photos need."""
        summary = scanner.scan(self.db, self.settings, paths, progress, retry_errors=retry_errors,
                               repair_thumbnails=repair_thumbnails, confirm_missing=confirm_missing)
        enriched = enrich(self.db, self.settings, models=self.models, progress=progress) if run_models else None
        return summary, enriched

    def status(self) -> dict[str, Any]:
        return {**catalog.status(self.db), "roots": roots.list_roots(self.db), "database": self.db.describe()}

    def roots(self) -> list[dict[str, Any]]:
        """The library's roots (what a service watches), each with whether it is held back and why."""
        return roots.list_roots(self.db)

    def watched_roots(self) -> list[bytes]:
        return roots.watched(self.db)

    def forget_root(self, root: str) -> None:
        """No longer watch a root (its photos stay in the library)."""
        roots.forget(self.db, root)

    def photos(self, *, which: str = "ok", limit: int = 50, offset: int = 0,
               folder: str | None = None) -> list[dict[str, Any]]:
        return catalog.list_photos(self.db, which=which, limit=limit, offset=offset, folder=folder)

    def photo(self, ref: str | int) -> dict[str, Any]:
        return catalog.get_photo(self.db, ref)

    @property
    def engine(self) -> SearchEngine:
        if self._engine is None:
            self._engine = SearchEngine(self.db, self.settings, self.models)
        return self._engine

    def search(self, text: str | None = None, *, image: str | IO[bytes] | None = None,
               similar_to: int | None = None, limit: int = 20, offset: int = 0, filters: Filters | None = None,
               model: str | None = None, sort: str = "relevance", widen: int = 0) -> SearchResult:
        """By meaning (``text``), by a photo (``image``: a file or an open upload; ``similar_to``: a library photo's
        id); one page of results (``offset``, ``limit``), best first or (``sort`` date, -date) the matches by date."""
        return self.engine.search(text, image=image, similar_to=similar_to, limit=limit, offset=offset,
                                  filters=filters, model_ref=model, sort=sort, widen=widen)

    # -- smart albums ------------------------------------------------------------------------------------
    def album_save(self, name: str, text: str | None, *, filters: Filters | None = None, sort: str = "date",
                   replace: bool = False) -> dict[str, Any]:
        """Save a search under a name (a smart album: it stays current); what it holds now."""
        album = album_store.save(self.db, name, text, filters or Filters(), sort, replace=replace)
        return {**album.as_dict(), "count": self._album_count(album)}

    def albums(self) -> list[dict[str, Any]]:
        """Every album with how many photos it holds now (None, with the reason, where it cannot be searched)."""
        return [{**a.as_dict(), **self._album_count_or_error(a)} for a in album_store.all_albums(self.db)]

    def album(self, name: str, *, limit: int = 40, offset: int = 0) -> tuple[dict[str, Any], SearchResult]:
        """An album and a page of what it holds now."""
        album = album_store.get(self.db, name)
        result = self.engine.search(album.query or None, filters=album.filters, sort=album.sort, limit=limit,
                                    offset=offset, only_matches=True)
        return {**album.as_dict(), "count": result.matches}, result

    def album_delete(self, name: str) -> None:
        """Forget an album (its photos are untouched)."""
        album_store.delete(self.db, name)

    def _album_count(self, album: Album) -> int | None:
        return self.engine.search(album.query or None, filters=album.filters, sort=album.sort, limit=1,
                                  only_matches=True).matches

    def _album_count_or_error(self, album: Album) -> dict[str, Any]:
        try:
            return {"count": self._album_count(album), "error": None}
        except PhotoscoutError as exc:
            return {"count": None, "error": str(exc)}

    def browse(self, *, folder: str | None = None, limit: int = 40, offset: int = 0) -> SearchResult:
        """The library in folder order (no query), in the shape of a search's page: every photo reachable."""
        rows = catalog.list_photos(self.db, limit=limit, offset=offset, folder=folder, shown_only=True)
        hits = [Hit(r["id"], r["path"], 0.0, [], None, r["thumbnail"], r["categories"], r["taken_at"]) for r in rows]
        return SearchResult(None, hits, {}, True, offset, limit)

    def neighbours(self, photo_id: int, text: str, rank: int) -> dict[str, Any]:
        """The results before and after a photo seen at ``rank`` of a search for ``text`` (``previous``, ``next``:
        photo and rank, or None); none when nothing can be searched (no embeddings)."""
        try:
            before, after = self.engine.around(text, photo_id, rank)
        except PhotoscoutError:
            before = after = None
        return {"previous": {"photo_id": before[0], "rank": before[1]} if before else None,
                "next": {"photo_id": after[0], "rank": after[1]} if after else None}

    def similar(self, photo_id: int, limit: int = 12) -> list[Hit]:
        """Photos like a library photo, itself left out; none when it has no vector of the active version."""
        try:
            hits = self.search(similar_to=photo_id, limit=limit + 1).hits
        except PhotoscoutError:
            return []
        return [h for h in hits if h.photo_id != photo_id][:limit]

    def compare(self, text: str, right: str, *, left: str | None = None, limit: int = 20,
                filters: Filters | None = None) -> dict[str, Any]:
        """Two versions' answers side by side (``left``: the active one unless named); differing results marked."""
        return compare.compare(self.engine, text, left, right, limit=limit, filters=filters)

    def facets(self) -> dict[str, Any]:
        """What a search can be narrowed by: the photo categories, the few-shot classes, the embedding versions."""
        return {"categories": list(category_rules.DEFAULT_CATEGORIES), "classes": [c["name"] for c in self.classes()],
                "models": [{"ref": m.ref, "status": m.status} for m in lifecycle.list_models(self.db, type_="embedding")
                           if m.status != "disabled"]}

    def warm_up(self) -> None:
        """Load what a query needs (the active embedding model, a first query) so the first search is fast."""
        if lifecycle.active(self.db, "embedding") is not None:
            try:
                self.engine.warm_up()
            except NotFound:  # no embeddings yet: nothing to warm
                pass

    def thumbnail(self, photo_id: int) -> media.MediaFile:
        """The photo's stored thumbnail (remembered a minute: see ``media.ThumbnailCache``)."""
        found = self._thumbnails.get(photo_id)
        if found is None:
            found = media.thumbnail(self.db, self.settings, photo_id)
            self._thumbnails.put(photo_id, found)
        return found

    def thumbnail_known(self, photo_id: int) -> media.MediaFile | None:
        """The thumbnail when it is remembered (no database call: safe on an event loop), else None."""
        return self._thumbnails.get(photo_id)

    def preview(self, photo_id: int, size: int = 1440) -> media.MediaFile:
        return media.preview(self.db, self.settings, photo_id, size)

    def original(self, photo_id: int) -> media.MediaFile:
        return media.original(self.db, self.settings, photo_id)

    def mark(self, query: str, photo_id: int, relevant: bool | None) -> dict[str, Any]:
        """Judge a result for a query; the judgements build ``<home>/evalsets/marked.toml``, a set the gate uses."""
        return marks.mark(self.db, self.settings, query, photo_id, relevant)

    def marks(self, query: str | None = None) -> Any:
        """The judgements for ``query`` (paths), or a line per marked query."""
        return marks.marks_for(self.settings, query) if query else marks.summary(self.settings)

    def learn(self, query: str) -> dict[str, Any]:
        """Make the query's marks a few-shot class of its words: the next search for them ranks by it too."""
        judged = marks.marks_for(self.settings, query)
        ids = {key: catalog.ids_for_paths(self.db, paths) for key, paths in judged.items()}
        found = learned.learn(self.db, query, ids["relevant"], ids["not_relevant"])
        self.engine.clear_cache()
        return found

    def forget_learned(self, query: str) -> None:
        learned.forget(self.db, query)
        self.engine.clear_cache()

    def learned_queries(self) -> list[dict[str, Any]]:
        """The queries taught by marks."""
        return learned.known(self.db)

    # -- settings and the database ----------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The effective settings, passwords hidden."""
        data = self.settings.model_dump(mode="json")
        if data["database_url"]:
            data["database_url"] = redact(data["database_url"])
        if data["broker_url"]:
            data["broker_url"] = hide_password(data["broker_url"])
        data.update(config_file=str(self.settings.config_file), data_dir=str(self.settings.data_dir),
                    models_dir=str(self.settings.models_dir), device_in_use=device_report(self.settings.device))
        return data

    def update_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Write settings into ``config.toml`` (checked first; a bad value changes nothing). Those a running service
        reads as it goes (the schedule, quiet hours, the guard) apply at once; threads and niceness at the next
        start."""
        fresh = save_settings(self.settings, values)
        for key in values:  # the one Settings object every part of this core holds
            setattr(self.settings, key, getattr(fresh, key))
        return self.config()

    def db_status(self) -> dict[str, Any]:
        info = self.db.describe()
        with self.db.connection() as conn:
            info["migrations_applied"] = sorted(migrations.applied(conn))
            info["migrations_pending"] = [m.version for m in migrations.pending(conn)]
        info["pgdata"] = str(self.settings.pgdata_dir) if self.settings.uses_embedded_db else None
        return info

    def _embedded(self) -> EmbeddedServer:
        if not self.settings.uses_embedded_db:
            raise PhotoscoutError("a database URL is configured; the embedded server is not used")
        self.settings.ensure_dirs()
        return EmbeddedServer.of(self.settings)

    def db_start(self) -> str:
        """Start the embedded server and keep it running until ``db_stop`` (commands then skip its start)."""
        server = self._embedded()
        server.acquire(EMBEDDED_DB_NAME)
        server.pin()
        url = server.url(EMBEDDED_DB_NAME)
        server.release()
        return url

    def db_stop(self, *, force: bool = False) -> bool:
        """Stop the embedded server cleanly; refused while other photoscout processes use it, unless ``force``.
        False when it was not running."""
        return self._embedded().stop(force=force)

    def dump(self, target: Path, *, thumbnails: bool = False, progress: Progress | None = None) -> dict[str, Any]:
        """The library in one file (database, decision log, evaluation sets, model artifacts; thumbnails if asked),
        taken while searches and jobs go on."""
        return backup.dump(self.db, self.settings, target, thumbnails=thumbnails, progress=progress)

    def restore(self, source: Path, *, progress: Progress | None = None) -> dict[str, Any]:
        """A backup into this (fresh) home: searchable at once."""
        if self._db is not None:
            raise PhotoscoutError("restore into a home that is not open")
        return backup.restore(self.settings, source, progress=progress)

    def db_url(self) -> str:
        """A URL for psql and friends (an external one with its password hidden; the embedded one names its
        password file)."""
        if self.settings.database_url:
            return redact(self.settings.database_url)
        return self._embedded().url(EMBEDDED_DB_NAME)

    # -- models -------------------------------------------------------------------------------------------
    def models_list(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Every version (of ``type_``) with its artifact bytes and the actions it allows now (``actions``)."""
        found = lifecycle.list_models(self.db, type_=type_)
        allowed = actions.for_models(self.db, found)
        return [{**lifecycle.describe(self.settings, m), "actions": allowed[m.ref]} for m in found]

    def model(self, ref: str) -> RegisteredModel:
        return lifecycle.get(self.db, ref)

    def model_details(self, ref: str) -> dict[str, Any]:
        """A model's entry, artifacts (files, sizes, SHA-256, source), history, the photos it has run on, and what
        running it on the others would cost (from what was measured; nothing is measured now)."""
        m = lifecycle.get(self.db, ref)
        missing = store.plan_job(self.db, kind=KIND_FOR_TYPE[m.type], model_ref=m.ref, missing_only=True) \
            if m.status != "disabled" else None
        return {**lifecycle.describe(self.settings, m, files=True), "actions": actions.for_models(self.db, [m])[m.ref],
                "history": lifecycle.history(self.db, m.ref),
                "photos_done": done_count(self.db, m.id),
                "estimate_missing": estimate.estimate(self.db, self.settings, m, len(missing.photo_ids),
                                                  measure=False).as_dict() if missing else None}

    def install_builtin(self, refs: list[str] | None = None, *, wheels_dir: Path | None = None,
                        activate: bool = True, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Install the built-in offline models (the defaults, or ``refs``); a default becomes active where its
        type has no active model yet (candidates stay in staging, for the gate)."""
        report = builtin.install(self.db, self.settings, wheels_dir=wheels_dir, progress=progress, refs=refs)
        for entry in report:
            if activate and entry["default"] and activation.activate_if_first(
                    self.db, self.settings, entry["model"], reason="install-builtin: first model of its type"):
                entry.update(action=entry["action"] + ", activated", status="active")
        return report

    def register(self, ref: str, source_dir: Path, *, type_: str, backend: str, config: dict[str, Any] | None = None,
                 purpose: str = "default") -> tuple[RegisteredModel, str]:
        return local.register_folder(self.db, self.settings, ref=ref, source_dir=source_dir, type_=type_,
                                     backend=backend, config=config, purpose=purpose)

    def export_onnx(self, source_ref: str, ref: str, *, int8: bool = False) -> tuple[RegisteredModel, dict[str, Any]]:
        return local.export_onnx(self.db, self.settings, source_ref=source_ref, ref=ref, int8=int8,
                                 threads=self.settings.threads)

    def pull(self, repo_id: str, ref: str, *, type_: str, backend: str, revision: str | None = None
             ) -> RegisteredModel:
        return local.pull(self.db, self.settings, repo_id=repo_id, ref=ref, type_=type_, backend=backend,
                          revision=revision)

    def verify(self, ref: str) -> tuple[RegisteredModel, list[artifacts.Problem]]:
        return lifecycle.verify(self.db, self.settings, ref)

    def activate(self, ref: str, *, reason: str = "activated by user",
                 progress: Progress | None = None) -> RegisteredModel:
        """Activate a model; replacing an active embedding model is refused (use ``promote``). An OCR, face or
        few-shot version recomputes every photo's categories (``progress``)."""
        return activation.activate(self.db, self.settings, ref, reason=reason, progress=progress)

    def deprecate(self, ref: str, *, reason: str = "deprecated by user") -> RegisteredModel:
        return lifecycle.deprecate(self.db, ref, reason=reason)

    def disable(self, ref: str, *, reason: str = "disabled by user") -> RegisteredModel:
        return lifecycle.disable(self.db, ref, reason=reason)

    def rollback(self, type_: str = "embedding", purpose: str = "default", *, reason: str = "rollback by user",
                 progress: Progress | None = None) -> activation.Rollback:
        """The version that was active before the current one is active again (``.as_dict()``: what every face
        shows); it unpacks as (restored, replaced)."""
        return activation.rollback(self.db, self.settings, type_, purpose, reason=reason, progress=progress)

    def promotion_check(self, ref: str) -> promotion.GateResult:
        """What the gate would decide (nothing changes)."""
        return promotion.check(self.db, self.settings, ref)

    def promote(self, ref: str, *, force: bool = False, reason: str | None = None) -> promotion.Promotion:
        """Through the gate; ``PromotionRefused`` (its ``details()``: the verdict) when it says no, unless forced
        with a reason. It unpacks as (model, gate)."""
        return promotion.promote(self.db, self.settings, ref, force=force, reason=reason)

    def prune_model(self, ref: str, *, reason: str = "pruned by user") -> PruneReport:
        """One version's outputs, index and files (its record stays)."""
        return prune.prune_model(self.db, self.settings, ref, reason=reason)

    def prune_plan(self, *, include: list[str] | None = None,
                   missing_for_days: float | None = None) -> prune.PrunePlan:
        """What ``prune`` would remove (a dry run)."""
        return prune.plan(self.db, self.settings, include=include, missing_for_days=missing_for_days)

    def prune(self, chosen: prune.PrunePlan, *, reason: str = "pruned by user",
              compact: bool = False) -> prune.PruneResult:
        """Remove what a plan lists; the bytes freed are measured."""
        return prune.run(self.db, self.settings, chosen, reason=reason, compact=compact)

    def doctor(self) -> list[doctor.Finding]:
        """Every check; ``doctor.healthy`` says whether all is well. A database that cannot be opened is a
        finding, not an error."""
        try:
            db = self.db
        except (DatabaseUnavailable, EnvironmentProblem) as exc:
            return doctor.unreachable(self.settings, str(exc))
        return doctor.examine(db, self.settings)

    def health(self) -> dict[str, Any]:
        """The doctor's report for a face: ``healthy`` (no error, no warning) and each finding as a dict."""
        findings = self.doctor()
        return {"healthy": doctor.healthy(findings), "findings": [f.as_dict() for f in findings]}

    def reindex(self, ref: str) -> bool:
        """Build a version's vector index if it is missing, invalid or built on half its rows; True if built."""
        return indexes.ensure(self.db, lifecycle.get(self.db, ref))

    def disk(self) -> dict[str, Any]:
        """What takes the disk: each model version, thumbnails, the database, free space."""
        return disk.usage(self.db, self.settings)

    def history(self, ref: str | None = None) -> list[dict[str, Any]]:
        return lifecycle.history(self.db, ref)

    # -- few-shot classes ---------------------------------------------------------------------------------
    def add_class(self, name: str, examples: list[str], threshold: float | None = None) -> dict[str, Any]:
        return fewshot.create_class(self.db, self.settings, name, examples, threshold, models=self.models)

    def add_example(self, name: str, photo_id: int) -> dict[str, Any]:
        """Mark a photo as an example of a class (made when it is new)."""
        return fewshot.add_example(self.db, self.settings, name, photo_id, models=self.models)

    def classes(self) -> list[dict[str, Any]]:
        return fewshot.list_classes(self.db)

    def remove_class(self, name: str) -> None:
        fewshot.remove_class(self.db, name)

    # -- jobs ---------------------------------------------------------------------------------------------
    def plan_job(self, kind: str, model: str, *, missing_only: bool = False, sample_count: int | None = None,
                 sample_fraction: float | None = None, seed: int = 0) -> dict[str, Any]:
        """What a job would cover and cost (disk and time), without creating it."""
        plan = store.plan_job(self.db, kind=kind, model_ref=model, missing_only=missing_only,
                              sample_count=sample_count, sample_fraction=sample_fraction, seed=seed)
        return {"kind": kind, "model": plan.model.ref, "photos": len(plan.photo_ids), "scope": plan.scope,
                "estimate": estimate.estimate(self.db, self.settings, plan.model, len(plan.photo_ids)).as_dict()}

    def create_job(self, kind: str, model: str, *, missing_only: bool = False, sample_count: int | None = None,
                   sample_fraction: float | None = None, seed: int = 0, new_only: bool = False,
                   by: str | None = None) -> dict[str, Any]:
        """A job over all photos, a seeded sample, those missing the model's output, or (``new_only``) those it
        never ran on (not started; ``by``: who asked, e.g. the service)."""
        return store.create_job(self.db, kind=kind, model_ref=model, missing_only=missing_only,
                                sample_count=sample_count, sample_fraction=sample_fraction, seed=seed,
                                unit_size=self.settings.job_unit_size, new_only=new_only, by=by)

    def run_job(self, job_id: int, *, executor: str = "local", tasks: int = 2,
                progress: Progress | None = None) -> tuple[dict[str, Any], Dispatched | None]:
        """Hand a job to the executor (nothing to do for a completed one); the job as it stands after that, and
        what the executor did."""
        dispatched = None
        if store.get_job(self.db, job_id)["status"] != JobStatus.COMPLETED:
            dispatched = executors.dispatch(self.db, self.settings, job_id, executor, tasks=tasks,
                                            models=self.models, progress=progress)
        return store.get_job(self.db, job_id), dispatched

    def start_job(self, kind: str, model: str, *, executor: str = "local", tasks: int = 2,
                  progress: Progress | None = None, **scope: Any) -> tuple[dict[str, Any], Dispatched | None]:
        """``create_job`` (``scope``: missing_only, sample_count, sample_fraction, seed), then ``run_job``."""
        job = self.create_job(kind, model, **scope)
        return self.run_job(job["id"], executor=executor, tasks=tasks, progress=progress)

    def run_jobs(self, job_id: int | None = None, *, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Work through one job (or every job with work left) in this process; then how they stand."""
        executors.run_local(self.db, self.settings, job_id, models=self.models, progress=progress)
        return [store.get_job(self.db, job_id)] if job_id else store.list_jobs(self.db, limit=10)

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        return store.list_jobs(self.db, limit=limit)

    def job(self, job_id: int) -> dict[str, Any]:
        return store.get_job(self.db, job_id)

    def resume_job(self, job_id: int, *, executor: str = "local", tasks: int = 2,
                   progress: Progress | None = None) -> tuple[dict[str, Any], Dispatched | None]:
        """A cancelled, failed or interrupted job goes on where it stopped."""
        store.set_status(self.db, job_id, "resume")
        return self.run_job(job_id, executor=executor, tasks=tasks, progress=progress)

    def jobs_to_resume(self, by: str) -> list[int]:
        """Jobs a service (``by``) picks up: those a worker had begun (perhaps in a process since killed) and its
        own not begun yet."""
        return store.to_resume(self.db, by)

    def models_with_new_photos(self) -> list[RegisteredModel]:
        """The models new photos are run through (``enrich_models``) that some photo was never run through;
        embedding versions first (they make a photo searchable)."""
        chosen = sorted(enrich_models(self.db, self.settings), key=lambda m: m.type != "embedding")
        return [m for m in chosen if pending_photos(self.db, m.id, limit=1)]

    def work_on_job(self, job_id: int, *, units: int = 1) -> int:
        """Do at most ``units`` units of a job in this process (a service between its checks of the clock and of
        a stop); the units done, 0 when none was left to take."""
        worker = Worker(self.db, self.settings, models=self.models)
        return worker.run(job_id, max_units=units, wait_for_leases=False).units

    def revive_database(self) -> bool:
        """Start the embedded PostgreSQL again if it died; True when it had to."""
        return self.db.revive()

    def note_job_error(self, job_id: int, message: str) -> None:
        """Why a run of the job stopped, kept as its ``last_error`` (a job run by the server in the background)."""
        store.note_error(self.db, job_id, message)

    def cancel_job(self, job_id: int) -> dict[str, Any]:
        return store.set_status(self.db, job_id, JobStatus.CANCELLED)

    def retry_failed(self, job_id: int, *, executor: str = "local", progress: Progress | None = None
                     ) -> tuple[dict[str, Any], Dispatched | None]:
        """The photos that failed go back into the job, which runs again."""
        store.retry_failed(self.db, job_id)
        return self.run_job(job_id, executor=executor, tasks=1, progress=progress)

    def worker(self, *, concurrency: int = 1, loglevel: str = "INFO") -> None:
        """Be a Celery worker (blocks)."""
        from photoscout.jobs import celery_app  # Celery is imported only where it is used

        celery_app.run_worker(self.settings, concurrency=concurrency, loglevel=loglevel)

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self, model: str, set_files: Sequence[Path] | None = None, *, compare_active: bool = False,
                 k: int | None = None, measure_resources: bool = True, progress: Progress | None = None,
                 warn: Callable[[str], None] | None = None) -> list[runner.SuiteRun]:
        return runner.run(self.db, self.settings, model, set_files, compare_active=compare_active, k=k,
                          measure_resources=measure_resources, engine=self.engine, progress=progress, warn=warn)

    def evaluations(self, model: str | None = None) -> list[dict[str, Any]]:
        """Stored evaluation sessions, newest first (overall metrics)."""
        return results.sessions(self.db, lifecycle.get(self.db, model) if model else None)

    def evaluation(self, session: str) -> list[dict[str, Any]]:
        """One session: a row per set (and ``*overall*``), each with its queries."""
        rows = results.session_rows(self.db, session)
        if not rows:
            raise PhotoscoutError(f"no evaluation session {session!r} (see 'photoscout eval list')")
        queries = results.session_queries(self.db, [r["id"] for r in rows])
        return [{**r, "queries": [{"query": q, **m} for q, m in queries[r["id"]]]} for r in rows]

    def decision_log(self, tail: int = 0) -> str:
        return decisions.read(self.settings, tail=tail)

    def decision_log_path(self) -> Path:
        return decisions.path(self.settings)
