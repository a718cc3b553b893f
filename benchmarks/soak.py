"""The always-on service under a NAS's life (issue #27), bounded and on loopback: for ``seconds`` photos arrive at a
steady rate in a watched root, ``clients`` search through the API, and a re-embedding job runs in the server,
while the server is SIGKILLed (twice by default) and the embedded PostgreSQL is killed (once). A supervisor thread
stands in for systemd (``Restart=on-failure``): it starts ``photoscout serve`` again when it dies; the service
inside it starts the database again. At the end, with the server stopped, the database is read directly:

arrived, present (exactly once), embedded by every active model, lost, duplicated, wrongly marked (missing or
error), failed searches (only while something was down), and whether the re-embedding job completed.

``prepare`` makes the library (its own embedded server: the soak kills it); ``run`` does the rest. The test suite
runs a short one (tests/test_soak.py); ``python -m benchmarks.bench_service --soak-seconds 300`` the long one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "photos-dev"
REEMBED = "random-vectors@v0.1.0"  # a second embedding version, cheap to compute: the re-embedding job's
QUERIES = ["food", "a receipt", "a screenshot", "a dog", "a car", "people", "a laptop", "a document", "flowers"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def source_photos() -> list[Path]:
    return sorted(DATASET.glob("*/*.jpg"))


def prepare(home: Path, wheels: Path | None, seed: list[Path], root: Path) -> None:
    """A library of its own (embedded PostgreSQL under ``home``): the built-in models, ``REEMBED`` in staging,
    ``seed`` photos indexed under ``root``."""
    from photoscout.app import Photoscout
    from photoscout.registry import builtin

    (root / "seed").mkdir(parents=True, exist_ok=True)
    for src in seed:
        shutil.copy2(src, root / "seed" / f"{src.parent.name}-{src.name}")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("rescan_minutes = 1\nsettle_seconds = 2\n")
    with Photoscout.open(home) as core:
        core.install_builtin(wheels_dir=wheels)
        builtin.install(core.db, core.settings, wheels_dir=wheels, refs=[REEMBED])
        core.index([root])


@dataclass
class Counts:
    seconds: float = 0.0
    arrived: int = 0
    present: int = 0
    embedded: int = 0  # of the photos in the library, run through every active model
    lost: int = 0
    duplicated: int = 0
    wrongly_marked: int = 0
    searches: int = 0
    failed_searches: int = 0
    server_kills: int = 0
    server_starts: int = 0
    database_kills: int = 0
    reembed_job: str | None = None
    settle_s: float = 0.0  # after the last arrival, until everything was present and embedded
    missing_models: dict[str, int] = field(default_factory=dict)
    failures_by_phase: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Supervisor:
    """systemd's part: start ``photoscout serve``, start it again (after RestartSec) whenever it dies."""

    def __init__(self, home: Path, port: int, log: Path) -> None:
        self.home, self.port, self.log = home, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _spawn(self) -> None:
        env = {**os.environ, "PHOTOSCOUT_HOME": str(self.home)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([PHOTOSCOUT, "serve", "--port", str(self.port)], env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.starts += 1

    def _run(self) -> None:
        self._spawn()
        while not self._stop.is_set():
            assert self.proc is not None
            if self.proc.poll() is not None and not self._stop.is_set():
                time.sleep(1.0)  # RestartSec
                self._spawn()
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def stop(self) -> int | None:
        self._stop.set()
        self._thread.join(10)
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def api(port: int, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None,
        timeout: float = 10.0) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/json", "X-Photoscout-Request": "1", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def wait_up(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api(port, "GET", "/health", timeout=2)
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise RuntimeError(f"photoscout serve did not answer on port {port} within {timeout:.0f} s")


def kill_database(home: Path) -> bool:
    """SIGKILL the embedded postmaster (a crash of the database)."""
    from photoscout.database.embedded import EmbeddedServer

    server = EmbeddedServer(home / "data" / "pg")
    if not server.is_running():
        return False
    server.crash()
    return True


def run(home: Path, root: Path, arrivals: list[Path], *, seconds: float, clients: int = 4,
        server_kills: int = 2, database_kills: int = 1, settle_timeout: float = 600,
        log: Path | None = None, say: Any = print) -> Counts:
    counts = Counts(seconds=seconds)
    port = free_port()
    supervisor = Supervisor(home, port, log or home / "soak-server.log").start()
    wait_up(port)
    say(f"serve is up on port {port}; {len(arrivals)} photos will arrive over {seconds:.0f} s")
    job = api(port, "POST", "/jobs", body={"kind": "embed", "model": REEMBED})
    stop = threading.Event()
    phase = {"now": "running"}
    lock = threading.Lock()

    def search_client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            try:
                api(port, "GET", "/search", {"q": rng.choice(QUERIES), "limit": 20}, timeout=10)
                ok = True
            except (OSError, ValueError):
                ok = False
            with lock:
                counts.searches += 1
                if not ok:
                    counts.failed_searches += 1
                    counts.failures_by_phase[phase["now"]] = counts.failures_by_phase.get(phase["now"], 0) + 1
            time.sleep(0.05 if ok else 0.25)

    threads = [threading.Thread(target=search_client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    inbox = root / "arrivals"
    inbox.mkdir(parents=True, exist_ok=True)
    events = sorted([(seconds * (i + 1) / (server_kills + 1), "server") for i in range(server_kills)]
                    + [(seconds * (i + 1.5) / (database_kills + 2), "database") for i in range(database_kills)])
    started = time.monotonic()
    interval = seconds / max(1, len(arrivals))
    for n, src in enumerate(arrivals):
        due = started + n * interval
        while events and time.monotonic() - started >= events[0][0]:
            _, what = events.pop(0)
            if what == "server":
                phase["now"] = "server restart"
                supervisor.kill()
                counts.server_kills += 1
                say(f"{time.monotonic() - started:6.1f} s: SIGKILL the server")
            else:
                phase["now"] = "database restart"
                counts.database_kills += int(kill_database(home))
                say(f"{time.monotonic() - started:6.1f} s: SIGKILL the embedded PostgreSQL")
        while time.monotonic() < due:
            time.sleep(0.01)
        shutil.copy2(src, inbox / f"{n:05d}-{src.name}")  # written in place, as a copy over SMB is
        counts.arrived += 1
        if phase["now"] != "running" and _answers(port):
            phase["now"] = "running"
    say(f"{time.monotonic() - started:6.1f} s: {counts.arrived} photos arrived; waiting for the library to settle")
    settle_started = time.monotonic()
    expected = {f"{n:05d}-{src.name}" for n, src in enumerate(arrivals)}
    while time.monotonic() - settle_started < settle_timeout:
        if _answers(port):
            phase["now"] = "running"
        done = _settled(home, inbox, expected)
        if done:
            break
        time.sleep(1.0)
    counts.settle_s = round(time.monotonic() - settle_started, 1)
    stop.set()
    for t in threads:
        t.join(15)
    try:
        counts.reembed_job = api(port, "GET", f"/jobs/{job['id']}")["status"]
    except (OSError, ValueError):
        counts.reembed_job = "unknown (server not answering)"
    supervisor.stop()
    counts.server_starts = supervisor.starts
    _count(home, root, inbox, expected, counts)
    return counts


def _answers(port: int) -> bool:
    """Whether the server answers searches again (its database included: /health answers before that)."""
    try:
        api(port, "GET", "/search", {"q": "food", "limit": 1}, timeout=2)
        return True
    except (OSError, ValueError):
        return False


def _open(home: Path) -> Any:
    from photoscout.app import Photoscout

    return Photoscout.open(home)


def _settled(home: Path, inbox: Path, expected: set[str]) -> bool:
    """Every arrival present and run through every active model (read through the server's own database)."""
    try:
        report = _report(home, inbox)
    except Exception:  # noqa: BLE001 - the database is restarting
        return False
    return report["names"] >= expected and not any(report["missing_models"].values())


def _report(home: Path, inbox: Path) -> dict[str, Any]:
    import psycopg

    from photoscout.database.embedded import EmbeddedServer

    server = EmbeddedServer(home / "data" / "pg")
    with psycopg.connect(server.url("photoscout"), connect_timeout=5) as conn:
        rows = conn.execute("SELECT path, status FROM photos").fetchall()
        active = conn.execute("SELECT id, name || '@' || version FROM model_registry WHERE status = 'active'"
                              ).fetchall()
        missing_models = {}
        for mid, ref in active:
            missing_models[ref] = conn.execute(
                "SELECT count(*) FROM photos p WHERE p.status = 'ok' AND NOT EXISTS (SELECT 1 FROM photo_model_runs r "
                "WHERE r.photo_id = p.id AND r.model_id = %s AND r.outcome <> 'failed')", (mid,)).fetchone()[0]
    prefix = str(inbox) + "/"
    names = {p[len(prefix):] for p, s in rows if p.startswith(prefix) and s == "ok"}
    return {"rows": rows, "names": names, "missing_models": missing_models}


def _count(home: Path, root: Path, inbox: Path, expected: set[str], counts: Counts) -> None:
    from photoscout.database.embedded import EmbeddedServer

    server = EmbeddedServer(home / "data" / "pg")
    server.acquire("photoscout")  # the server stopped: read the library with the database up
    try:
        report = _report(home, inbox)
    finally:
        server.release()
    rows = report["rows"]
    prefix = str(inbox) + "/"
    arrived_rows = [(p[len(prefix):], s) for p, s in rows if p.startswith(prefix)]
    by_name: dict[str, int] = {}
    for name, _status in arrived_rows:
        by_name[name] = by_name.get(name, 0) + 1
    counts.present = sum(1 for n in expected if by_name.get(n, 0) >= 1)
    counts.lost = len(expected) - counts.present
    counts.duplicated = sum(c - 1 for c in by_name.values() if c > 1)
    counts.wrongly_marked = sum(1 for _p, s in rows if s != "ok")
    counts.missing_models = report["missing_models"]
    counts.embedded = len(rows) - max(report["missing_models"].values(), default=0) if rows else 0
