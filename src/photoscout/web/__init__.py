"""The web face: ``photoscout serve`` runs one process holding one warm core (database pool, loaded models, query
cache) behind a JSON API (``/api/v1``, OpenAPI at ``/api/v1/openapi.json``) and server-rendered pages.

    api.py         the JSON API: parse, one core call, return
    pages.py       the pages (templates/, static/): a search is a URL rendered on the server
    background.py  jobs started from the web, run in the server process
    security.py    loopback or token, same-origin writes, bounded bodies, content security policy

``serve`` holds the library's service lock (one server per home) and runs the always-on service (``service/``)
beside the web server: new photos become searchable without anyone asking.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from photoscout import __version__, client
from photoscout.app import Photoscout
from photoscout.common.errors import InvalidParameter, PhotoscoutError
from photoscout.service.lock import ServiceLock
from photoscout.service.runner import Service
from photoscout.web import api, pages, security
from photoscout.web.background import Background

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_BODY = api.MAX_UPLOAD + 64 * 1024  # an upload and its form fields


def _is_page(request: Request) -> bool:
    """An error for a person (an error page), else JSON: the pages' own test of what was asked for."""
    return not request.url.path.startswith("/api/") and not pages.wants_json(request) \
        and "text/html" in request.headers.get("accept", "")


def _error(request: Request, status: int, message: str, **extra: Any) -> Response:
    if _is_page(request):
        return pages.templates.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                                status_code=status)
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(core: Photoscout, *, token: str | None = None, host: str = "127.0.0.1",
               warm: bool = True, service: Service | None = None) -> Any:
    """The ASGI application over ``core`` (which it closes when it stops). ``token``: required on every request;
    ``host``: the address served (names accepted in the Host header); ``warm``: load the query model at start;
    ``service``: the always-on service to start beside it (and stop, committing its work, when it stops)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            core.warm_up()  # the first search after start is as fast as the next
        if service is not None:
            service.start()
        try:
            yield
        finally:
            if service is not None:
                service.stop()
            app.state.background.shutdown()
            core.close()

    app = FastAPI(title="photoscout", version=__version__, lifespan=lifespan, openapi_url="/api/v1/openapi.json",
                  docs_url="/api/v1/docs", redoc_url=None,
                  description="Local-first photo search: the JSON API of `photoscout serve`.")
    app.state.core = core
    app.state.service = service
    app.state.token = token
    app.state.background = Background(core)
    pages.templates.env.filters["basename"] = lambda p: os.path.basename(str(p or ""))
    pages.templates.env.filters["filesize"] = lambda n: f"{(n or 0) / 2**20:,.1f} MB"

    @app.exception_handler(PhotoscoutError)
    async def core_error(request: Request, exc: PhotoscoutError) -> Response:
        extra: dict[str, Any] = {}
        if isinstance(exc, InvalidParameter) and exc.params:
            extra["params"] = list(exc.params)
        extra.update(exc.details())  # e.g. a refused promotion's verdict: the CLI's --json says the same
        return _error(request, exc.status, str(exc), **extra)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):  # no such thing: /photos/../etc/passwd
            return _error(request, 404, f"nothing at {request.url.path}")
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
                    for e in exc.errors()]
        return _error(request, 422, "; ".join(problems) or "invalid request",
                      detail=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()])

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}"
        return _error(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(request, 500, f"internal error ({type(exc).__name__}); the server log has the details")

    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return security.Guard(app, token=token, allowed_hosts=security.allowed_hosts(host), max_body=MAX_BODY)


def _check_free(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidParameter(f"cannot listen on {host}:{port}: {exc.strerror} (another photoscout serve? "
                                   "choose another port)", "port") from None


def serve(core: Photoscout, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          on_ready: Any = None, with_service: bool = True) -> None:
    """Run the server until interrupted, with the library's always-on service beside it (``with_service``). Any
    address other than loopback needs a token (``token``, or the home's own, made on first use). A second server
    on the same home is refused (``ServiceLock``): it names the one running."""
    with ServiceLock(core.settings, "serve") as held:
        _serve(core, held, host=host, port=port, token=token, on_ready=on_ready, with_service=with_service)


def _serve(core: Photoscout, held: ServiceLock, *, host: str, port: int, token: str | None, on_ready: Any,
           with_service: bool) -> None:
    import uvicorn

    if not security.is_loopback(host) and token is None:
        token = client.token(core.settings, create=True)
    if token is not None and len(token) < 16:
        raise InvalidParameter("a token needs at least 16 characters", "token")
    _check_free(host, port)
    core.db  # noqa: B018 - open the database (and start the embedded server) before listening
    local = host if security.is_loopback(host) else "127.0.0.1"
    url = f"http://{'[' + local + ']' if ':' in local else local}:{port}"
    service = Service(core, mode="serve", url=url) if with_service else None
    application = create_app(core, token=token, host=host, service=service)
    config = uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False,
                            limit_concurrency=64, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)

    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets)
        if server.started:
            held.announce(url)
            client.announce(core.settings, url)
            if on_ready:
                on_ready(url if security.is_loopback(host) else f"http://{host}:{port}", token)

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    finally:
        client.withdraw(core.settings)
