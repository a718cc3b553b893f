"""The JSON API (``/api/v1``): each endpoint parses, makes one call on the server's warm core and returns what it
answers. Errors are the core's messages as ``{"error": ...}`` with their HTTP status (see ``web.__init__``)."""

from __future__ import annotations

from io import BytesIO
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from photoscout import __version__
from photoscout.app import Photoscout
from photoscout.common.errors import InvalidParameter
from photoscout.jobs.states import JobKind
from photoscout.search.filters import Filters
from photoscout.search.matches import MAX_WIDEN
from photoscout.search.results import MAX_OFFSET, MAX_PAGE
from photoscout.service.runner import Service, describe
from photoscout.web.background import Background

router = APIRouter(prefix="/api/v1")
MAX_UPLOAD = 25 * 1024 * 1024
Ref = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^[^@\s/]+@[^@\s/]+$")]


def core(request: Request) -> Photoscout:
    return request.app.state.core


def background(request: Request) -> Background:
    return request.app.state.background


Core = Annotated[Photoscout, Depends(core)]


Values = Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=20)]


class SearchFilters(BaseModel):
    """The filters, as query parameters; those that take several values are repeated (``category=food&category=
    animals``: any of them; ``tag``: all of them)."""

    category: Values = Field([], description="In any of these categories or few-shot classes.")
    not_category: Values = Field([], description="In none of these categories or few-shot classes.")
    # dates as text: read by the filters' one date parser, as the CLI's and the pages' are (same errors)
    after: str | None = Field(None, max_length=40, description="Taken on or after this day (YYYY-MM-DD).",
                              json_schema_extra={"format": "date"})
    before: str | None = Field(None, max_length=40, description="Taken before this day (YYYY-MM-DD).",
                               json_schema_extra={"format": "date"})
    folder: Values = Field([], description="Only photos under any of these folders.")
    camera: Values = Field([], description="Camera make or model contains any of these.")
    has_text: bool = Field(False, description="Only photos with text in them (OCR).")
    rating: int | None = Field(None, ge=-1, le=5, description="Only photos rated at least this (XMP; -1 rejected).")
    tag: Values = Field([], description="Only photos with all of these keywords (XMP, case ignored).")
    exclude: Values = Field([], description="Leave out photos with these words printed in them or as keywords.")

    def filters(self) -> Filters:
        return Filters.parse(**self.model_dump())  # the one filter parser (the CLI's and the pages' too)


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
Sort = Annotated[Literal["relevance", "date", "-date"], Query(description=(
    "relevance (best first), date (the matches, newest first) or -date (the matches, oldest first)"))]
Widen = Annotated[int, Query(ge=0, le=MAX_WIDEN, description="Lower the cutoff of what matches this many steps.")]


