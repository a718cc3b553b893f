"""Who may ask, and how much: one ASGI middleware in front of the API and the pages.

* Loopback only by default. With a token (required when the server listens on any other address) every request
  carries it: API calls in the ``X-Photoscout-Token`` header (or ``Authorization: Bearer``), the browser in an
  ``HttpOnly``, ``SameSite=Strict`` cookie it gets once through ``/login``.
* Without a token, the ``Host`` header must name this server's loopback address (a web page elsewhere cannot reach
  it by DNS rebinding); with a token, the token keeps strangers out whatever name they use.
* State-changing requests (POST, PUT, PATCH, DELETE) must come from this origin: they carry the
  ``X-Photoscout-Request`` header (a cross-site form cannot set it, and cross-site scripts cannot send it without
  a CORS grant, which is never given) or an ``Origin`` equal to this server's.
* Bodies are bounded (uploads and JSON alike), whether or not they declare their length.
* Every answer has a content security policy and the usual hardening headers.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "photoscout_token"
TOKEN_HEADER = "x-photoscout-token"
REQUEST_HEADER = "x-photoscout-request"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
OPEN_PATHS = {"/login", "/static/app.css", "/api/v1/health"}  # reachable without the token
CSP = ("default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HARDENING = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
             (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
             (b"cross-origin-resource-policy", b"same-origin")]
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1", "[::1]"}


class TooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: set[str], max_body: int) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        refusal = self._refuse(headers, path, method)
        if refusal is not None:
            await _answer(send, *refusal, html=_wants_html(headers, path), path=path)
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _answer(send, 413, f"the request body is larger than {self.max_body:,} bytes")
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise TooLarge
            return message

        started = False

        async def hardened_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = list(message.get("headers", [])) + HARDENING
            await send(message)

        try:
            await self.app(scope, bounded_receive, hardened_send)
        except TooLarge:
            if not started:
                await _answer(send, 413, f"the request body is larger than {self.max_body:,} bytes")

    def _refuse(self, headers: dict[str, str], path: str, method: str) -> tuple[int, str] | None:
        host = headers.get("host", "")
        if self.token is None and _hostname(host) not in self.allowed_hosts:  # with a token, any name may be used
            return 421, f"this server does not answer for host {host!r}"
        if method in UNSAFE and REQUEST_HEADER not in headers:
            origin = headers.get("origin")
            if not origin or urlsplit(origin).netloc != host:
                return 403, "a state-changing request from another site (or without an Origin) is refused"
        if self.token is None or path in OPEN_PATHS:
            return None
        given = headers.get(TOKEN_HEADER) or _bearer(headers.get("authorization")) or _cookie(headers.get("cookie"))
        if given and hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        return 401, "this server needs its token (the X-Photoscout-Token header, or sign in at /login)"


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def _cookie(value: str | None) -> str | None:
    if not value:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(value)
    except Exception:  # a malformed cookie header is no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def _wants_html(headers: dict[str, str], path: str) -> bool:
    return not path.startswith("/api/") and "text/html" in headers.get("accept", "")


async def _answer(send: Send, status: int, message: str, *, html: bool = False, path: str = "/") -> None:
    if html and status == 401:  # a browser without the cookie: to the sign-in page
        headers = [(b"location", b"/login"), (b"content-length", b"0")] + HARDENING
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HARDENING]})
    await send({"type": "http.response.body", "body": body})


def allowed_hosts(host: str) -> set[str]:
    """The host names a request may name: loopback names always, and the address the server listens on."""
    names = set(LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::", ""):
        names.add(f"[{host}]" if ":" in host else host)
    return names


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")
