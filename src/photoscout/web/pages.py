"""The web pages, one view per page: each handler gathers the page's data from the core and answers it as HTML
(server-rendered: a search is a URL whose first page of results is in the HTML, so it can be bookmarked and works
without JavaScript) or, when asked (``Accept: application/json`` or ``?format=json``), as JSON: the same handler,
the same data (datasette's way). ``static/app.js`` reads the next page of a search that way on scroll, and adds
keyboard navigation, marks and the buttons that start, promote and roll back. The pages hold no rules: what a
model version allows, where a result's neighbours are and where the next page starts come from the core."""

from __future__ import annotations

import hmac
from io import BytesIO
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from photoscout.app import Photoscout
from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.search.filters import MULTI, PARAMS, Filters
from photoscout.search.matches import MAX_WIDEN
from photoscout.search.results import MAX_OFFSET, SORTS, SearchResult
from photoscout.service.runner import describe
from photoscout.web.api import MAX_UPLOAD
from photoscout.web.security import COOKIE

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
PAGE = 40  # results on one screen (``n`` asks for another number)
# what a search page's URL may carry
SEARCH_KEYS = ("q", "similar_to", "offset", "n", "model", "sort", "widen", *PARAMS)


def _core(request: Request) -> Photoscout:
    return request.app.state.core


def wants_json(request: Request) -> bool:
    """The page asked for as data: ``?format=json``, or an ``Accept`` header that names JSON and not HTML."""
    if request.query_params.get("format") == "json":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _respond(request: Request, name: str, data: dict[str, Any], status: int = 200) -> Response:
    """One page's data as JSON or rendered by its template."""
    if wants_json(request):
        return JSONResponse(jsonable_encoder(data), status_code=status)
    context = {**data, "token_required": request.app.state.token is not None}
    return templates.TemplateResponse(request, name, context, status_code=status)


def _number(value: str | None, name: str, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f"{value!r} is not a number", name) from None


def _params(request: Request) -> dict[str, Any]:
    """A search page's parameters: one value each, several (a list) for the filters that take several."""
    query = request.query_params
    params: dict[str, Any] = {k: v for k, v in query.items() if k in SEARCH_KEYS and k not in MULTI}
    params |= {k: [v for v in query.getlist(k) if v.strip()] for k in MULTI if query.getlist(k)}
    return {k: v for k, v in params.items() if v}


def _search_data(ps: Photoscout, params: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"params": params, "q": params.get("q", "").strip(), "facets": ps.facets(), "error": None,
            "result": None, "next_url": None, "widen_url": None, "sort_urls": {}, "marks": {}, "uploaded": None,
            "album": None, "album_search": None, "teach": None, **extra}


def _page_of(data: dict[str, Any], result: SearchResult, params: dict[str, str]) -> None:
    data["result"] = result.as_dict()
    if result.next_offset is not None:
        data["next_url"] = "/?" + urlencode({**params, "offset": result.next_offset}, doseq=True)
    if result.cutoff is not None and result.cutoff["widen"] < MAX_WIDEN:  # the matches, with a lower cutoff
        data["widen_url"] = "/?" + urlencode({**{k: v for k, v in params.items() if k != "offset"},
                                              "widen": result.cutoff["widen"] + 1}, doseq=True)
    data["sort_urls"] = {sort: "/?" + urlencode({**{k: v for k, v in params.items() if k not in ("offset", "sort")},
                                                 "sort": sort}, doseq=True) for sort in SORTS}


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request) -> Response:
    """Search (``q``, or ``similar_to`` a photo) or, without either, the library in folder order; filters narrow
    both."""
    ps = _core(request)
    params = _params(request)
    data = _search_data(ps, params)
    q, similar = data["q"], params.get("similar_to", "")
    try:
        offset = _number(params.get("offset"), "offset", 0)
        page = _number(params.get("n"), "n", PAGE)
        filters = Filters.from_params(params)
        if q or similar:
            result = ps.search(q or None, similar_to=_number(similar, "similar_to", 0) if not q else None,
                               limit=page, offset=offset, filters=filters, model=params.get("model") or None,
                               sort=params.get("sort") or "relevance", widen=_number(params.get("widen"), "widen", 0))
            if q:
                judged = ps.marks(q)
                data["marks"] = {**{p: "relevant" for p in judged["relevant"]},
                                 **{p: "not_relevant" for p in judged["not_relevant"]}}
                data["teach"] = {"relevant": len(judged["relevant"]), "not_relevant": len(judged["not_relevant"]),
                                 "learned": any(w.startswith("like the photos you marked")
                                                for h in result.hits for w in h.why)}
        else:
            result = ps.browse(folder=filters.paths[0] if filters.paths else None, limit=page, offset=offset)
        _page_of(data, result, params)
        data["album_search"] = {"query": q, "filters": filters.params(), "sort": params.get("sort") or "date"}
    except PhotoscoutError as exc:
        data["error"] = str(exc)
        return _respond(request, "search.html", {**data, **exc.details()}, exc.status)
    return _respond(request, "search.html", data)


