"""Finding and calling a running ``photoscout serve`` of the same home (stdlib only: importing this is cheap).

The server announces itself in ``<home>/data/server.json`` (its address and process id) while it runs; a command
that finds a live one sends it the request instead of starting a database and loading models itself. The API
token, when the server needs one, lives in ``<home>/data/api-token`` (0600), readable by the home's owner only.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photoscout.common.errors import EnvironmentProblem, PhotoscoutError
from photoscout.config import Settings

API_PREFIX = "/api/v1"
TOKEN_HEADER = "X-Photoscout-Token"


def server_file(settings: Settings) -> Path:
    return settings.data_dir / "server.json"


def token_file(settings: Settings) -> Path:
    return settings.data_dir / "api-token"


def token(settings: Settings, *, create: bool = False) -> str | None:
    """The home's API token (made on first use when ``create``)."""
    path = token_file(settings)
    try:
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvironmentProblem(f"cannot read the API token {path}: {exc}") from exc
    if not create:
        return None
    value = secrets.token_urlsafe(32)
    try:
        settings.ensure_dirs()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value + "\n")
    except FileExistsError:  # made meanwhile by another process: use that one
        return token(settings)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the API token {path}: {exc.strerror or exc}") from exc
    return value


@dataclass
class Server:
    url: str
    pid: int
    token: str | None

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, *,
             timeout: float = 30.0) -> Any:
        """One API call; the server's JSON answer, or its error as a PhotoscoutError with the same message."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v not in (None, False, "")},
                                       doseq=True)
        req = urllib.request.Request(f"{self.url}{API_PREFIX}{path}" + (f"?{query}" if query else ""),
                                     method=method, headers={"Accept": "application/json"})
        if self.token:
            req.add_header(TOKEN_HEADER, self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
                message = body.get("error") or str(body)
            except ValueError:
                message = f"the server answered {exc.code}"
            raise PhotoscoutError(message, status=exc.code) from None


def announce(settings: Settings, url: str) -> None:
    path = server_file(settings)
    tmp = path.with_name(f".server.json.{os.getpid()}")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
    os.replace(tmp, path)


def withdraw(settings: Settings) -> None:
    path = server_file(settings)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def find(settings: Settings) -> Server | None:
    """A live server of this home, or None (no file, a dead process, or it does not answer at once)."""
    try:
        info = json.loads(server_file(settings).read_text(encoding="utf-8"))
        url, pid = str(info["url"]), int(info["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if urllib.parse.urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None  # only a server on this machine's loopback is used this way
    try:
        server = Server(url, pid, token(settings))
        server.call("GET", "/health", timeout=2.0)
    except (OSError, PhotoscoutError):
        return None
    return server
