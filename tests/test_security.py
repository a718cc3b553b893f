"""Nobody else gets in, nothing outside the home is touched (issue 11, security items 1-6).

A second OS user, created here, can neither connect to the embedded server (TCP or socket) nor read the home; the
server authenticates every connection; start-up as root widens no folder's permissions; registry rows, model
settings and manifests cannot make photoscout read, run or delete anything outside ``models/``; a crafted weights
file cannot run code; passwords are never printed."""

from __future__ import annotations

import io
import json
import os
import pickle
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from photoscout.app import Photoscout
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.database.embedded import EmbeddedServer
from photoscout.maintenance.prune import prune_model
from photoscout.models import factory
from photoscout.models.artifacts import ArtifactError
from photoscout.models.base import RuntimeOptions
from photoscout.models.torch_pickle import load_state_dict
from photoscout.registry import lifecycle, local
from tests.conftest import run_cli

INTRUDER = "psintruder"
ROOT = os.geteuid() == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def intruder() -> str:
    """A second OS user on this machine (created if missing; the suite runs as root in CI)."""
    if not ROOT:
        pytest.skip("creating a second OS user needs root")
    try:
        pwd.getpwnam(INTRUDER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", INTRUDER], check=True)
    return INTRUDER


def _as(user: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "PGCONNECT_TIMEOUT": "5"}, cwd="/")


@pytest.fixture
def open_place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every user can traverse (as /home is), so only the home's own permissions keep others out."""
    base = Path(tmp_path_factory.mktemp("open"))
    place = Path("/tmp") / f"ps-open-{base.name}"
    place.mkdir(mode=0o755)
    place.chmod(0o755)
    yield place
    shutil.rmtree(place, ignore_errors=True)


