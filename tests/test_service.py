"""The always-on service (issue 27): an unmounted share is not a deletion, a copy in flight is not corrupt, folders
renamed keep their photos, one service per library, new photos become searchable by themselves, upgrades dump
first and migrate all or nothing, the systemd unit verifies. Against the real embedded PostgreSQL and the built-in
models; the soak with kills is in test_soak.py (short) and benchmarks/bench_service.py (long)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from photoscout.app import Photoscout
from photoscout.common.errors import DatabaseUnavailable, PhotoscoutError
from photoscout.config import Settings, load_settings
from photoscout.database import Database, migrations
from photoscout.database.embedded import EmbeddedServer
from photoscout.jobs import schedule
from photoscout.library import roots, scanner
from photoscout.maintenance import backup
from photoscout.service import unit
from photoscout.service.lock import ServiceLock, holder
from photoscout.service.runner import Service
from tests.conftest import DATASET, PHOTOSCOUT, _free_port, clone_library, copy_sample, run_cli


def _photos(folder: Path, n: int, skip: int = 0) -> list[Path]:
    """``n`` distinct real photos of photos-dev (after the first ``skip``) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted((DATASET).glob("*/*.jpg"))[skip:skip + n]:
        out.append(Path(shutil.copy2(src, folder / f"{src.parent.name}-{src.name}")))
    return out