@router.get("/albums", response_class=HTMLResponse)
def albums_page(request: Request) -> Response:
    """The smart albums, each with how many photos it holds now."""
    return _respond(request, "albums.html", {"albums": _core(request).albums()})


@router.get("/albums/{name}", response_class=HTMLResponse)
def album_page(request: Request, name: Annotated[str, PathParam(min_length=1, max_length=100)]) -> Response:
    """What an album holds now, in the search page's grid (more on scroll)."""
    ps = _core(request)
    data = _search_data(ps, {})
    try:
        offset = _number(request.query_params.get("offset"), "offset", 0)
        album, result = ps.album(name, limit=PAGE, offset=offset)
        data |= {"album": album, "q": album["query"], "result": result.as_dict()}
        if result.next_offset is not None:
            data["next_url"] = f"/albums/{quote(album['name'])}?" + urlencode({"offset": result.next_offset})
    except PhotoscoutError as exc:
        data["error"] = str(exc)
        return _respond(request, "search.html", {**data, **exc.details()}, exc.status)
    return _respond(request, "search.html", data)


@router.post("/search/image", response_class=HTMLResponse)
async def image_search_page(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    from starlette.concurrency import run_in_threadpool

    ps = _core(request)
    data = _search_data(ps, {}, uploaded=file.filename)
    try:
        body = await file.read(MAX_UPLOAD + 1)
        if not body or len(body) > MAX_UPLOAD:
            raise InvalidParameter(f"give a photo of at most {MAX_UPLOAD // 2**20} MB", "file")
        result = await run_in_threadpool(ps.search, image=BytesIO(body), limit=PAGE)
        data["result"] = result.as_dict()
    except PhotoscoutError as exc:
        data["error"] = str(exc)
        return _respond(request, "search.html", data, exc.status)
    return _respond(request, "search.html", data)


@router.get("/photos/{photo_id}", response_class=HTMLResponse)
def photo_page(request: Request, photo_id: int, q: Annotated[str, Query(max_length=1000)] = "",
               rank: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
               t: Annotated[float, Query(ge=0, le=10**7)] = 0) -> Response:
    """One photo, larger, with what is known of it; "more like this"; the neighbours in the search it came from."""
    ps = _core(request)
    photo = ps.photo(photo_id)
    return _respond(request, "photo.html", {
        "photo": photo, "q": q, "t": t, "similar": [h.as_dict() for h in ps.similar(photo_id)],
        "neighbours": ps.neighbours(photo_id, q, rank) if q else {"previous": None, "next": None},
        "classes": ps.facets()["classes"]})


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    """Every version with the actions it allows, the embedding versions' coverage, evaluations, history, log."""
    ps = _core(request)
    models = ps.models_list()
    details = {m["ref"]: ps.model_details(m["ref"]) for m in models if m["type"] == "embedding"}
    return _respond(request, "models.html", {
        "models": models, "details": details, "evaluations": ps.evaluations()[:20], "history": ps.history()[:50],
        "log": ps.decision_log(tail=40)})


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, q: Annotated[str, Query(max_length=1000)] = "",
                 right: Annotated[str, Query(max_length=200)] = "",
                 left: Annotated[str, Query(max_length=200)] = "") -> Response:
    ps = _core(request)
    data: dict[str, Any] = {"q": q, "left": left, "right": right, "result": None, "error": None,
                            "models": ps.facets()["models"]}
    if q and right:
        try:
            data["result"] = ps.compare(q, right, left=left or None, limit=20)
        except PhotoscoutError as exc:
            data["error"] = str(exc)
    return _respond(request, "compare.html", data)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> Response:
    """Recent jobs (live while one runs) and the versions a job can be started for."""
    ps = _core(request)
    candidates = [m for m in ps.models_list() if m["actions"]["job"]]
    return _respond(request, "jobs.html", {"jobs": ps.jobs(30), "candidates": candidates})


@router.get("/disk", response_class=HTMLResponse)
def disk_page(request: Request) -> Response:
    ps = _core(request)
    report = ps.health()
    return _respond(request, "disk.html", {"disk": ps.disk(), "findings": report["findings"],
                                           "healthy": report["healthy"]})


@router.get("/service", response_class=HTMLResponse)
def service_page(request: Request) -> Response:
    """The always-on service: what it watches and does, roots held back (with the button that confirms a
    deletion), the schedule, quiet hours and CPU limits (a form that changes them)."""
    ps = _core(request)
    return _respond(request, "service.html", {"service": describe(ps, request.app.state.service),
                                              "roots": ps.roots()})


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _respond(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
    expected = request.app.state.token
    if expected is None:
        return RedirectResponse("/", status_code=303)
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return _respond(request, "login.html", {"error": "That is not this server's token."}, 401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, expected, httponly=True, samesite="strict", max_age=30 * 86400,
                        secure=request.url.scheme == "https")
    return response