def test_another_user_can_neither_connect_nor_read_the_home(open_place: Path, intruder: str) -> None:
    home = open_place / "home"
    port = _free_port()
    home.mkdir()
    (home / "config.toml").write_text(f"embedded_port = {port}\nembedded_keep_running = true\n")
    run_cli("db", "start", home=home, check=True)
    server = EmbeddedServer(home / "data" / "pg", port=port)
    try:
        info = server._postmaster()
        assert info is not None and info.socket_dir is not None
        assert (home.stat().st_mode & 0o777) == 0o700
        assert (server.passfile.stat().st_mode & 0o777) == 0o600
        hba = (home / "data" / "pg" / "pg_hba.conf").read_text()
        assert "trust" not in [line.split()[-1] for line in hba.splitlines() if line.strip() and line[0] != "#"]
        # the owner gets in with the password file; nobody gets in without the password, even from this machine
        with psycopg.connect(server.tcp_url("photoscout")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        for dsn in (f"host=127.0.0.1 port={port} user=postgres dbname=photoscout",
                    f"host={info.socket_dir} port={info.port} user=postgres dbname=photoscout"):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(dsn, connect_timeout=5).close()
        # a second OS user: no TCP login, no socket, no home
        tcp = _as(intruder, "psql", "-w", f"host=127.0.0.1 port={port} user=postgres dbname=photoscout", "-c",
                  "COPY (SELECT 1) TO PROGRAM 'id'")
        assert tcp.returncode != 0 and "password" in tcp.stderr, tcp.stderr
        sock = _as(intruder, "psql", "-w", f"host={info.socket_dir} port={info.port} user=postgres "
                   "dbname=photoscout", "-c", "SELECT 1")
        assert sock.returncode != 0 and ("Permission denied" in sock.stderr or "password" in sock.stderr)
        for target in (home, home / "data" / "pg.pgpass", home / "config.toml"):
            assert _as(intruder, "cat" if target.is_file() else "ls", str(target)).returncode != 0
    finally:
        run_cli("db", "stop", "--force", home=home)


def test_a_long_home_path_keeps_the_socket_private(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    server = EmbeddedServer(deep / "data" / "pg")
    server.acquire("photoscout")
    try:
        info = server._postmaster()
        assert info is not None and info.socket_dir is not None and info.socket_dir != server.pgdata
        st = info.socket_dir.stat()
        assert st.st_mode & 0o077 == 0, oct(st.st_mode)
        assert st.st_uid == (pwd.getpwnam("pgserver").pw_uid if ROOT else os.geteuid())
        with psycopg.connect(server.url("photoscout")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.release()


def test_start_as_root_widens_no_folder(tmp_path: Path) -> None:
    """A 0700 folder above the home (like /root) stays 0700; so do the PostgreSQL binaries' folders."""
    if not ROOT:
        pytest.skip("the server runs as another user only when photoscout runs as root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    server = EmbeddedServer(private / "home" / "data" / "pg")
    watched = [private, private.parent, *server.bin_path.parents]
    before = {p: p.stat().st_mode for p in watched}
    _start_and_query(server)
    assert {p: p.stat().st_mode for p in watched} == before


def _start_and_query(server: EmbeddedServer) -> None:
    server.acquire("photoscout")
    try:
        with psycopg.connect(server.url("photoscout")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.release()


def test_root_runs_the_server_when_its_programs_sit_in_a_private_folder(tmp_path: Path) -> None:
    """A virtual environment under a 0700 folder (a fresh clone in mktemp -d, /root): PostgreSQL checks its own
    programs with access(), which no capability bypasses; they are run from a public copy, nothing is chmodded."""
    if not ROOT:
        pytest.skip("the server runs as another user only when photoscout runs as root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = EmbeddedServer(tmp_path / "home" / "data" / "pg")
    site = server.bin_path.parent.parent.parent
    for name in (server.bin_path.parent.parent.name, f"{server.bin_path.parent.parent.name}.libs"):
        shutil.copytree(site / name, private / "site" / name, symlinks=True)
    server.bin_path = private / "site" / server.bin_path.relative_to(site)
    before = private.stat().st_mode
    try:
        _start_and_query(server)
    finally:
        if server._programs is not None and server._programs.is_relative_to("/var/lib/photoscout"):
            shutil.rmtree(server._programs.parents[2])  # this test's copy
    assert private.stat().st_mode == before == (before & ~0o077)


def test_a_cluster_that_trusted_everyone_is_given_a_password(tmp_path: Path) -> None:
    """Homes made by an earlier photoscout (initdb --auth=trust) are secured at their next start."""
    server = EmbeddedServer(tmp_path / "data" / "pg")
    server.acquire("photoscout")
    info = server._postmaster()
    assert info is not None
    server.release()
    hba = server.pgdata / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    server.passfile.unlink()
    server.acquire("photoscout")
    try:
        assert server.passfile.is_file() and "trust" not in hba.read_text()
        with psycopg.connect(server.url("photoscout")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        info = server._postmaster()
        assert info is not None and info.socket_dir is not None
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host=str(info.socket_dir), port=info.port, user="postgres", dbname="photoscout",
                            connect_timeout=5).close()
    finally:
        server.release()


# -- paths from outside: registry rows, model settings, manifests ------------------------------------------
def _tiny_detector(folder: Path, body: str = "") -> Path:
    """A model folder for the MTCNN backend (its module is Python, run from the verified artifacts)."""
    folder.mkdir(parents=True)
    (folder / "detector.py").write_text("class MTCNN:\n    def detect(self, image, min_face_size=20.0):\n"
                                        "        raise ValueError('no face')\n" + body)
    return folder


def test_prune_never_deletes_outside_models(db: Database, settings: Settings, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    model, _ = local.register_folder(db, settings, ref="det@v1.0.0", source_dir=_tiny_detector(tmp_path / "d1"),
                                     type_="detector", backend="mtcnn", config={"files": {"detector_module":
                                                                                          "detector.py"}})
    escapes = [os.path.relpath(victim, settings.models_dir), str(victim)]
    link = settings.models_dir / "det" / "escape"
    link.symlink_to(victim)
    escapes.append("det/escape")
    for crafted in escapes:
        with db.connection() as conn:
            conn.execute("UPDATE model_registry SET artifact_path = %s WHERE id = %s", (crafted, model.id))
        with pytest.raises(ArtifactError, match="outside"):
            prune_model(db, settings, model.ref)
        assert (victim / "precious.txt").read_text() == "keep me"
        assert lifecycle.get(db, model.ref).status == "staging"  # nothing was done
    listed = Photoscout(settings, db=db).models_list("detector")
    assert "outside" in listed[0]["manifest"]["error"]  # shown, not followed


def test_only_verified_files_inside_the_artifact_folder_are_loaded(db: Database, settings: Settings,
                                                                    tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")
    folder = _tiny_detector(tmp_path / "d2")
    with pytest.raises(ArtifactError, match="not among its verified artifacts"):
        local.register_folder(db, settings, ref="det@v2.0.0", source_dir=folder, type_="detector",
                              backend="mtcnn", config={"files": {"detector_module": str(evil)}})
    model, _ = local.register_folder(db, settings, ref="det@v2.1.0", source_dir=folder, type_="detector",
                                     backend="mtcnn", config={"files": {"detector_module": "detector.py"}})
    runtime = RuntimeOptions(threads=1)
    for crafted in (str(evil), os.path.relpath(evil, model.artifact_dir(settings))):
        with db.connection() as conn:
            conn.execute("UPDATE model_registry SET config = %s WHERE id = %s",
                         (Jsonb({"files": {"detector_module": crafted}}), model.id))
        with pytest.raises(ArtifactError, match="outside"):
            factory.create(lifecycle.get(db, model.ref).spec(settings), runtime).load()
    assert not marker.exists()
    with db.connection() as conn:
        conn.execute("UPDATE model_registry SET config = %s WHERE id = %s",
                     (Jsonb({"files": {"detector_module": "detector.py"}}), model.id))
    # an edited module (same size) and an added file are refused at load, before anything runs
    module = model.artifact_dir(settings) / "detector.py"
    source = module.read_text()
    module.write_text(source.replace("no face", "no fac!") + "\nopen(" + repr(str(marker)) + ", 'w')\n")
    with pytest.raises(ArtifactError, match="detector.py"):
        factory.create(lifecycle.get(db, model.ref).spec(settings), runtime).load()
    module.write_text(source)
    (model.artifact_dir(settings) / "sitecustomize.py").write_text("print('hello')\n")
    with pytest.raises(ArtifactError, match="not in the manifest"):
        factory.create(lifecycle.get(db, model.ref).spec(settings), runtime).load()
    (model.artifact_dir(settings) / "sitecustomize.py").unlink()
    factory.create(lifecycle.get(db, model.ref).spec(settings), runtime).load()  # verified: loads
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_weights_file_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for position in range(3):  # the magic number, the protocol, the system info: each a pickle of its own
        buf = io.BytesIO()
        headers: list[object] = [0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}]
        headers[position] = _Evil(marker)
        for h in headers:
            pickle.dump(h, buf)
        path = tmp_path / f"evil{position}.pth"
        path.write_bytes(buf.getvalue())
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            load_state_dict(path)
    assert not marker.exists()


def test_passwords_are_never_printed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('database_url = "postgresql://alice:s3cret-pw@127.0.0.1:1/photos"\n'
                                      'broker_url = "amqp://bob:broker-pw@127.0.0.1:5672//"\n')
    shown = run_cli("config", "--json", home=home, check=True).stdout
    assert "s3cret-pw" not in shown and "broker-pw" not in shown
    data = json.loads(shown)
    assert "alice" in data["database_url"] and "***" in data["broker_url"]
    assert "s3cret-pw" not in run_cli("config", home=home, check=True).stdout
    url = run_cli("db", "url", home=home, check=True).stdout
    assert "s3cret-pw" not in url and "alice" in url
    failed = run_cli("status", home=home)
    assert failed.returncode == 3 and "s3cret-pw" not in failed.stderr + failed.stdout
