"""The library's roots (``library_roots``: every folder an index was given) and the rule that keeps an unmounted
share from being taken for deleted photos.

A scan asks :func:`judge` about each root it walked: a root that held photos and is now gone, empty, or lost more
than ``missing_guard_share`` of them at once (at least ``missing_guard_min``) is *held back*: nothing under it is
marked missing, the root's row says why, and ``status``, ``doctor``, the service page and the log show it until a
scan finds it whole again or the owner confirms the deletion (``index ROOT --confirm-missing``, the page's button).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from psycopg.rows import dict_row

from photoscout.common.errors import NotFound
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.library.paths import display, normalize_root

CONFIRM_HINT = "if the photos were really deleted, confirm it: photoscout index {root} --confirm-missing"


@dataclass(frozen=True)
class HeldBack:
    root: str
    reason: str
    would_mark: int  # photos this scan would have marked missing
    photos: int  # photos the library holds under the root

    @property
    def message(self) -> str:
        return (f"{self.root}: {self.reason}; nothing was marked missing ({self.would_mark} of {self.photos} photos "
                f"not found). Check that the share or disk is mounted; " + CONFIRM_HINT.format(root=self.root))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def under(path_raw: bytes, root: bytes) -> bool:
    """Whether a path is the root or inside it."""
    base = root.rstrip(b"/")
    return path_raw == base or path_raw.startswith(base + b"/")


def judge(settings: Settings, root: bytes, *, photos: int, found: int, gone: int) -> str | None:
    """Why a scan of ``root`` must not mark its ``gone`` photos missing, or None when it looks whole. ``photos``:
    photos stored under it (status ok); ``found``: image files the walk found under it."""
    if photos == 0 or gone == 0:
        return None
    if not os.path.exists(root):
        return "the folder is gone (an unmounted share or a disconnected disk?)"
    if found == 0:
        return "the folder is empty (an unmounted share: the mount point stays, empty?)"
    if gone >= settings.missing_guard_min and gone > settings.missing_guard_share * photos:
        return f"{gone} of its {photos} photos are gone at once (more than {settings.missing_guard_share:.0%})"
    return None


def is_known(db: Database, root: bytes) -> bool:
    """A root the library was built from (a vanished one is held back, not refused as a typo)."""
    with db.connection() as conn:
        return conn.execute("SELECT 1 FROM library_roots WHERE path_raw = %s", (root,)).fetchone() is not None


def record(conn: Any, root: bytes, *, found: int, held: HeldBack | None) -> None:
    """A root's state after its scan (a folder root only: a single file is no share)."""
    if held is None and not os.path.isdir(root):
        return
    conn.execute(
        "INSERT INTO library_roots AS r (path, path_raw, last_scan_at, photos_seen, held_back, held_back_at, "
        "would_mark) VALUES (%(path)s, %(raw)s, now(), %(found)s, %(reason)s, "
        "CASE WHEN %(reason)s::text IS NULL THEN NULL ELSE now() END, %(would)s) "
        "ON CONFLICT (path) DO UPDATE SET last_scan_at = now(), "
        "photos_seen = CASE WHEN %(reason)s::text IS NULL THEN %(found)s ELSE r.photos_seen END, "
        "held_back = %(reason)s, would_mark = %(would)s, "
        "held_back_at = CASE WHEN %(reason)s::text IS NULL THEN NULL ELSE coalesce(r.held_back_at, now()) END",
        {"path": display(root), "raw": root, "found": found, "reason": held.reason if held else None,
         "would": held.would_mark if held else 0})


def list_roots(db: Database) -> list[dict[str, Any]]:
    """Every root, with its held-back state and the photos stored under it."""
    with db.connection() as c, c.cursor(row_factory=dict_row) as conn:
        rows = list(conn.execute(
            "SELECT path, path_raw, added_at, last_scan_at, photos_seen, held_back, held_back_at, would_mark "
            "FROM library_roots ORDER BY path"))
    for r in rows:
        raw = bytes(r.pop("path_raw"))
        r["exists"] = os.path.isdir(raw)
        r["message"] = HeldBack(r["path"], r["held_back"], r["would_mark"], r["photos_seen"]).message \
            if r["held_back"] else None
    return rows


def watched(db: Database) -> list[bytes]:
    """The roots an always-on service watches: each once (a root inside another is covered by it)."""
    with db.connection() as conn:
        raws = sorted(bytes(r[0]) for r in conn.execute("SELECT path_raw FROM library_roots"))
    kept: list[bytes] = []
    for raw in raws:
        if not any(under(raw, k) for k in kept):
            kept.append(raw)
    return kept


def forget(db: Database, root: str) -> None:
    """Stop watching a root (its photos stay; a later index of it adds it again)."""
    raw = normalize_root(root)
    with db.connection() as conn:
        if conn.execute("DELETE FROM library_roots WHERE path_raw = %s OR path = %s",
                        (raw, root)).rowcount == 0:
            raise NotFound(f"{root} is not a root of this library (see 'photoscout roots list')")


def held_back(db: Database) -> list[dict[str, Any]]:
    return [r for r in list_roots(db) if r["held_back"]]


def resolve(db: Database, roots: Sequence[str]) -> list[str]:
    """The named roots as the library spells them (for a face's confirm button)."""
    known = {r["path"] for r in list_roots(db)}
    missing = [r for r in roots if r not in known]
    if missing:
        raise NotFound(f"not a root of this library: {', '.join(missing)}")
    return list(roots)
