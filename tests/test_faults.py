"""Faults never turn into lost or wrong data (issue 11, items 7, 8, 12, 15): full and read-only disks (small tmpfs
file systems mounted by the test) under the thumbnails, the home and the database during a scan and during a job;
a model that kills its worker process on one photo; prune racing a worker; one folder reached through a symbolic
link and through its real path. After each fault is cleared and the command run again, every photo is stored
exactly once, none is wrongly marked, nothing is lost (``_audit``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from benchmarks.genlib import generate
from pgvector import HalfVector

from photoscout.analysis.store import Outputs
from photoscout.analysis.store import store as store_outputs
from photoscout.common.errors import DatabaseUnavailable, EnvironmentProblem, PhotoscoutError
from photoscout.config import Settings, load_settings
from photoscout.database import Database
from photoscout.database.embedded import EmbeddedServer
from photoscout.jobs import store
from photoscout.jobs.worker import Worker
from photoscout.library import scanner
from photoscout.maintenance.prune import prune_model
from photoscout.registry import builtin, lifecycle, local
from tests.conftest import PHOTOSCOUT, copy_sample, run_cli

RANDOM = "random-vectors@v0.1.0"


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Callable[[str], None]]:
    """A tmpfs of ``size`` mounted at ``path``; yields ``remount(options)`` (``size=16m``, ``ro``, ``rw``)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a small file system needs root with CAP_SYS_ADMIN: {mounted.stderr.strip()}")

    def remount(options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)

    try:
        yield remount
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _audit(db: Database, files: list[Path], fault: str) -> None:
    """Every file of the library is one readable photo: none lost, none marked unreadable, no duplicate."""
    with db.connection() as conn:
        rows = conn.execute("SELECT path_raw, status, error FROM photos").fetchall()
    by_path: dict[bytes, list[tuple[str, str | None]]] = {}
    for path_raw, status, error in rows:
        by_path.setdefault(os.path.realpath(bytes(path_raw)), []).append((status, error))
    wanted = {os.path.realpath(os.fsencode(f)) for f in files}
    lost = sum(1 for p in wanted if not any(s == "ok" for s, _ in by_path.get(p, [])))
    wrong = sum(1 for p in wanted for s, _ in by_path.get(p, []) if s == "error")
    duplicates = sum(len(v) - 1 for v in by_path.values() if len(v) > 1)
    print(f"{fault}: lost {lost}, wrongly marked {wrong}, duplicates {duplicates}")
    assert (lost, wrong, duplicates) == (0, 0, 0), [r for r in rows if r[1] != "ok"][:5]


def _no_error_rows(db: Database) -> None:
    with db.connection() as conn:
        errors = conn.execute("SELECT path, error FROM photos WHERE status <> 'ok'").fetchall()
    assert errors == [], errors


def test_full_and_read_only_thumbnail_disk(db: Database, settings: Settings, tmp_path: Path) -> None:
    files = copy_sample(tmp_path / "lib", per_category=3)
    with small_disk(settings.thumbnails_dir, "48k") as remount:
        with pytest.raises(EnvironmentProblem, match="No space left on device") as full:
            scanner.scan(db, settings, [tmp_path / "lib"])
        assert "no photo was marked" in str(full.value)
        _no_error_rows(db)  # nothing blamed on a photo; the photos read before are kept
        remount("size=16m")  # space freed
        summary = scanner.scan(db, settings, [tmp_path / "lib"])
        assert summary.errors == 0 and summary.new + summary.unchanged == len(files)
        _audit(db, files, "thumbnail disk full (ENOSPC) during a scan")

        more = generate(tmp_path / "lib" / "later", 4, 640, 480, seed=11)  # new photos: new thumbnails
        remount("ro")
        with pytest.raises(EnvironmentProblem, match="Read-only file system"):
            scanner.scan(db, settings, [tmp_path / "lib"])
        _no_error_rows(db)
        remount("rw")
        assert scanner.scan(db, settings, [tmp_path / "lib"]).errors == 0
        _audit(db, files + more, "thumbnail disk read-only (EROFS) during a scan")


def test_photos_wrongly_marked_by_an_environment_error_are_read_again(db: Database, settings: Settings,
                                                                      tmp_path: Path) -> None:
    files = copy_sample(tmp_path / "lib", per_category=1)
    scanner.scan(db, settings, [tmp_path / "lib"])
    with db.connection() as conn:  # what an older photoscout recorded when a thumbnail could not be written
        conn.execute("UPDATE photos SET status = 'error', error = 'corrupt: cannot decode image data ([Errno 28] "
                     "No space left on device)' WHERE id = (SELECT min(id) FROM photos)")
        conn.execute("UPDATE photos SET status = 'error', error = 'corrupt: malformed image (ValueError: x)' "
                     "WHERE id = (SELECT max(id) FROM photos)")
    again = scanner.scan(db, settings, [tmp_path / "lib"])
    assert again.updated == 1 and again.unchanged == len(files) - 1  # the environmental one, automatically
    retried = scanner.scan(db, settings, [tmp_path / "lib"], retry_errors=True)  # the other one when asked
    assert retried.updated == 1
    _audit(db, files, "photos marked unreadable by an environment error, read again")


