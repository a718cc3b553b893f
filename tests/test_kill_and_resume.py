"""SIGKILL ``photoscout index`` (and everything it started) halfway, run it again: complete, no duplicate, no loss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from benchmarks.genlib import generate

from photoscout.database.embedded import EmbeddedServer
from tests.conftest import PHOTOSCOUT, run_cli


def _stored(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM photos").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def test_sigkill_mid_scan_then_rerun_completes(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = generate(lib, 360, 1600, 1200, seed=3, per_folder=60)
    home = tmp_path / "home"
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home), "PHOTOSCOUT_SCAN_BATCH_SIZE": "16"}
    server = EmbeddedServer(home / "data" / "pg")
    kills = []
    for fraction in (0.2, 0.55):  # two kills at different points
        proc = subprocess.Popen([PHOTOSCOUT, "index", str(lib), "--no-progress"], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if server.is_running():
                stored = _stored(server.url("photoscout"))
                if stored >= fraction * len(files):
                    break
            time.sleep(0.05)
        assert proc.poll() is None, f"scan ended before it could be killed: {proc.stderr.read() if proc.stderr else ''}"
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its reader processes, at once
        proc.wait()
        kills.append(stored)
    done = run_cli("index", str(lib), "--json", home=home, check=True)
    summary = json.loads(done.stdout)
    assert summary["errors"] == 0
    assert summary["unchanged"] + summary["new"] == len(files)
    assert summary["unchanged"] >= kills[-1]  # committed work survived both kills
    status = json.loads(run_cli("status", "--json", home=home, check=True).stdout)
    assert status["photos"] == len(files) and status["errors"] == 0 and status["missing"] == 0
    listed = json.loads(run_cli("photos", "list", "--limit", "1000", "--json", home=home, check=True).stdout)
    assert sorted(r["path"] for r in listed) == sorted(str(f) for f in files)  # each once, none lost
    assert len({r["content_hash"] for r in listed}) == len(files)
    assert all((home / "data" / "thumbnails" / r["thumbnail"]).is_file() for r in listed)
    print(f"killed at {kills} of {len(files)} stored; rerun read {summary['new']}, skipped {summary['unchanged']}")
