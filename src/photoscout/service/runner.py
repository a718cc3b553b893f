"""The always-on service: in ``serve`` (beside the web server) or ``run`` (headless), one background thread keeps
the library current by itself.

* **Sees changes:** the roots are watched (``watcher.py``); a root with a change is rescanned once it has been
  quiet ``QUIET_S`` (a burst is one scan, or a few), and every root is rescanned each ``rescan_minutes`` whether
  events came or not (network mounts), plus a nightly full pass (``full_scan_at``: thumbnails repaired, every photo
  the models never ran on). A file still being copied is taken by a later pass (``settling``).
* **Runs the models through the job system:** after a scan that found photos, each active model gets a job over
  the photos it never ran on (``jobs list`` and the jobs page show them, resumable like any job); embeddings first,
  so a new photo is searchable soonest. Jobs a killed process left running are resumed at start.
* **Keeps out of the way:** the thread runs ``nice``d (``background_nice``; searches are answered first), model work
  waits out ``quiet_hours``, and one unit of work at a time, so a stop (SIGTERM) keeps all that was committed.
* **Survives:** an embedded PostgreSQL that died is started again; errors are logged once and the loop goes on.
  What it is doing is written to ``<home>/data/service.json`` (``photoscout service status``, the service page).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

from photoscout.app import Photoscout
from photoscout.common.errors import DatabaseUnavailable, PhotoscoutError
from photoscout.config import SERVICE_SETTINGS
from photoscout.jobs import schedule
from photoscout.jobs.states import KIND_FOR_TYPE
from photoscout.library.paths import display
from photoscout.service import lock
from photoscout.service.watcher import Watcher

log = logging.getLogger(__name__)

BY = "service"  # the jobs it makes say so (scope.by)
QUIET_S = 0.5  # a root is scanned once no event came for this long...
MAX_WAIT_S = 5.0  # ...or this long after its first event, whichever is sooner (a long copy still shows up)
TICK_S = 5.0  # the loop's longest sleep: the database's health, the clock (quiet hours, rescans) are checked
ROOTS_EVERY_S = 30.0  # new roots (an index of a new folder) are watched within this


def state_file(core: Photoscout) -> Any:
    return core.settings.data_dir / "service.json"


def read_state(core: Photoscout) -> dict[str, Any] | None:
    """What the running service last wrote, or None (no service has run here, or the file is unreadable)."""
    try:
        data: dict[str, Any] = json.loads(state_file(core).read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def describe(core: Photoscout, live: Service | None = None) -> dict[str, Any]:
    """How the library's service stands, for every face: whether one runs (the lock's holder), what it is doing
    (``live``: the one in this process; else what the running one last wrote), the roots and the settings."""
    holder = lock.holder(core.settings)
    state = live.status() if live is not None else read_state(core)
    running = holder is not None
    return {"running": running, "holder": holder, "state": state if running else None,
            "last_state": None if running else state,
            "settings": {k: getattr(core.settings, k) for k in SERVICE_SETTINGS}}


class Stopping(Exception):
    """Raised inside a scan (through its progress) when the service stops: the batches written are kept."""


class _StopAware:
    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def phase(self, name: str, total: int | None) -> None:
        if self.stop.is_set():
            raise Stopping()

    def advance(self, n: int = 1) -> None:
        if self.stop.is_set():
            raise Stopping()


class Service:
    def __init__(self, core: Photoscout, *, mode: str = "serve", url: str | None = None) -> None:
        self.core = core
        self.settings = core.settings
        self.mode = mode
        self.url = url
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._first_event: dict[bytes, float] = {}  # root -> monotonic time of its first unscanned event
        self._last_event: dict[bytes, float] = {}
        self._due: dict[bytes, float] = {}  # root -> monotonic time a scan of it is due (rescans, settling files)
        self._roots: list[bytes] = []
        self._present: list[bytes] = []
        self._roots_at = 0.0
        self._watcher: Watcher | None = None
        self._work_due = True  # at start: resume what a killed process left, run what never ran
        self._full_pass_due = False
        self._last_rescan = time.monotonic()
        self._last_full: datetime | None = None
        self._reported: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self.passes = 0  # scans done (tests and benchmarks wait on it)
        self.state: dict[str, Any] = {"pid": os.getpid(), "mode": mode, "url": url,
                                      "started_at": datetime.now().astimezone().isoformat(timespec="seconds"),
                                      "activity": "starting", "db_restarts": 0, "issues": [], "held_back": [],
                                      "last_error": None, "last_scan": None, "jobs_run": 0}
        self._written = ""

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> Service:
        self._thread = threading.Thread(target=self._main, name="photoscout-service", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the unit of work in flight (its result is committed), then stop."""
        self._stop.set()
        self._wake.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        self.state["activity"] = "stopped"
        self._write_state()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def changed(self, root: bytes) -> None:
        """A root changed (the watcher, or a person asking for a rescan): scan it soon."""
        now = time.monotonic()
        with self._lock:
            self._first_event.setdefault(root, now)
            self._last_event[root] = now
        self._wake.set()

    def rescan(self) -> None:
        """Every root, now (the service page's button, ``service rescan``)."""
        for root in self._roots or self.core.watched_roots():
            self.changed(root)

    def status(self) -> dict[str, Any]:
        return dict(self.state)

    # -- the loop ---------------------------------------------------------------------------------
    def _main(self) -> None:
        _lower_priority(self.settings.background_nice)
        failures = 0
        while not self._stop.is_set():
            try:
                self._tick()
                failures = 0
                self.state["last_error"] = None
            except Stopping:
                break
            except (DatabaseUnavailable, PhotoscoutError, OSError) as exc:
                failures += 1
                self._report_error(str(exc))
                self._wake.wait(min(30.0, 1.0 * failures))
            except Exception as exc:  # noqa: BLE001 - the service must outlive any one pass
                failures += 1
                log.exception("the service's pass failed")
                self._report_error(f"{type(exc).__name__}: {exc}")
                self._wake.wait(min(30.0, 1.0 * failures))
            self._write_state()
            self._wake.wait(self._sleep_for())
            self._wake.clear()
        if self._watcher is not None:
            self._watcher.stop()

    def _tick(self) -> None:
        if self.core.revive_database():
            self.state["db_restarts"] += 1
        now = time.monotonic()
        self._refresh_roots(now)
        settings = self.settings
        if settings.rescan_minutes and now - self._last_rescan >= settings.rescan_minutes * 60:
            self._last_rescan = now
            for r in self._roots:
                self._due[r] = now
        wall = datetime.now()
        nightly = schedule.next_full_pass(settings.full_scan_at, wall, self._last_full)
        if nightly is not None and nightly <= wall:
            self._last_full = wall
            self._full_pass_due = True
            self._work_due = True
            for r in self._roots:
                self._due[r] = now
        due = self._take_due(now)
        if due:
            self._scan(due, full=self._full_pass_due)
            self._full_pass_due = False
        quiet_until = schedule.quiet_ends(settings.quiet_hours, wall)
        self.state.update(quiet_hours=settings.quiet_hours or None,
                          quiet_until=quiet_until.isoformat(timespec="minutes") if quiet_until else None,
                          next_rescan_in_s=round(max(0.0, self._last_rescan + settings.rescan_minutes * 60 - now))
                          if settings.rescan_minutes else None,
                          next_full_pass_at=nightly.isoformat(timespec="minutes") if nightly else None)
        if self._work_due and quiet_until is None:
            self._work()
        self.state["activity"] = f"quiet until {quiet_until:%H:%M}: model work waits" \
            if quiet_until and self._work_due else "idle"

    def _sleep_for(self) -> float:
        now = time.monotonic()
        with self._lock:
            times = [min(f + MAX_WAIT_S, self._last_event[r] + QUIET_S) for r, f in self._first_event.items()]
        times += list(self._due.values())
        return max(0.05, min([TICK_S, *[t - now for t in times]]))

    def _take_due(self, now: float) -> list[bytes]:
        due = [r for r, t in self._due.items() if t <= now]
        with self._lock:
            for r, first in list(self._first_event.items()):
                if min(first + MAX_WAIT_S, self._last_event[r] + QUIET_S) <= now:
                    due.append(r)
                    del self._first_event[r]
        for r in due:
            self._due.pop(r, None)
        return sorted(set(due))

    def _refresh_roots(self, now: float) -> None:
        """The roots to watch, from the library (an index of a new folder adds one); the watcher follows them,
        and a root that comes back (a share mounted again) is scanned at once."""
        watching = self._watcher is not None and self._watcher.alive()
        if self._roots_at and now - self._roots_at < ROOTS_EVERY_S and (watching or self._watcher is None):
            return
        first = not self._roots_at
        self._roots_at = now
        roots = self.core.watched_roots()
        present = [r for r in roots if os.path.isdir(r)]
        if first or roots != self._roots or present != self._present or (self._watcher is not None and not watching):
            if self._watcher is not None:
                self._watcher.stop()
                self._watcher = None
            fresh = roots if first else [r for r in present if r not in self._present]
            self._roots, self._present = roots, present
            if self.settings.watch and roots:
                self._watcher = Watcher(roots, self.changed, exclude=[self.settings.home]).start()
            for r in fresh:
                self._due[r] = now  # at start (what came while it was down), a new root, a share mounted again
        self.state["watch"] = dict(self._watcher.modes) if self._watcher is not None else \
            {display(r): "rescans only (watch = false)" for r in roots}
        self.state["roots"] = [display(r) for r in roots]

    # -- scanning ---------------------------------------------------------------------------------
    def _scan(self, roots: list[bytes], *, full: bool) -> None:
        self.state["activity"] = f"scanning {', '.join(map(display, roots))}"
        self._write_state()
        try:
            summary, _ = self.core.index([os.fsdecode(r) for r in roots], run_models=False, repair_thumbnails=full,
                                         progress=_StopAware(self._stop))
        except PhotoscoutError as exc:
            if "another 'photoscout index' is running" in str(exc):  # someone's index: ours comes after
                for r in roots:
                    self._due[r] = time.monotonic() + 10
                return
            raise
        self.passes += 1
        if summary.new or summary.updated or summary.moved or summary.restored:
            self._work_due = True
        if summary.settling:  # a copy in flight: look again once it may have finished
            for r in roots:
                self._due[r] = time.monotonic() + max(1.0, self.settings.settle_seconds)
        self.state["last_scan"] = {"at": datetime.now().astimezone().isoformat(timespec="seconds"),
                                   "roots": summary.roots, "found": summary.found, "new": summary.new,
                                   "updated": summary.updated, "moved": summary.moved, "missing": summary.missing,
                                   "restored": summary.restored, "errors": summary.errors,
                                   "settling": summary.settling, "elapsed_s": summary.elapsed_s}
        self._report(summary.issues, summary.held_back, roots)

    def _report(self, issues: list[dict[str, str]], held: list[dict[str, Any]], roots: list[bytes]) -> None:
        """Problems are logged once, when they appear (a folder without permission is not news every hour); the
        state lists those of the last scan of each root."""
        scanned = {display(r) for r in roots}
        for item in [*issues, *({"path": h["root"], "message": h["message"]} for h in held)]:
            key = (item["path"], item["message"])
            if key not in self._reported:
                self._reported.add(key)
                log.warning("%s: %s", item["path"], item["message"])
        keep = [i for i in self.state["issues"] if not any(_under_text(i["path"], s) for s in scanned)]
        self.state["issues"] = keep + issues
        held_now = [h for h in self.state["held_back"] if h["root"] not in scanned] + held
        self.state["held_back"] = held_now
        current = {(i["path"], i["message"]) for i in self.state["issues"]} | \
                  {(h["root"], h["message"]) for h in held_now}
        self._reported &= current  # a problem that went away is news again if it comes back

    # -- model work -------------------------------------------------------------------------------
    def _work(self) -> None:
        """Resume interrupted jobs, then give each model a job over the photos it never ran on."""
        core = self.core
        for job_id in core.jobs_to_resume(BY):
            self._run_job(job_id)
            if self._stop.is_set() or self._quiet():
                return
        for m in core.models_with_new_photos():
            job = core.create_job(KIND_FOR_TYPE[m.type], m.ref, new_only=True, by=BY)
            self._run_job(job["id"])
            if self._stop.is_set() or self._quiet():
                return
        self._work_due = False

    def _quiet(self) -> bool:
        return schedule.quiet(self.settings.quiet_hours, datetime.now())

    def _run_job(self, job_id: int) -> None:
        """One unit at a time, so a stop or the start of quiet hours waits for one unit at most."""
        job = self.core.job(job_id)
        self.state["activity"] = f"job {job_id}: {job['kind']} with {job['model']}"
        self._write_state()
        while not self._stop.is_set() and not self._quiet():
            if not self.core.work_on_job(job_id, units=1):
                break
        self.state["jobs_run"] += 1

    # -- state ------------------------------------------------------------------------------------
    def _report_error(self, message: str) -> None:
        if self.state.get("last_error") != message:
            log.warning("the service's pass failed: %s (it goes on)", message)
        self.state["last_error"] = message
        self.state["activity"] = "waiting after an error"

    def _write_state(self) -> None:
        text = json.dumps(self.state, default=str)
        if text == self._written:
            return
        path = state_file(self.core)
        tmp = path.with_name(f".service.json.{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
            self._written = text
        except OSError as exc:  # a full disk: the state is also in memory (the API)
            log.debug("cannot write %s: %s", path, exc)


def _under_text(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _lower_priority(nice: int) -> None:
    """This thread (and the processes and threads it starts) at niceness ``nice``; the server's other threads,
    which answer searches, keep theirs. On Linux niceness is per thread."""
    if not nice or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except OSError as exc:
        log.debug("cannot lower the service's priority: %s", exc)