def test_full_home_stops_the_cli_with_its_exit_status(tmp_path: Path, settings: Settings) -> None:
    """The home on a full disk: a one-line message and exit 5, then the same command finishes once space is
    freed."""
    files = copy_sample(tmp_path / "lib", per_category=2)
    home = tmp_path / "home2"
    with small_disk(home, "96k") as remount:
        (home / "config.toml").write_text(f'database_url = "{settings.database_url}"\n')
        proc = run_cli("index", str(tmp_path / "lib"), "--no-models", home=home)
        assert proc.returncode == 5 and "Traceback" not in proc.stderr, proc.stderr
        assert "No space left on device" in proc.stderr
        remount("size=16m")
        proc = run_cli("index", str(tmp_path / "lib"), "--no-models", home=home)
        assert proc.returncode == 0, proc.stderr
        with Database(load_settings(home)) as db:
            _audit(db, files, "home disk full (ENOSPC) during a scan, through the CLI")


@pytest.fixture
def small_database(tmp_path: Path) -> Iterator[tuple[Settings, EmbeddedServer, Callable[[str], None], Path]]:
    """A home whose PostgreSQL lives on its own small disk."""
    disk = tmp_path / "pgdisk"
    with small_disk(disk, "160m") as remount:
        server = EmbeddedServer(disk / "pg")
        server.acquire("lib")
        try:
            home = tmp_path / "home"
            home.mkdir()
            (home / "config.toml").write_text(f'database_url = "{server.url("lib")}"\njob_unit_size = 4\n')
            settings = load_settings(home)
            settings.ensure_dirs()
            Database(settings).open().close()  # the schema, before the disk fills
            yield settings, server, remount, disk
        finally:
            server.keep_running = False
            try:
                server.release()
            finally:
                server.stop(force=True)


