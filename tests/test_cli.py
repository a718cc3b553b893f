"""The real ``photoscout`` command in subprocesses, on the embedded default database (no URL configured)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import typer.main
import typer.testing

from photoscout.cli import app
from photoscout.database.embedded import EmbeddedServer
from tests.conftest import DATASET, run_cli
from tests.test_bad_input import make_bad_folder


def _all_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def visit(cmd: object, path: list[str]) -> None:
        found.append(path)
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                visit(sub, [*path, name])

    visit(root, [])
    return found


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "photoscout")
def test_every_command_has_help(path: list[str]) -> None:
    root = typer.main.get_command(app)
    cmd: object = root
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    assert (getattr(cmd, "help", None) or "").strip(), f"'{' '.join(path)}' has no help text"
    runner = typer.testing.CliRunner()
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_photos_dev_end_to_end_on_embedded_default(tmp_path: Path) -> None:
    """The README's first command in small: index photos-dev on the embedded server, twice; status agrees."""
    home = tmp_path / "home"
    first = run_cli("index", str(DATASET), "--json", home=home, check=True)
    s1 = json.loads(first.stdout)
    assert (s1["found"], s1["new"], s1["errors"]) == (1086, 1086, 0)
    second = run_cli("index", str(DATASET), "--json", home=home, check=True)
    s2 = json.loads(second.stdout)
    assert (s2["unchanged"], s2["new"], s2["updated"], s2["processed"]) == (1086, 0, 0, 0)
    print(f"photos-dev: first scan {s1['elapsed_s']} s, second {s2['elapsed_s']} s "
          f"({s1['elapsed_s'] / max(s2['elapsed_s'], 1e-3):.0f}x)")
    status = json.loads(run_cli("status", "--json", home=home, check=True).stdout)
    assert (status["photos"], status["missing"], status["errors"]) == (1086, 0, 0)
    assert status["database"]["embedded"] is True
    assert status["database"]["pgvector_version"] == "0.8.5"
    listed = json.loads(run_cli("photos", "list", "--limit", "2000", "--json", home=home, check=True).stdout)
    assert len(listed) == 1086 and {r["format"] for r in listed} <= {"JPEG", "PNG"}
    shown = json.loads(run_cli("photos", "show", str(listed[0]["id"]), "--json", home=home, check=True).stdout)
    assert shown["path"] == listed[0]["path"]
    # The last command stopped the embedded server cleanly.
    assert not EmbeddedServer(home / "data" / "pg").is_running()


def test_bad_folder_exit_status_and_summary(tmp_path: Path) -> None:
    home = tmp_path / "home"
    lib = tmp_path / "lib"
    expected = make_bad_folder(lib)
    (lib / "ok.jpg").write_bytes((DATASET / "food" / "apple_pie_00001.jpg").read_bytes())
    proc = run_cli("index", str(lib), home=home)
    assert proc.returncode == 1, proc.stderr
    assert "1 new" in proc.stdout and f"{len(expected)} unreadable" in proc.stdout
    for name in expected:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr
    errors = json.loads(run_cli("photos", "list", "--errors", "--json", home=home, check=True).stdout)
    assert {Path(e["path"]).name for e in errors} == set(expected)
    assert all(e["error"] for e in errors)


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = run_cli("index", str(tmp_path / "no-such-folder"), home=home)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("photos", "show", "999", home=home)
    assert proc.returncode == 2 and "no photo" in proc.stderr
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text("batch_size = 'lots'\n")
    proc = run_cli("status", home=home)
    assert proc.returncode == 2 and "batch_size" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("status", home=tmp_path / "h2", env={"PHOTOSCOUT_DATABASE_URL": "postgresql://x@127.0.0.1:1/db"})
    assert proc.returncode == 3 and "cannot connect" in proc.stderr and "Traceback" not in proc.stderr


def test_external_database_by_url(tmp_path: Path, external_server: EmbeddedServer) -> None:
    """Pointing photoscout at another PostgreSQL with pgvector (here: a second server on TCP) is one setting."""
    import psycopg

    with psycopg.connect(external_server.tcp_url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE nas_photos")
    url = external_server.tcp_url("nas_photos")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'database_url = "{url}"\n')
    lib = tmp_path / "lib"
    from tests.conftest import copy_sample

    files = copy_sample(lib, per_category=2)
    out = json.loads(run_cli("index", str(lib), "--json", home=home, check=True).stdout)
    assert out["new"] == len(files)
    status = json.loads(run_cli("status", "--json", home=home, check=True).stdout)
    assert status["photos"] == len(files) and status["database"]["embedded"] is False
    assert not (home / "data" / "pg").exists()  # no embedded server was created
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM photos").fetchone()
    assert row is not None and row[0] == len(files)
