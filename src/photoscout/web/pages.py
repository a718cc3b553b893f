"""The web pages: server-rendered (a search is a URL whose first page of results is in the HTML, so it can be
bookmarked and works without JavaScript); ``static/app.js`` adds more results on scroll, keyboard navigation,
marks and the buttons that start, promote and roll back. Each page makes its calls on the core and renders."""

from __future__ import annotations

import hmac
from datetime import date
from io import BytesIO
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from photoscout.app import Photoscout
from photoscout.errors import InvalidParameter, PhotoscoutError
from photoscout.search.query import Filters
from photoscout.web.api import MAX_UPLOAD
from photoscout.web.security import COOKIE

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
PAGE = 40
FILTER_KEYS = ("category", "after", "before", "folder", "camera", "has_text", "model")


def _core(request: Request) -> Photoscout:
    return request.app.state.core


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("token_required", request.app.state.token is not None)
    return templates.TemplateResponse(request, name, context, status_code=status)


def _date(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"{value!r} is not a date (YYYY-MM-DD)", name) from None


def _filters(params: dict[str, str]) -> Filters:
    return Filters(category=params.get("category") or None, after=_date(params.get("after"), "after"),
                   before=_date(params.get("before"), "before"), path=params.get("folder") or None,
                   camera=params.get("camera") or None, has_text=params.get("has_text") in ("1", "on", "true"))


def _offset(value: str | None) -> int:
    try:
        return max(0, min(int(value or 0), 400))
    except ValueError:
        return 0


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request) -> HTMLResponse:
    """Search (``q``) or, without a query, the library in folder order; filters narrow either."""
    ps = _core(request)
    params = {k: v for k, v in request.query_params.items()
              if k in ("q", "similar_to", "offset", "n", *FILTER_KEYS)}
    q = params.get("q", "").strip()
    similar = params.get("similar_to", "")
    offset = _offset(params.get("offset"))
    page = int(params["n"]) if params.get("n", "").isdigit() and 1 <= int(params["n"]) <= 100 else PAGE
    context: dict[str, Any] = {"params": params, "q": q, "facets": ps.facets(), "error": None, "hits": [],
                               "result": None, "next_url": None, "marks": {}}
    try:
        filters = _filters(params)
        if q or similar.isdigit():
            result = ps.search(q or None, similar_to=int(similar) if similar.isdigit() and not q else None,
                               limit=page, offset=offset, filters=filters, model=params.get("model") or None)
            context.update(result=result, hits=[h.__dict__ for h in result.hits])
            if q:
                judged = ps.marks(q)
                context["marks"] = {**{p: "relevant" for p in judged["relevant"]},
                                    **{p: "not_relevant" for p in judged["not_relevant"]}}
        else:
            rows = ps.photos(limit=page, offset=offset, folder=filters.path)
            context["hits"] = [{"photo_id": r["id"], "path": r["path"], "why": [], "categories": r["categories"],
                                "taken_at": r["taken_at"], "thumbnail": r["thumbnail"]} for r in rows]
        if len(context["hits"]) == page and offset + 2 * page <= 500:
            context["next_url"] = "/?" + urlencode({**params, "offset": offset + page})
    except PhotoscoutError as exc:
        context["error"] = str(exc)
        return _render(request, "search.html", exc.status, **context)
    return _render(request, "search.html", **context)


@router.post("/search/image", response_class=HTMLResponse)
async def image_search_page(request: Request, file: Annotated[UploadFile, File()]) -> HTMLResponse:
    from starlette.concurrency import run_in_threadpool

    ps = _core(request)
    data = await file.read(MAX_UPLOAD + 1)
    context: dict[str, Any] = {"params": {}, "q": "", "facets": ps.facets(), "error": None, "hits": [],
                               "result": None, "next_url": None, "marks": {}, "uploaded": file.filename}
    try:
        if not data or len(data) > MAX_UPLOAD:
            raise InvalidParameter(f"give a photo of at most {MAX_UPLOAD // 2**20} MB", "file")
        result = await run_in_threadpool(ps.search, image=BytesIO(data), limit=PAGE)
        context.update(result=result, hits=[h.__dict__ for h in result.hits])
    except PhotoscoutError as exc:
        context["error"] = str(exc)
        return _render(request, "search.html", exc.status, **context)
    return _render(request, "search.html", **context)


@router.get("/photos/{photo_id}", response_class=HTMLResponse)
def photo_page(request: Request, photo_id: int, q: Annotated[str, Query(max_length=1000)] = "",
               rank: Annotated[int, Query(ge=0, le=499)] = 0) -> HTMLResponse:
    """One photo, larger, with what is known of it; "more like this"; the neighbours in the search it came from."""
    ps = _core(request)
    photo = ps.photo(photo_id)
    similar: list[dict[str, Any]] = []
    prev_url = next_url = None
    try:
        similar = [h.__dict__ for h in ps.search(similar_to=photo_id, limit=13).hits if h.photo_id != photo_id][:12]
        if q:
            around = ps.search(q, limit=3, offset=max(rank - 1, 0)).hits
            ids = [h.photo_id for h in around]
            if photo_id in ids:
                i = ids.index(photo_id)
                if i > 0:
                    prev_url = f"/photos/{ids[i - 1]}?" + urlencode({"q": q, "rank": rank - 1})
                if i + 1 < len(ids):
                    next_url = f"/photos/{ids[i + 1]}?" + urlencode({"q": q, "rank": rank + 1})
    except PhotoscoutError:
        pass  # no embedding model or no vector for this photo: the photo is shown without neighbours
    return _render(request, "photo.html", photo=photo, similar=similar, q=q, prev_url=prev_url, next_url=next_url,
                   classes=ps.facets()["classes"])


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> HTMLResponse:
    ps = _core(request)
    models = ps.models_list()
    details = {f"{m['name']}@{m['version']}": ps.model_details(f"{m['name']}@{m['version']}") for m in models
               if m["type"] == "embedding"}
    evaluations = ps.evaluations()[:20]
    return _render(request, "models.html", models=models, details=details, evaluations=evaluations,
                   history=ps.history()[:50], log=ps.decision_log(tail=40))


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, q: Annotated[str, Query(max_length=1000)] = "",
                 right: Annotated[str, Query(max_length=200)] = "",
                 left: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    ps = _core(request)
    facets = ps.facets()
    result, error = None, None
    if q and right:
        try:
            result = ps.compare(q, right, left=left or None, limit=20)
        except PhotoscoutError as exc:
            error = str(exc)
    return _render(request, "compare.html", q=q, left=left, right=right, result=result, error=error,
                   models=facets["models"])


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    ps = _core(request)
    candidates = [m for m in ps.models_list() if m["status"] in ("staging", "active")]
    return _render(request, "jobs.html", jobs=ps.jobs(30), candidates=candidates, kinds=ps.job_kinds())


@router.get("/disk", response_class=HTMLResponse)
def disk_page(request: Request) -> HTMLResponse:
    ps = _core(request)
    report = ps.health()
    return _render(request, "disk.html", disk=ps.disk(), findings=report["findings"], healthy=report["healthy"])


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _render(request, "login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=200)]) -> Response:
    expected = request.app.state.token
    if expected is None:
        return RedirectResponse("/", status_code=303)
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        return _render(request, "login.html", 401, error="That is not this server's token.")
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, expected, httponly=True, samesite="strict", max_age=30 * 86400,
                        secure=request.url.scheme == "https")
    return response