def _fill(disk: Path, leave: int) -> Path:
    """Take all but ``leave`` bytes of the disk."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, max(0, free - leave))
    return filler


def _restart(server: EmbeddedServer) -> None:
    """After a fault the database may have stopped itself (PostgreSQL panics when it cannot write its log)."""
    if not server.is_running():
        server.release()
        server.acquire("lib")


def test_full_database_disk_during_a_scan_and_a_job(small_database: tuple, tmp_path: Path) -> None:
    settings, server, _remount, disk = small_database
    files = copy_sample(tmp_path / "lib", per_category=3)
    filler = _fill(disk, 0)
    with Database(settings) as db:
        with pytest.raises((EnvironmentProblem, DatabaseUnavailable)):
            scanner.scan(db, settings, [tmp_path / "lib"])
    filler.unlink()
    _restart(server)
    with Database(settings) as db:
        assert scanner.scan(db, settings, [tmp_path / "lib"]).errors == 0
        _audit(db, files, "database disk full (ENOSPC) during a scan")
        builtin.install(db, settings, refs=[RANDOM])
        job = store.create_job(db, kind="embed", model_ref=RANDOM, unit_size=4)
        Worker(db, settings).run(job["id"], max_units=2)
        filler = _fill(disk, 0)
        with pytest.raises((EnvironmentProblem, DatabaseUnavailable)):
            Worker(db, settings, db_wait_seconds=5).run(job["id"])
    filler.unlink()
    _restart(server)
    with Database(settings) as db:
        Worker(db, settings).run(job["id"])
        _assert_job_exactly_once(db, job["id"], len(files))
        _audit(db, files, "database disk full (ENOSPC) during a job")


def test_read_only_database_disk_during_a_job(small_database: tuple, tmp_path: Path) -> None:
    """PostgreSQL cannot run on a read-only disk: the server goes away under the job, cannot start again (one clear
    line: the disk is read-only), and once the disk is writable the job finishes, each photo exactly once."""
    settings, server, remount, _disk = small_database
    files = copy_sample(tmp_path / "lib", per_category=3)
    with Database(settings) as db:
        scanner.scan(db, settings, [tmp_path / "lib"])
        builtin.install(db, settings, refs=[RANDOM])
        job = store.create_job(db, kind="embed", model_ref=RANDOM, unit_size=4)
        Worker(db, settings).run(job["id"], max_units=2)
        server.stop(force=True)
        remount("ro")
        try:
            with pytest.raises(EnvironmentProblem, match="Read-only file system"):
                server.acquire("lib")  # (a worker meanwhile waits for the database: tests/test_jobs.py)
        finally:
            remount("rw")
    _restart(server)
    with Database(settings) as db:
        Worker(db, settings).run(job["id"])
        _assert_job_exactly_once(db, job["id"], len(files))
        _audit(db, files, "database disk read-only (EROFS) during a job")


def _assert_job_exactly_once(db: Database, job_id: int, photos: int, failed: int = 0) -> None:
    job = store.get_job(db, job_id)
    assert job["status"] == "completed", job
    assert (job["done_items"], job["failed_items"]) == (photos - failed, failed), job
    with db.connection() as conn:
        runs = conn.execute("SELECT count(*), count(DISTINCT photo_id), count(*) FILTER (WHERE outcome = 'done') "
                            "FROM photo_model_runs WHERE model_id = %s", (job["model_id"],)).fetchone()
    assert runs == (photos, photos, photos - failed), runs


# -- a poison photo that kills the worker process ------------------------------------------------------------
POISON_DETECTOR = '''import os, signal

class MTCNN:
    """Finds no face; kills its own process on a photo that is pure magenta (a poison photo)."""

    def detect(self, image, min_face_size=20.0):
        b, g, r = (int(image[..., i].mean()) for i in range(3))
        if r > 250 and b > 250 and g < 5:
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError("no face")
'''


def _poisoned_library(tmp_path: Path, settings: Settings) -> tuple[list[Path], str]:
    from PIL import Image

    files = copy_sample(tmp_path / "lib", per_category=1)
    poison = tmp_path / "lib" / "poison.png"
    Image.new("RGB", (320, 240), (255, 0, 255)).save(poison)
    folder = tmp_path / "poison-model"
    folder.mkdir()
    (folder / "detector.py").write_text(POISON_DETECTOR)
    with Database(settings) as db:
        scanner.scan(db, settings, [tmp_path / "lib"])
        model, _ = local.register_folder(db, settings, ref="poison@v1.0.0", source_dir=folder, type_="detector",
                                         backend="mtcnn", config={"files": {"detector_module": "detector.py"}})
    return [*files, poison], model.ref


def _crash_loop_home(tmp_path: Path, settings: Settings, extra: str = "") -> Settings:
    home = tmp_path / "crash-home"
    home.mkdir()
    (home / "config.toml").write_text(f'database_url = "{settings.database_url}"\njob_unit_size = 4\n'
                                      f"lease_seconds = 5\nunit_max_attempts = 2\n{extra}")
    s = load_settings(home)
    s.ensure_dirs()
    return s


def test_a_photo_that_crashes_the_model_fails_alone_on_the_local_executor(tmp_path: Path,
                                                                          settings: Settings) -> None:
    s = _crash_loop_home(tmp_path, settings)
    files, ref = _poisoned_library(tmp_path, s)
    job = run_cli("jobs", "start", "detect", "--model", ref, "--no-run", "--json", home=s.home, check=True)
    job_id = str(json.loads(job.stdout)["id"])
    crashes = 0
    for _ in range(12):  # like a service manager: run it again after each crash
        proc = run_cli("jobs", "run", job_id, "--json", home=s.home)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        crashes += 1
    else:
        raise AssertionError("the job never completed: the poison photo blocks it")
    with Database(s) as db:
        _assert_job_exactly_once(db, int(job_id), len(files), failed=1)
        failures = store.get_job(db, int(job_id))
        with db.connection() as conn:
            (reason,) = conn.execute("SELECT error FROM job_item_failures WHERE job_id = %s", (job_id,)).fetchone()
        assert "died" in reason and failures["failed_items"] == 1
    assert 2 <= crashes <= 5, crashes  # the unit twice, then the poison photo alone twice


def test_a_photo_that_crashes_the_model_fails_alone_on_celery(tmp_path: Path, settings: Settings) -> None:
    broker = "redis://127.0.0.1:6379/13"
    s = _crash_loop_home(tmp_path, settings, f'broker_url = "{broker}"\n')
    files, ref = _poisoned_library(tmp_path, s)
    from celery import Celery

    Celery(broker=broker).control.purge()
    out = run_cli("jobs", "start", "detect", "--model", ref, "--executor", "celery", "--tasks", "1", "--json",
                  home=s.home, check=True)
    job_id = int(json.loads(out.stdout)["id"])
    env = {**os.environ, "PHOTOSCOUT_HOME": str(s.home)}
    deadline = time.monotonic() + 240
    crashes = 0
    with Database(s) as db:
        while time.monotonic() < deadline and store.get_job(db, job_id)["status"] != "completed":
            worker = subprocess.Popen([PHOTOSCOUT, "worker", "--loglevel", "WARNING"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            while worker.poll() is None and store.get_job(db, job_id)["status"] != "completed":
                time.sleep(0.3)
                if time.monotonic() > deadline:
                    break
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(30)
            else:
                crashes += 1
        _assert_job_exactly_once(db, job_id, len(files), failed=1)
    assert crashes >= 2


# -- prune racing a worker ----------------------------------------------------------------------------------
def test_prune_waits_for_a_cancelled_jobs_unit_in_flight(db: Database, settings: Settings, tmp_path: Path) -> None:
    copy_sample(tmp_path / "lib", per_category=2)
    scanner.scan(db, settings, [tmp_path / "lib"])
    builtin.install(db, settings, refs=[RANDOM])
    model = lifecycle.get(db, RANDOM)
    job = store.create_job(db, kind="embed", model_ref=RANDOM, unit_size=4)
    unit = store.claim(db, "elsewhere:1", 60, job["id"])  # a worker on another machine holds a unit
    assert unit is not None
    store.set_status(db, job["id"], "cancelled")
    with pytest.raises(PhotoscoutError, match="still finishing"):
        prune_model(db, settings, RANDOM)
    assert store.get_job(db, job["id"])["status"] == "cancelled"  # the job row is still there for the worker
    # the worker's unit ends; a batch of the version's outputs is in flight while prune runs: prune waits for it
    # and deletes its rows too; a batch that comes later finds the version disabled and writes nothing
    with db.connection() as conn:
        conn.execute("UPDATE job_units SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (unit.id,))
    pruned = threading.Event()

    def prune() -> None:
        prune_model(db, settings, RANDOM)
        pruned.set()

    pid = unit.photo_ids[0]
    with db.connection() as conn:  # what analysis.store does first, then its writes
        conn.execute("SELECT id FROM model_registry WHERE id = %s FOR KEY SHARE", (model.id,))
        thread = threading.Thread(target=prune)
        thread.start()
        time.sleep(1.0)
        assert not pruned.is_set()  # prune waits for the batch in flight
        conn.execute("INSERT INTO photo_model_runs (photo_id, model_id, outcome) VALUES (%s, %s, 'done')",
                     (pid, model.id))
    thread.join(60)
    assert pruned.is_set() and lifecycle.get(db, RANDOM).status == "disabled"
    late = Outputs()
    late.add("embedding_half", pid, model.id, model.name, model.version, HalfVector(np.ones(384, np.float32)))
    late.ran(pid, model.id, "done")
    store_outputs(db, late)
    with db.connection() as conn:
        for table in ("photo_embeddings", "photo_analysis", "photo_model_runs"):
            (n,) = conn.execute(f"SELECT count(*) FROM {table} WHERE model_id = %s", (model.id,)).fetchone()
            assert n == 0, table  # nothing left, nothing written for a disabled version


# -- one file, one photo --------------------------------------------------------------------------------------
def test_a_folder_through_a_symlink_and_its_real_path_is_one_library(db: Database, settings: Settings,
                                                                      tmp_path: Path) -> None:
    files = copy_sample(tmp_path / "real", per_category=1)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "inside").symlink_to(tmp_path / "real" / "food")
    first = scanner.scan(db, settings, [tmp_path / "link"])
    assert first.new == len(files)
    again = scanner.scan(db, settings, [tmp_path / "real"])
    assert again.new == 0 and again.unchanged == len(files) and again.missing == 0
    nested = scanner.scan(db, settings, [tmp_path / "other"])
    assert nested.new == 0 and nested.unchanged == 1
    scanner.scan(db, settings, [tmp_path / "link", tmp_path / "real"])
    with db.connection() as conn:
        shown = [r[0] for r in conn.execute("SELECT path FROM photos")]
    assert all(p.startswith(str(tmp_path / "link")) for p in shown)  # the user's spelling is what is shown
    _audit(db, files, "one folder indexed through a symbolic link and its real path")


def test_rows_stored_through_a_symlink_by_an_older_version_take_the_real_path(db: Database, settings: Settings,
                                                                              tmp_path: Path) -> None:
    files = copy_sample(tmp_path / "real", per_category=1)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    scanner.scan(db, settings, [tmp_path / "link"])
    with db.connection() as conn:  # as an older photoscout stored them: the path as walked
        conn.execute("UPDATE photos SET path_raw = convert_to(path, 'UTF8')")
    scanner.scan(db, settings, [tmp_path / "link"])
    assert scanner.scan(db, settings, [tmp_path / "real"]).new == 0
    _audit(db, files, "rows stored through a symbolic link by an older version")