def _statuses(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return dict(conn.execute("SELECT status, count(*) FROM photos GROUP BY 1").fetchall())


# -- an empty or vanished root is not a deletion ----------------------------------------------------------------

def test_an_unmounted_share_marks_nothing_missing_until_confirmed(db: Database, settings: Settings,
                                                                   tmp_path: Path) -> None:
    share = tmp_path / "share"
    _photos(share / "2024", 20)
    assert scanner.scan(db, settings, [share]).new == 20

    # the share is unmounted: the mount point stays, empty
    moved_away = tmp_path / "elsewhere"
    shutil.move(share / "2024", moved_away)
    summary = scanner.scan(db, settings, [share])
    assert summary.missing == 0 and not summary.ok
    assert summary.held_back[0]["root"] == str(share) and "empty" in summary.held_back[0]["reason"]
    assert "--confirm-missing" in summary.held_back[0]["message"]
    assert _statuses(db) == {"ok": 20}
    held = roots.held_back(db)
    assert [r["path"] for r in held] == [str(share)] and held[0]["would_mark"] == 20

    # the mount point itself is gone: still nothing marked, and not refused as a typo
    share.rmdir()
    summary = scanner.scan(db, settings, [share])
    assert summary.missing == 0 and "gone" in summary.held_back[0]["reason"]
    assert _statuses(db) == {"ok": 20}

    # mounted again: whole, nothing was ever missing, the root is no longer held back
    share.mkdir()
    shutil.move(moved_away, share / "2024")
    summary = scanner.scan(db, settings, [share])
    assert summary.ok and summary.unchanged == 20 and summary.restored == 0
    assert roots.held_back(db) == []

    # more than half gone at once is held back; confirmed, they are marked missing
    for p in sorted((share / "2024").iterdir())[:15]:
        p.unlink()
    summary = scanner.scan(db, settings, [share])
    assert summary.missing == 0 and "15 of its 20" in summary.held_back[0]["reason"]
    summary = scanner.scan(db, settings, [share], confirm_missing=True)
    assert summary.missing == 15 and summary.held_back == []
    assert _statuses(db) == {"ok": 5, "missing": 15}


def test_a_few_photos_deleted_are_marked_missing_as_before(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    files = _photos(lib, 12)
    scanner.scan(db, settings, [lib])
    for p in files[:3]:
        p.unlink()
    summary = scanner.scan(db, settings, [lib])
    assert summary.missing == 3 and summary.held_back == [] and summary.ok


def test_the_cli_says_which_root_looks_unmounted(tmp_path: Path, settings: Settings) -> None:
    home = settings.home
    share = tmp_path / "nas"
    _photos(share, 4)
    (home / "config.toml").write_text(f'database_url = "{settings.database_url}"\n')
    run_cli("index", str(share), "--no-models", home=home, check=True)
    for p in share.iterdir():
        p.unlink()
    proc = run_cli("index", str(share), "--no-models", home=home)
    assert proc.returncode == 1
    assert "held back" in proc.stderr and "--confirm-missing" in proc.stderr
    status = run_cli("status", home=home, check=True).stdout
    assert "held back" in status and str(share) in status
    doctor = json.loads(run_cli("doctor", "--json", home=home).stdout)
    found = [f for f in doctor["findings"] if f["check"] == "roots"]
    assert found and found[0]["severity"] == "warning" and "--confirm-missing" in found[0]["fix"]
    data = json.loads(run_cli("index", str(share), "--no-models", "--confirm-missing", "--json", home=home).stdout)
    assert data["missing"] == 4 and data["held_back"] == []


# -- files being written, folders renamed ----------------------------------------------------------------------

def test_a_copy_in_flight_is_taken_once_it_is_complete(db: Database, settings: Settings, tmp_path: Path) -> None:
    fresh = load_settings(settings.home, database_url=settings.database_url, settle_seconds=30)
    lib = tmp_path / "inbox"
    lib.mkdir()
    source = sorted(DATASET.glob("*/*.jpg"))[0].read_bytes()
    target = lib / "IMG_0001.jpg"
    target.write_bytes(source[: len(source) // 3])  # a third of it has arrived
    summary = scanner.scan(db, fresh, [lib])
    assert summary.settling == 1 and summary.errors == 0 and summary.new == 0
    assert _statuses(db) == {}
    with open(target, "ab") as fh:
        fh.write(source[len(source) // 3:])
    summary = scanner.scan(db, fresh, [lib])
    assert summary.new == 1 and summary.errors == 0

    # a file that is really broken and old is recorded as it always was
    broken = lib / "old-broken.jpg"
    broken.write_bytes(source[:200])
    os.utime(broken, (time.time() - 3600, time.time() - 3600))
    summary = scanner.scan(db, fresh, [lib])
    assert summary.errors == 1 and summary.settling == 0


def test_a_folder_renamed_inside_a_root_keeps_its_photos(db: Database, settings: Settings, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _photos(lib / "Holiday 2023", 6)
    _photos(lib / "other", 2, skip=6)
    scanner.scan(db, settings, [lib])
    with db.connection() as conn:
        before = dict(conn.execute("SELECT content_hash, id FROM photos").fetchall())
    (lib / "Holiday 2023").rename(lib / "2023 Crete")
    summary = scanner.scan(db, settings, [lib])
    assert summary.moved == 6 and summary.missing == 0 and summary.new == 0
    with db.connection() as conn:
        after = dict(conn.execute("SELECT content_hash, id FROM photos WHERE status = 'ok'").fetchall())
    assert after == before


# -- one service per library ---------------------------------------------------------------------------------

def test_a_second_service_on_the_same_home_is_refused(settings: Settings) -> None:
    with ServiceLock(settings, "serve") as first:
        first.announce("http://127.0.0.1:9999")
        with pytest.raises(PhotoscoutError, match=rf"pid {os.getpid()} at http://127.0.0.1:9999"):
            ServiceLock(settings, "run").acquire()
        assert holder(settings)["mode"] == "serve"
    assert holder(settings) is None
    with ServiceLock(settings, "run"):  # free again
        pass


def test_a_second_serve_refuses_and_the_first_keeps_its_announcement(tmp_path: Path, settings: Settings) -> None:
    home = settings.home
    (home / "config.toml").write_text(f'database_url = "{settings.database_url}"\n')
    env = {**os.environ, "PHOTOSCOUT_HOME": str(home)}
    port = _free_port()
    first = subprocess.Popen([PHOTOSCOUT, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        announced = home / "data" / "server.json"
        deadline = time.monotonic() + 60
        while not announced.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stdout.read() if first.stdout else ""
            time.sleep(0.2)
        second = subprocess.run([PHOTOSCOUT, "serve", "--port", str(_free_port())], env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and f"127.0.0.1:{port}" in second.stderr
        headless = run_cli("run", home=home, timeout=60)
        assert headless.returncode == 2 and f"pid {first.pid}" in headless.stderr
        assert json.loads(announced.read_text())["pid"] == first.pid  # still there: searches still use it
        status = json.loads(run_cli("service", "status", "--json", home=home, check=True).stdout)
        assert status["running"] and status["holder"]["pid"] == first.pid
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert not announced.exists()


# -- the service sees new photos by itself -------------------------------------------------------------------

@pytest.fixture
def library(library_template: tuple[Path, str], pg_server: EmbeddedServer, tmp_path: Path) -> Path:
    return clone_library(library_template, pg_server, tmp_path)


def _wait(condition: object, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_new_photos_become_searchable_by_themselves(library: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "phone"
    inbox.mkdir()
    with Photoscout.open(library) as core:
        core.index([inbox])  # a root of the library (empty yet)
        before = core.status()["photos"]
        service = Service(core, mode="run").start()
        try:
            _wait(lambda: service.passes >= 1, what="the first pass")
            copied = copy_sample(inbox / "camera", per_category=1)  # photos copied in from a phone
            _wait(lambda: core.status()["photos"] == before + len(copied), what="the new photos to be counted")
            ids = {p["id"] for p in core.photos(folder=str(inbox / "camera"), limit=100)}

            def searchable() -> bool:
                hits = core.search("a photo", limit=200).hits
                return ids <= {h.photo_id for h in hits}

            _wait(searchable, what="the new photos to be searchable")
            def service_jobs_done() -> bool:  # the other models' jobs (OCR, faces) may finish after the embeddings
                return all(j["finished"] for j in core.jobs() if (j["scope"] or {}).get("by") == "service")

            _wait(service_jobs_done, what="the service's other jobs")
            made = [j for j in core.jobs() if (j["scope"] or {}).get("by") == "service"]
            assert made  # through the job system: jobs list shows them
            assert {j["kind"] for j in made} >= {"embed"}

            # the phone's folder is emptied (a card pulled out): nothing is marked missing
            shutil.rmtree(inbox / "camera")
            passes = service.passes
            service.changed(os.fsencode(inbox))
            _wait(lambda: service.passes > passes, what="a pass after the emptying")
            assert core.status()["missing"] == 0
            assert service.status()["held_back"][0]["root"] == str(inbox)
        finally:
            service.stop()
        state = json.loads((library / "data" / "service.json").read_text())
        assert state["activity"] == "stopped" and state["held_back"]


def test_quiet_hours_hold_model_work_but_not_scans(library: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    now = datetime.now()
    window = f"{(now.hour - 1) % 24:02d}:00-{(now.hour + 2) % 24:02d}:00"
    with Photoscout.open(library) as core:
        core.index([inbox])
        core.update_settings({"quiet_hours": window})
        service = Service(core, mode="run").start()
        try:
            _wait(lambda: service.passes >= 1, what="the first pass")
            _photos(inbox, 2)
            _wait(lambda: core.status()["photos"] >= 2 + 25, what="the new photos to be counted")
            time.sleep(1.5)
            assert not [j for j in core.jobs() if (j["scope"] or {}).get("by") == "service"]
            assert service.status()["quiet_until"] is not None
            core.update_settings({"quiet_hours": ""})  # the window is lifted: the work runs at once
            service.changed(os.fsencode(inbox))
            _wait(lambda: [j for j in core.jobs() if (j["scope"] or {}).get("by") == "service"], what="a job")
        finally:
            service.stop()


def test_a_permission_problem_is_logged_once(caplog: pytest.LogCaptureFixture, library: Path) -> None:
    with Photoscout.open(library) as core:
        service = Service(core)
        issue = [{"path": "/photos/private", "message": "cannot list folder (Permission denied)"}]
        with caplog.at_level(logging.WARNING, logger="photoscout.service.runner"):
            for _ in range(3):  # three passes find the same folder
                service._report(issue, [], [b"/photos"])
        assert sum("Permission denied" in r.getMessage() for r in caplog.records) == 1
        assert service.status()["issues"] == issue
        service._report([], [], [b"/photos"])  # fixed: gone from the state, news again if it comes back
        assert service.status()["issues"] == []


# -- the schedule, the unit ------------------------------------------------------------------------------------

def test_quiet_hours_and_the_nightly_pass() -> None:
    at = datetime(2026, 12, 2, 23, 30)
    assert schedule.quiet("22:00-07:00", at) and schedule.quiet("22:00-07:00", at.replace(hour=6))
    assert not schedule.quiet("22:00-07:00", at.replace(hour=12)) and not schedule.quiet("", at)
    assert schedule.quiet_ends("22:00-07:00", at) == datetime(2026, 12, 3, 7, 0)
    assert schedule.quiet("09:00-17:00", at.replace(hour=9)) and not schedule.quiet("09:00-17:00",
                                                                                     at.replace(hour=17))
    assert schedule.next_full_pass("03:00", at, None) == datetime(2026, 12, 3, 3, 0)
    assert schedule.next_full_pass("03:00", at, datetime(2026, 12, 1, 3, 0)) == datetime(2026, 12, 2, 3, 0)
    assert schedule.next_full_pass("03:00", at, datetime(2026, 12, 2, 3, 1)) == datetime(2026, 12, 3, 3, 0)
    assert schedule.next_full_pass("", at, None) is None


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    for mode, system in (("serve", True), ("run", False)):
        path = tmp_path / f"{mode}-{system}" / unit.UNIT_NAME
        path.parent.mkdir()
        text = unit.render(tmp_path / "home", mode=mode, user="root", system=system)
        path.write_text(text)
        assert "Restart=on-failure" in text and "KillSignal=SIGTERM" in text
        proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert f" {mode}" in text.split("ExecStart=")[1].splitlines()[0]


# -- upgrades ---------------------------------------------------------------------------------------------------

def test_an_upgrade_dumps_the_library_first_and_keeps_the_last_few(tmp_path: Path, pg_server: EmbeddedServer,
                                                                    settings: Settings) -> None:
    url = settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:  # a library made by the photoscout before this one
        migrations.migrate(conn, target=10)
        conn.execute("INSERT INTO photos (path, path_raw, folder, status) VALUES ('/p/a.jpg', '/p/a.jpg', '/p', "
                     "'ok')")
    fresh = load_settings(settings.home, database_url=url, upgrade_backups=2)
    with Photoscout(fresh) as core:
        assert core.db_status()["migrations_pending"] == []
    taken = backup.upgrade_snapshots(fresh)
    newest = max(m.version for m in migrations.available())
    assert len(taken) == 1 and f"0010-to-{newest:04d}" in taken[0].name
    meta = backup.read_meta(taken[0])
    assert meta["schema"] == 10 and meta["photos"] == 1 and "before upgrading" in meta["reason"]
    for n in range(3):  # more upgrades: the last two are kept
        backup.snapshot_before_upgrade(fresh, url, 11, 12 + n)
    assert len(backup.upgrade_snapshots(fresh)) == 2


def test_an_interrupted_upgrade_leaves_the_old_schema(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    url = settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn, target=10)
    real = migrations.available()
    broken = migrations.Migration(max(m.version for m in real) + 1, "broken",
                                  "CREATE TABLE upgraded (x int); SELECT 1/0;")
    monkeypatch.setattr(migrations, "available", lambda: [*real, broken])
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            migrations.migrate(conn)
        assert max(migrations.applied(conn)) == 10  # 0011 was not kept either: the old photoscout still opens it
        assert conn.execute("SELECT to_regclass('library_roots')").fetchone() == (None,)
    monkeypatch.setattr(migrations, "available", lambda: real)
    with psycopg.connect(url, autocommit=True) as conn:
        assert [m.version for m in migrations.migrate(conn)] == [m.version for m in real if m.version > 10]


def test_the_database_comes_back_when_killed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Photoscout.open(home) as core:
        core.status()
        assert core.db.embedded is not None
        core.db.embedded.crash()
        with pytest.raises(DatabaseUnavailable):
            core.status()
        assert core.db.revive() is True
        deadline = time.monotonic() + 30
        while True:
            try:
                assert core.status()["photos"] == 0
                break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert core.db.revive() is False


# -- the service page and API ----------------------------------------------------------------------------------

def test_the_service_page_shows_held_back_roots_and_changes_settings(library: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from photoscout.web import create_app

    share = tmp_path / "share"
    _photos(share, 3)
    write = {"X-Photoscout-Request": "1"}
    with Photoscout.open(library) as core:
        core.index([share], run_models=False)
        for p in share.iterdir():
            p.unlink()
        core.index([share], run_models=False)  # held back: the share looks unmounted
        service = Service(core, mode="serve", url="http://127.0.0.1:8765")
        with TestClient(create_app(core, warm=False, service=service), base_url="http://127.0.0.1:8765") as client:
            _wait(lambda: service.passes >= 1 and service.status()["activity"] == "idle", what="the first pass")
            page = client.get("/service", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "held back" in page.text and "They were deleted" in page.text
            data = client.get("/service?format=json").json()
            assert data["service"]["settings"]["quiet_hours"] == ""
            held = [r for r in data["roots"] if r["held_back"]]
            assert [r["path"] for r in held] == [str(share)] and held[0]["would_mark"] == 3

            bad = client.post("/api/v1/settings", json={"quiet_hours": "25:00-07:00"}, headers=write)
            assert bad.status_code == 400 and "quiet_hours" in bad.json()["error"]
            ok = client.post("/api/v1/settings", json={"quiet_hours": "22:00-07:00", "background_nice": 5},
                             headers=write)
            assert ok.status_code == 200 and ok.json()["settings"]["quiet_hours"] == "22:00-07:00"
            assert core.settings.quiet_hours == "22:00-07:00"  # the running service reads it at once
            assert 'quiet_hours = "22:00-07:00"' in (library / "config.toml").read_text()
            assert client.post("/api/v1/settings", json={}, headers=write).status_code == 400

            gone = client.post("/api/v1/roots/confirm-missing", json={"root": "/not/a/root"}, headers=write)
            assert gone.status_code == 400
            confirmed = client.post("/api/v1/roots/confirm-missing", json={"root": str(share)}, headers=write)
            assert confirmed.status_code == 200 and confirmed.json()["missing"] == 3
            assert not [r for r in client.get("/api/v1/roots").json() if r["held_back"]]
            assert client.post("/api/v1/service/rescan", headers=write).json() == {"rescan": "queued"}
            status = client.get("/api/v1/service").json()
            assert status["running"] is False  # this test's service object holds no lock