def _with_next(request: Request, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with ``next``: the URL of the next page (none after the last)."""
    nxt = answer.get("next_offset")
    answer["next"] = str(request.url.include_query_params(offset=nxt)) if nxt is not None else None
    return answer


@router.get("/health", tags=["system"])
def health(ps: Core) -> dict[str, Any]:
    """Is the server up (cheap; the full report is ``/doctor``)."""
    return {"status": "ok", "version": __version__, "home": str(ps.settings.home)}


@router.get("/search", tags=["search"])
def search(request: Request, ps: Core, f: Annotated[SearchFilters, Query()],
           q: Annotated[str | None, Query(max_length=1000, description=(
               'What to look for. Words in double quotes must be printed in the photo (OCR text), e.g. '
               'receipt "total due".'))] = None,
           similar_to: Annotated[int | None, Query(ge=1, le=2**62, description="Photos like this photo id.")]
           = None,
           model: Annotated[str | None, Query(max_length=200, description="NAME@VERSION; default active.")] = None,
           limit: Limit = 40, offset: Offset = 0, sort: Sort = "relevance", widen: Widen = 0) -> dict[str, Any]:
    """Search by meaning (``q``) or by a library photo (``similar_to``), narrowed by the filters; one page, and
    ``next``, the URL of the next one (to the last match: ``sort=date`` keeps only the matches and says how many)."""
    return _with_next(request, ps.search(q, similar_to=similar_to, limit=limit, offset=offset, filters=f.filters(),
                                         model=model, sort=sort, widen=widen).as_dict())


@router.post("/search/image", tags=["search"])
async def search_image(request: Request, f: Annotated[SearchFilters, Query()],
                       file: Annotated[UploadFile, File(description="A photo to find others like.")],
                       model: Annotated[str | None, Query(max_length=200)] = None,
                       limit: Limit = 40, offset: Offset = 0) -> dict[str, Any]:
    """Search with an uploaded photo."""
    data = await file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise InvalidParameter(f"the photo is larger than {MAX_UPLOAD // 2**20} MB", "file")
    if not data:
        raise InvalidParameter("the uploaded file is empty", "file")
    result = await run_in_threadpool(core(request).search, image=BytesIO(data), limit=limit, offset=offset,
                                     filters=f.filters(), model=model)
    return result.as_dict()


@router.get("/compare", tags=["search"])
def compare(ps: Core, q: Annotated[str, Query(min_length=1, max_length=1000)], right: Annotated[str, Query(
        max_length=200, description="The version to compare (NAME@VERSION).")],
        left: Annotated[str | None, Query(max_length=200, description="Default: the active version.")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    """Two versions' answers to one query, side by side; results only one side shows are marked."""
    return ps.compare(q, right, left=left, limit=limit)


@router.get("/facets", tags=["search"])
def facets(ps: Core) -> dict[str, Any]:
    """Categories, few-shot classes and embedding versions a search can use."""
    return ps.facets()


@router.get("/photos", tags=["photos"])
def photos(ps: Core, which: Literal["ok", "missing", "error", "all"] = "ok", limit: Limit = 50,
           offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
           folder: Annotated[str | None, Query(max_length=4096)] = None) -> list[dict[str, Any]]:
    return ps.photos(which=which, limit=limit, offset=offset, folder=folder)


PhotoId = Annotated[int, Field(ge=1, le=2**62)]


@router.get("/photos/{photo_id}", tags=["photos"])
def photo(ps: Core, photo_id: PhotoId) -> dict[str, Any]:
    """A photo's metadata, categories, labels, OCR text, faces and embeddings."""
    return ps.photo(photo_id)


def _file(request: Request, found: Any, *, immutable: bool = True) -> Response:
    etag = f'"{found.etag}"'
    cache = "private, max-age=31536000, immutable" if immutable else "private, max-age=3600"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    return FileResponse(found.path, media_type=found.media_type, headers={"ETag": etag, "Cache-Control": cache})


@router.get("/photos/{photo_id}/thumbnail", tags=["photos"], response_class=FileResponse)
async def thumbnail(request: Request, photo_id: PhotoId) -> Response:
    """The stored thumbnail (content-addressed: cached for a year, ETag)."""
    ps = core(request)  # a remembered thumbnail is answered on the event loop; a lookup goes to a thread
    return _file(request, ps.thumbnail_known(photo_id) or await run_in_threadpool(ps.thumbnail, photo_id))


@router.get("/photos/{photo_id}/preview", tags=["photos"], response_class=FileResponse)
def preview(request: Request, ps: Core, photo_id: PhotoId,
            size: Annotated[int, Query(ge=1, le=4096, description="720 or 1440")] = 1440) -> Response:
    """A larger JPEG, made on first use and kept under data/previews."""
    return _file(request, ps.preview(photo_id, size))


@router.get("/photos/{photo_id}/original", tags=["photos"], response_class=FileResponse)
def original(request: Request, ps: Core, photo_id: PhotoId) -> Response:
    """The photo's own file (only while it is still the file that was scanned)."""
    return _file(request, ps.original(photo_id), immutable=False)


class Mark(BaseModel):
    query: str = Field(min_length=1, max_length=1000)
    photo_id: PhotoId
    relevant: bool | None = Field(description="true, false, or null to forget the mark")


class NewAlbum(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="The album's name.")
    query: str = Field("", max_length=1000, description="The search, as ``q`` takes it.")
    filters: SearchFilters = Field(default_factory=lambda: SearchFilters.model_validate({}),
                                   description="The search's filters.")
    sort: Literal["relevance", "date", "-date"] = "date"
    replace: bool = Field(False, description="Change an existing album of this name.")


AlbumName = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/albums", tags=["albums"])
def albums(ps: Core) -> list[dict[str, Any]]:
    """Every smart album and how many photos it holds now."""
    return ps.albums()


@router.post("/albums", tags=["albums"])
def save_album(ps: Core, body: NewAlbum) -> dict[str, Any]:
    """Save a search as a smart album (409 when the name is taken and ``replace`` is not set)."""
    return ps.album_save(body.name, body.query, filters=body.filters.filters(), sort=body.sort,
                         replace=body.replace)


@router.get("/albums/{name}", tags=["albums"])
def album(request: Request, ps: Core, name: AlbumName, limit: Limit = 40, offset: Offset = 0) -> dict[str, Any]:
    """What an album holds now: a page, its count and ``next``."""
    found, result = ps.album(name, limit=limit, offset=offset)
    return _with_next(request, {"album": found, **result.as_dict()})


@router.delete("/albums/{name}", tags=["albums"])
def delete_album(ps: Core, name: AlbumName) -> dict[str, Any]:
    """Forget an album (its photos are not touched)."""
    ps.album_delete(name)
    return {"deleted": name}


@router.post("/marks", tags=["evaluation"])
def mark(ps: Core, body: Mark) -> dict[str, Any]:
    """Mark a result relevant or not for a query: builds <home>/evalsets/marked.toml, which the gate uses."""
    return ps.mark(body.query, body.photo_id, body.relevant)


class Learn(BaseModel):
    query: str = Field(min_length=1, max_length=1000, description="A query with results marked relevant.")


@router.post("/learned", tags=["evaluation"])
def learn(ps: Core, body: Learn) -> dict[str, Any]:
    """Make a query's marks a few-shot class of its words: the next search for them ranks by it too."""
    return ps.learn(body.query)


@router.get("/learned", tags=["evaluation"])
def learned(ps: Core) -> list[dict[str, Any]]:
    """The queries taught by marks."""
    return ps.learned_queries()


@router.delete("/learned", tags=["evaluation"])
def forget_learned(ps: Core, q: Annotated[str, Query(min_length=1, max_length=1000)]) -> dict[str, Any]:
    """Forget what a query's marks taught (the marks stay)."""
    ps.forget_learned(q)
    return {"forgotten": q}


@router.get("/marks", tags=["evaluation"])
def marks(ps: Core, q: Annotated[str | None, Query(max_length=1000)] = None) -> Any:
    return ps.marks(q or None)


@router.get("/models", tags=["models"])
def models(ps: Core, type: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
    return ps.models_list(type)


@router.get("/models/{ref}", tags=["models"])
def model(ps: Core, ref: Ref) -> dict[str, Any]:
    """Entry, files, history, coverage and what running it on the rest would cost."""
    return ps.model_details(ref)


@router.get("/models/{ref}/evaluations", tags=["models"])
def model_evaluations(ps: Core, ref: Ref) -> list[dict[str, Any]]:
    return ps.evaluations(ref)


@router.get("/models/{ref}/gate", tags=["models"])
def gate(ps: Core, ref: Ref) -> dict[str, Any]:
    """What the promotion gate would decide now (nothing changes)."""
    return ps.promotion_check(ref).as_dict()


class Promote(BaseModel):
    force: bool = False
    reason: str | None = Field(None, max_length=1000)


@router.post("/models/{ref}/promote", tags=["models"])
def promote(ps: Core, ref: Ref, body: Promote) -> dict[str, Any]:
    """Through the gate (409 with ``promoted: false`` and its verdict when it refuses); ``force`` only with a
    reason."""
    return ps.promote(ref, force=body.force, reason=body.reason).as_dict()


class Rollback(BaseModel):
    type: str = Field("embedding", max_length=40)
    reason: str = Field("rollback from the web UI", max_length=1000)


@router.post("/models/rollback", tags=["models"])
def rollback(ps: Core, body: Rollback) -> dict[str, Any]:
    """The previous version of a model type becomes active again, at once."""
    return ps.rollback(body.type, reason=body.reason).as_dict()


@router.get("/history", tags=["models"])
def history(ps: Core, model: Annotated[str | None, Query(max_length=200)] = None) -> list[dict[str, Any]]:
    """What was active when, and why."""
    return ps.history(model)


@router.get("/decisions", tags=["models"])
def decision_log(ps: Core, tail: Annotated[int, Query(ge=0, le=10000)] = 200) -> dict[str, str]:
    return {"log": ps.decision_log(tail=tail)}


class NewJob(BaseModel):
    kind: JobKind = JobKind.EMBED
    model: Ref
    missing_only: bool = False
    sample_count: int | None = Field(None, ge=1, le=10_000_000)
    sample_fraction: float | None = Field(None, gt=0, le=1)
    dry_run: bool = False


@router.get("/jobs", tags=["jobs"])
def jobs(ps: Core, limit: Limit = 50) -> list[dict[str, Any]]:
    return ps.jobs(limit)


@router.post("/jobs", tags=["jobs"])
def start_job(ps: Core, bg: Annotated[Background, Depends(background)], body: NewJob) -> dict[str, Any]:
    """Create a job and run it in the server (or, with ``dry_run``, what it would cover and cost)."""
    scope: dict[str, Any] = dict(missing_only=body.missing_only, sample_count=body.sample_count,
                 sample_fraction=body.sample_fraction)
    if body.dry_run:
        return ps.plan_job(body.kind, body.model, **scope)
    job = ps.create_job(body.kind, body.model, **scope)
    bg.run_job(job["id"])
    return ps.job(job["id"])


@router.get("/jobs/{job_id}", tags=["jobs"])
def job(ps: Core, job_id: PhotoId) -> dict[str, Any]:
    return ps.job(job_id)


@router.get("/jobs/{job_id}/events", tags=["jobs"])
async def job_events(request: Request, job_id: PhotoId) -> StreamingResponse:
    """Server-Sent Events: the job as it stands, every second, until it ends."""
    import asyncio
    import json

    ps = core(request)
    await run_in_threadpool(ps.job, job_id)  # 404 before the stream starts

    async def events() -> Any:
        while True:
            state = await run_in_threadpool(ps.job, job_id)
            yield f"data: {json.dumps(state, default=str)}\n\n"
            if state["finished"] or await request.is_disconnected():  # the core's one test of "over"
                return
            await asyncio.sleep(1.0)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(ps: Core, job_id: PhotoId) -> dict[str, Any]:
    return ps.cancel_job(job_id)


@router.post("/jobs/{job_id}/resume", tags=["jobs"])
def resume_job(ps: Core, bg: Annotated[Background, Depends(background)], job_id: PhotoId) -> dict[str, Any]:
    bg.resume_job(job_id)
    return ps.job(job_id)


@router.post("/jobs/{job_id}/retry", tags=["jobs"])
def retry_job(ps: Core, bg: Annotated[Background, Depends(background)], job_id: PhotoId) -> dict[str, Any]:
    bg.retry_failed(job_id)
    return ps.job(job_id)


@router.get("/evaluations", tags=["evaluation"])
def evaluations(ps: Core, model: Annotated[str | None, Query(max_length=200)] = None) -> list[dict[str, Any]]:
    return ps.evaluations(model)


@router.get("/evaluations/{session}", tags=["evaluation"])
def evaluation(ps: Core, session: Annotated[str, Field(max_length=100)]) -> list[dict[str, Any]]:
    return ps.evaluation(session)


class EvalRun(BaseModel):
    model: Ref
    compare_active: bool = True


@router.post("/evaluations", tags=["evaluation"])
def run_evaluation(ps: Core, body: EvalRun) -> list[dict[str, Any]]:
    """Evaluate a version on the home's sets (``<home>/evalsets``), beside the active one; results are stored."""
    return [r.as_dict() for r in ps.evaluate(body.model, compare_active=body.compare_active)]


@router.get("/classes", tags=["classes"])
def classes(ps: Core) -> list[dict[str, Any]]:
    return ps.classes()


class Example(BaseModel):
    photo_id: PhotoId


@router.post("/classes/{name}/examples", tags=["classes"])
def add_example(ps: Core, name: Annotated[str, Field(min_length=1, max_length=60)], body: Example) -> dict[str, Any]:
    """Mark a photo as an example of a class (made when new)."""
    return ps.add_example(name, body.photo_id)


@router.get("/disk", tags=["system"])
def disk(ps: Core) -> dict[str, Any]:
    return ps.disk()


@router.get("/doctor", tags=["system"])
def doctor(ps: Core) -> dict[str, Any]:
    """The health report: each finding with its severity and the command that fixes it."""
    return ps.health()


@router.get("/status", tags=["system"])
def status(ps: Core) -> dict[str, Any]:
    return ps.status()


# -- the always-on service ------------------------------------------------------------------------------


def service(request: Request) -> Service | None:
    return request.app.state.service


@router.get("/service", tags=["service"])
def service_status(request: Request, ps: Core) -> dict[str, Any]:
    """Whether the library's service runs, what it watches and does, and its settings."""
    return describe(ps, service(request))


@router.post("/service/rescan", tags=["service"])
def service_rescan(request: Request) -> dict[str, Any]:
    """Rescan every root now (the periodic rescan, sooner)."""
    live = service(request)
    if live is None:
        raise InvalidParameter("this server runs no service (it was started with --no-service)")
    live.rescan()
    return {"rescan": "queued"}


@router.get("/roots", tags=["service"])
def roots(ps: Core) -> list[dict[str, Any]]:
    """The library's roots; a held-back one (it looks unmounted) says why and how to confirm a deletion."""
    return ps.roots()


class ConfirmMissing(BaseModel):
    root: str = Field(min_length=1, max_length=4096, description="A root of the library, as listed by /roots.")


@router.post("/roots/confirm-missing", tags=["service"])
def confirm_missing(ps: Core, body: ConfirmMissing) -> dict[str, Any]:
    """The photos under a held-back root are really gone: scan it and mark them missing."""
    if body.root not in {r["path"] for r in ps.roots()}:
        raise InvalidParameter(f"{body.root} is not a root of this library", "root")
    summary, _ = ps.index([body.root], run_models=False, confirm_missing=True)
    return summary.as_dict()


class ServiceSettings(BaseModel):
    watch: bool | None = None
    rescan_minutes: float | None = Field(None, ge=0, le=525_600)  # a year
    full_scan_at: str | None = Field(None, max_length=5)
    quiet_hours: str | None = Field(None, max_length=11)
    threads: int | None = Field(None, ge=0, le=1024)
    scan_workers: int | None = Field(None, ge=0, le=1024)
    background_nice: int | None = Field(None, ge=0, le=19)
    settle_seconds: float | None = Field(None, ge=0, le=3600)
    missing_guard_share: float | None = Field(None, gt=0, le=1)
    missing_guard_min: int | None = Field(None, ge=1, le=10**9)


@router.post("/settings", tags=["service"])
def update_settings(request: Request, ps: Core, body: ServiceSettings) -> dict[str, Any]:
    """Change the service's settings (written to config.toml); schedule and quiet hours apply at once."""
    values = body.model_dump(exclude_none=True)
    if not values:
        raise InvalidParameter("no setting given")
    ps.update_settings(values)
    return describe(ps, service(request))
