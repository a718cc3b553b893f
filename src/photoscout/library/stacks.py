"""Stacks: the files of one shutter press are one photo. A RAW+JPEG pair (``IMG_0042.CR2`` + ``IMG_0042.JPG``) and a
Live Photo (``IMG_0042.HEIC`` + ``IMG_0042.MOV``) are files of one folder with one name before the extension. The
best member stands for the stack (``stack_of`` is NULL for it; the others point at it): a picture the camera or
phone rendered (JPEG, HEIC) before a RAW, a RAW before a video. Search, the grid and the models see only the member
that stands for its stack; every member stays a file of the library that can be opened (``photos list``, a
photo's details). Worked out again for the folders a scan touched, so a member that arrives, changes or goes
away re-forms its stack."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

MEDIA_KINDS = ("image", "raw", "video")  # also the order in which a member stands for its stack


def stem(path: str) -> str:
    """The name a file shares with the other members of its stack: its name without the extension, lower case."""
    name = os.path.basename(path)
    dot = name.rfind(".")
    return (name[:dot] if dot > 0 else name).lower()


def _rank(kind: str | None, photo_id: int) -> tuple[int, int]:
    return (MEDIA_KINDS.index(kind) if kind in MEDIA_KINDS else len(MEDIA_KINDS), photo_id)


def restack(conn: Any, folders: Iterable[str]) -> int:
    """Form the stacks of these folders again from the photos there now; the number of rows whose stack changed."""
    folders = sorted(set(folders))
    if not folders:
        return 0
    rows = conn.execute("SELECT id, folder, path, media_kind, status, stack_of FROM photos WHERE folder = ANY(%s) "
                        "AND media_kind <> 'frame'", (folders,)).fetchall()
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for pid, folder, path, kind, status, _stack_of in rows:
        if status == "ok":
            groups.setdefault((folder, stem(path)), []).append((pid, kind))
    want: dict[int, int | None] = {}
    for members in groups.values():
        best = min(members, key=lambda m: _rank(m[1], m[0]))[0]
        for pid, _kind in members:
            want[pid] = None if pid == best else best
    changes = [(want.get(pid), pid) for pid, _f, _p, _k, _s, stack_of in rows if want.get(pid) != stack_of]
    if changes:
        # the leaders first (their own pointer cleared), so no row ever points at a member that points elsewhere
        changes.sort(key=lambda c: c[0] is not None)
        with conn.cursor() as cur:
            cur.executemany("UPDATE photos SET stack_of = %s, updated_at = now() WHERE id = %s", changes)
        # a video that joined or left a stack (a Live Photo's clip): its frames are searched, or not, with it
        conn.execute("UPDATE photos f SET stack_of = v.stack_of FROM photos v WHERE f.frame_of = v.id "
                     "AND v.id = ANY(%s) AND f.stack_of IS DISTINCT FROM v.stack_of", ([pid for _s, pid in changes],))
    return len(changes)
