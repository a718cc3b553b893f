"""Watching the library's roots for changes (``watchfiles``: inotify on Linux), in a thread of its own. It only says
*which root changed*; the service then rescans that root (a scan costs a ``stat`` per unchanged file, and sees
moves, renames and deletions whole). Network mounts often send no events: the periodic rescan is what always runs,
and a root that cannot be watched (gone, too many folders for inotify) is named in the service's state."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from photoscout.library.paths import display
from photoscout.library.roots import under

log = logging.getLogger(__name__)


class Watcher:
    """Calls ``changed(root)`` for each root with a change under it; ``modes`` says how each root is watched."""

    def __init__(self, roots: Sequence[bytes], changed: Callable[[bytes], None], *,
                 exclude: Sequence[Path] = (), debounce_ms: int = 400) -> None:
        self.roots = list(roots)
        self.changed = changed
        self.exclude = [os.fsencode(os.path.realpath(p)) for p in exclude]
        self.debounce_ms = debounce_ms
        self.modes: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Watcher:
        watchable = [r for r in self.roots if os.path.isdir(r)]
        for r in self.roots:
            self.modes[display(r)] = "events" if r in watchable else "rescans only: the folder is not there"
        if watchable:
            self._thread = threading.Thread(target=self._run, args=(watchable,), name="photoscout-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wanted(self, _change: object, path: str) -> bool:
        raw = os.fsencode(path)
        name = os.path.basename(raw)
        return not name.startswith(b".") and not any(under(raw, e) for e in self.exclude)

    def _run(self, roots: list[bytes]) -> None:
        import watchfiles

        try:
            for changes in watchfiles.watch(*[os.fsdecode(r) for r in roots], watch_filter=self._wanted,
                                            stop_event=self._stop, debounce=self.debounce_ms, step=50,
                                            rust_timeout=1000, yield_on_timeout=False, raise_interrupt=False,
                                            ignore_permission_denied=True):
                touched = set()
                for _change, path in changes:
                    raw = os.fsencode(path)
                    owner = max((r for r in roots if under(raw, r)), key=len, default=None)
                    if owner is not None:
                        touched.add(owner)
                for root in touched:
                    self.changed(root)
        except Exception as exc:  # noqa: BLE001 - an unmounted share, too many folders for inotify: rescans go on
            log.warning("watching %s stopped (%s: %s); the periodic rescan goes on", ", ".join(map(display, roots)),
                        type(exc).__name__, exc)
            for r in roots:
                self.modes[display(r)] = f"rescans only: watching stopped ({type(exc).__name__}: {exc})"
