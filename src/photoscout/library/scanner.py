"""``photoscout index``: scan folders into the ``photos`` table, incrementally and safely.

1. Walk the roots (cheap: names and ``stat`` only). A file is identified by its resolved path (``photos.path_raw``):
   reached through a symbolic link and through its real path it is one photo; the path the user reached it by is
   kept for display (``photos.path``).
2. Compare with what is stored: a file whose size and mtime are unchanged costs nothing more.
3. New and changed files are read by worker processes (hash, EXIF, thumbnail); results are written in batches,
   one transaction each, so a kill at any moment loses at most the batch in flight and never duplicates a photo.
4. A new path whose content matches a stored photo whose file no longer exists is a move: the row (and everything
   computed for it) follows the file. Stored photos no longer found are marked ``missing``, never purged - unless
   their root looks unmounted (gone, empty, or half its photos gone at once: ``library/roots.py``), when nothing is
   marked and the root is held back until the owner confirms (``confirm_missing``).

A file still being written (a copy in flight over SMB) is not blamed: one that changed while it was read, or that
cannot be decoded and was modified less than ``settle_seconds`` ago, is left for a later scan (``settling``).

A bad file becomes a row with ``status = 'error'`` and its reason; if the file was a good photo before, what was
stored for it is kept and only its status changes.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
from psycopg.types.json import Jsonb

from photoscout.common.errors import EnvironmentProblem, PhotoscoutError
from photoscout.common.imaging import configure_pillow
from photoscout.common.progress import NoProgress, Progress
from photoscout.config import Settings
from photoscout.database import Database
from photoscout.database.schema import PHOTO_OUTPUT_TABLES
from photoscout.library import frames, stacks
from photoscout.library import roots as library_roots
from photoscout.library.imagefile import ImageFault, ImageInfo, VideoSampling, WriteFailure, read_image
from photoscout.library.paths import display, folder_of, like_prefix, normalize_root
from photoscout.library.walker import FoundFile, WalkIssue, walk

log = logging.getLogger(__name__)

SCAN_LOCK_KEY = 0x7363616E  # "scan"
IN_PROCESS_BELOW = 16  # so few files are read without starting worker processes


@dataclass
class ScanSummary:
    scan_id: int
    roots: list[str]
    found: int = 0
    unchanged: int = 0
    new: int = 0
    updated: int = 0
    moved: int = 0
    restored: int = 0
    errors: int = 0
    missing: int = 0
    settling: int = 0  # files still being written: taken by a later scan
    elapsed_s: float = 0.0
    error_files: list[dict[str, str]] = field(default_factory=list)
    issues: list[dict[str, str]] = field(default_factory=list)
    held_back: list[dict[str, Any]] = field(default_factory=list)  # roots that look unmounted: nothing marked
    new_photo_ids: list[int] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.new + self.updated + self.moved + self.errors

    @property
    def ok(self) -> bool:
        return self.errors == 0 and not self.issues and not self.held_back

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("new_photo_ids")
        data["processed"] = self.processed
        data["photos_per_s"] = round(self.processed / self.elapsed_s, 2) if self.elapsed_s and self.processed else None
        return data


@dataclass
class _Known:
    id: int
    size_bytes: int | None
    mtime_ns: int | None
    status: str
    content_hash: str | None
    error: str | None
    thumbnail: str | None
    sidecar_mtime_ns: int | None = None


# Reasons that blamed the machine, not the file (a full, read-only or failing disk): read again by the next scan.
# The system error numbers catch rows an older photoscout wrongly marked corrupt when a thumbnail could not be written.
ENVIRONMENTAL = ("io_error:", "[Errno 5]", "[Errno 28]", "[Errno 30]", "[Errno 122]", "No space left on device",
                 "Read-only file system", "Disk quota exceeded")


def environmental(reason: str | None) -> bool:
    return bool(reason) and any(sign in str(reason) for sign in ENVIRONMENTAL)


def scan(db: Database, settings: Settings, roots: Sequence[str | os.PathLike[str]],
         progress: Progress | None = None, *, retry_errors: bool = False,
         repair_thumbnails: bool = False, confirm_missing: bool = False) -> ScanSummary:
    """Scan ``roots`` (``retry_errors``: read again the files recorded as unreadable, even if unchanged; those
    that failed for environmental reasons are always read again; ``repair_thumbnails``: read again unchanged photos
    whose thumbnail file is gone; ``confirm_missing``: mark missing what is gone even where the root looks
    unmounted). A full or read-only disk stops the scan with
    ``EnvironmentProblem``; what was written before is kept, nothing is blamed on a photo."""
    progress = progress or NoProgress()
    raw_roots = [normalize_root(r) for r in roots]
    for r in raw_roots:
        if not os.path.exists(r) and not library_roots.is_known(db, r):
            raise PhotoscoutError(f"{display(r)}: no such file or folder")
    started = time.perf_counter()
    try:
        settings.thumbnails_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {settings.thumbnails_dir}: {exc.strerror}") from exc

    with db.connection() as lock_conn:
        lock_conn.autocommit = True
        got = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (SCAN_LOCK_KEY,)).fetchone()
        if not got or not got[0]:
            raise PhotoscoutError("another 'photoscout index' is running on this library; wait for it to finish")
        try:
            summary = _scan_locked(db, settings, raw_roots, progress, retry_errors, repair_thumbnails,
                                   confirm_missing)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (SCAN_LOCK_KEY,))
            lock_conn.autocommit = False
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    with db.connection() as conn:
        conn.execute(
            "UPDATE scans SET status = 'completed', finished_at = now(), counts = %s WHERE id = %s",
            (Jsonb(summary.as_dict()), summary.scan_id),
        )
    return summary


def _scan_locked(db: Database, settings: Settings, roots: list[bytes], progress: Progress,
                 retry_errors: bool, repair_thumbnails: bool, confirm_missing: bool) -> ScanSummary:
    with db.connection() as conn:
        _mark_interrupted_scans(conn)
        row = conn.execute(
            "INSERT INTO scans (roots, host, pid) VALUES (%s, %s, %s) RETURNING id",
            ([display(r) for r in roots], socket.gethostname(), os.getpid()),
        ).fetchone()
        assert row is not None
        summary = ScanSummary(scan_id=row[0], roots=[display(r) for r in roots])

    # 1. walk
    progress.phase("finding photos", None)
    found: dict[bytes, FoundFile] = {}  # by resolved path
    for item in walk(roots, exclude=[os.fsencode(settings.data_dir)]):
        if isinstance(item, WalkIssue):
            summary.issues.append({"path": display(item.path_raw), "message": item.message})
        elif item.key not in found:  # the same file twice in one walk (two links to it): once
            found[item.key] = item
            progress.advance()
    summary.found = len(found)

    # 2. compare with what is stored
    known = _load_known(db, roots, [p for p, f in found.items() if f.fault is None])
    _resolve_legacy_paths(db, known, found)
    to_read: list[bytes] = []
    walk_faults: list[FoundFile] = []
    restored_ids: list[int] = []
    for path_raw, f in found.items():
        k = known.get(path_raw)
        if f.fault is not None:
            if k is not None and k.status == "error" and k.size_bytes is None:
                summary.unchanged += 1  # the same unresolvable link as last time
            else:
                walk_faults.append(f)
            continue
        retry = k is not None and (
            (k.status == "error" and (retry_errors or environmental(k.error)))
            or (repair_thumbnails and k.thumbnail is not None and not (settings.thumbnails_dir / k.thumbnail).exists()))
        if (k is not None and k.size_bytes == f.size_bytes and k.mtime_ns == f.mtime_ns
                and k.sidecar_mtime_ns == f.sidecar_mtime_ns and not retry):
            summary.unchanged += 1
            if k.status == "missing":
                restored_ids.append(k.id)
            continue
        to_read.append(path_raw)
    if restored_ids:
        with db.connection() as conn:
            conn.execute("UPDATE photos SET status = 'ok', missing_since = NULL, updated_at = now() "
                         "WHERE id = ANY(%s)", (restored_ids,))
            frames.follow_status(conn, restored_ids)
        summary.restored += len(restored_ids)

    # 3. read new and changed files, write in batches
    writer = _BatchWriter(db, known, found, summary)
    writer.write([ImageFault(f.key, *_split_fault(f.fault or "")) for f in walk_faults])
    progress.phase("reading photos", len(to_read))
    batch: list[ImageInfo | ImageFault] = []
    for result in _read_all(settings, [(p, found[p].sidecar) for p in to_read]):
        if isinstance(result, WriteFailure):
            writer.write(batch)  # what was read before is kept
            raise EnvironmentProblem(f"cannot write thumbnails to {settings.thumbnails_dir}: {result.message} "
                                     f"({result.target}); the scan stopped and no photo was marked. Free space or "
                                     "make it writable, then run index again to go on")
        if _settling(result, found, settings.settle_seconds):
            summary.settling += 1
            progress.advance()
            continue
        if isinstance(result, ImageInfo) and result.note:
            summary.issues.append({"path": display(found[result.path_raw].path_raw), "message": result.note})
        batch.append(result)
        if len(batch) >= settings.scan_batch_size:
            writer.write(batch)
            progress.advance(len(batch))
            batch = []
    if batch:
        writer.write(batch)
        progress.advance(len(batch))

    # 4. what was not found any more (nothing under a root that looks unmounted)
    gone_paths = [p for p, k in known.items() if p not in found and k.id not in writer.moved_ids]
    held = _held_back(settings, roots, known, found, gone_paths, confirm_missing)
    summary.held_back = [h.as_dict() for h in held.values()]
    gone = [known[p] for p in gone_paths if not any(library_roots.under(p, r) for r in held)]
    with db.connection() as conn:
        for r in roots:
            library_roots.record(conn, r, found=sum(1 for f in found.values() if library_roots.under(f.path_raw, r)),
                                 held=held.get(r))
        # a photo (even one whose file had gone bad) is never purged by a scan: it is marked missing
        missing_ids = [k.id for k in gone if k.status == "ok" or (k.status == "error" and k.content_hash)]
        if missing_ids:
            conn.execute("UPDATE photos SET status = 'missing', missing_since = now(), updated_at = now() "
                         "WHERE id = ANY(%s) AND status <> 'missing'", (missing_ids,))
            frames.follow_status(conn, missing_ids)
        summary.missing = len(missing_ids)
        stale_errors = [k.id for k in gone if k.status == "error" and k.content_hash is None]
        if stale_errors:  # a bad file that is gone was never a photo: nothing to keep
            conn.execute("DELETE FROM photos WHERE id = ANY(%s) AND status = 'error'", (stale_errors,))
        if summary.processed or summary.missing or summary.restored:  # members came, changed or went: re-form
            stacks.restack(conn, {folder_of(f.path_raw) for f in found.values()}
                           | {folder_of(p) for p in gone_paths} | writer.left_folders)
    return summary


def _held_back(settings: Settings, roots: list[bytes], known: dict[bytes, _Known], found: dict[bytes, FoundFile],
               gone: list[bytes], confirm_missing: bool) -> dict[bytes, library_roots.HeldBack]:
    """The roots whose gone photos are not marked missing (``library_roots.judge``), unless confirmed."""
    held: dict[bytes, library_roots.HeldBack] = {}
    if confirm_missing:
        return held
    for r in roots:
        real = os.path.realpath(r)
        photos = sum(1 for p, k in known.items() if k.status == "ok" and (library_roots.under(p, r)
                                                                          or library_roots.under(p, real)))
        lost = sum(1 for p in gone if known[p].status == "ok" and (library_roots.under(p, r)
                                                                   or library_roots.under(p, real)))
        seen = sum(1 for f in found.values() if library_roots.under(f.path_raw, r))
        reason = library_roots.judge(settings, r, photos=photos, found=seen, gone=lost)
        if reason is not None:
            held[r] = library_roots.HeldBack(display(r), reason, lost, photos)
    return held


# What a file still being copied looks like to a reader: too short, not yet an image, or zeros where data will be.
_UNFINISHED_LOOKS = ("empty", "not_image", "corrupt", "truncated", "unsupported")


def _settling(result: ImageInfo | ImageFault, found: dict[bytes, FoundFile], settle_seconds: float) -> bool:
    """Whether a file read now is still being written: it changed while it was read, or it cannot be decoded and
    was modified moments ago. Such a file is left for the next scan, not recorded as corrupt."""
    try:
        st = os.stat(result.path_raw)
    except OSError:
        return False  # gone or unreadable now: what the reader found stands
    if result.size_bytes is not None and (result.size_bytes, result.mtime_ns) != (st.st_size, st.st_mtime_ns):
        return True
    f = found.get(result.path_raw)
    if f is not None and (f.size_bytes, f.mtime_ns) != (st.st_size, st.st_mtime_ns):
        return True
    if isinstance(result, ImageFault) and result.kind in _UNFINISHED_LOOKS:
        age = time.time() - st.st_mtime_ns / 1e9
        return 0 <= age < settle_seconds
    return False


def _split_fault(fault: str) -> tuple[str, str]:
    kind, _, message = fault.partition(": ")
    return kind, message


def _read_one(item: tuple[bytes, bytes | None], thumbnails_dir: str, thumb_size: int,
              sampling: VideoSampling) -> ImageInfo | ImageFault | WriteFailure:
    return read_image(item[0], thumbnails_dir, thumb_size, sidecar=item[1], sampling=sampling)


def _read_all(settings: Settings,
              paths: list[tuple[bytes, bytes | None]]) -> Iterator[ImageInfo | ImageFault | WriteFailure]:
    """Each file with its sidecar, read in worker processes (in this one for a few)."""
    func = functools.partial(_read_one, thumbnails_dir=str(settings.thumbnails_dir),
                             thumb_size=settings.thumbnail_size,
                             sampling=VideoSampling(settings.video_frame_seconds, settings.video_max_frames))
    workers = min(settings.effective_workers(), max(1, len(paths)))
    if len(paths) < IN_PROCESS_BELOW or workers == 1:
        configure_pillow(settings.max_image_pixels)
        for p in paths:
            yield func(p)
        return
    # spawn, not fork: a forked child would share the parent's database sockets
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=configure_pillow, initargs=(settings.max_image_pixels,)) as pool:
        yield from pool.imap_unordered(func, paths, chunksize=4)


def _load_known(db: Database, roots: Iterable[bytes], found: Sequence[bytes]) -> dict[bytes, _Known]:
    """Stored photos under the roots, and stored photos of files found here but filed elsewhere (a folder linked
    into this one that was indexed on its own)."""
    known: dict[bytes, _Known] = {}
    columns = "path_raw, id, size_bytes, mtime_ns, status, content_hash, error, thumbnail, sidecar_mtime_ns"
    with db.connection() as conn:
        for r in roots:
            real = os.path.realpath(r).rstrip(b"/")
            rows = conn.execute(  # under the folder as the user spells it, or under its resolved path
                f"SELECT {columns} FROM photos WHERE media_kind <> 'frame' AND "  # frames follow their video
                "(path = %s OR path LIKE %s OR path_raw = %s OR (path_raw >= %s AND path_raw < %s))",
                (display(r), like_prefix(display(r)), real, real + b"/", real + b"0"),
            )
            for path_raw, *rest in rows:
                known[bytes(path_raw)] = _Known(*rest)
        elsewhere = [p for p in found if p not in known]
        if elsewhere:
            for path_raw, *rest in conn.execute(f"SELECT {columns} FROM photos WHERE path_raw = ANY(%s) "
                                                "AND media_kind <> 'frame'",
                                                (elsewhere,)):
                known[bytes(path_raw)] = _Known(*rest)
    return known


def _resolve_legacy_paths(db: Database, known: dict[bytes, _Known], found: dict[bytes, FoundFile]) -> None:
    """Rows stored by an older photoscout under a path through a symbolic link take the file's resolved path,
    so the next scan through either path finds them (only rows not found by their stored path are checked)."""
    moves: list[tuple[bytes, bytes]] = []
    for stored in [p for p in known if p not in found]:
        real = os.path.realpath(stored)
        if real != stored and real in found and real not in known:
            moves.append((stored, real))
    if not moves:
        return
    with db.connection() as conn:
        for stored, real in moves:
            cur = conn.execute("UPDATE photos SET path_raw = %s WHERE id = %s AND NOT EXISTS "
                               "(SELECT 1 FROM photos WHERE path_raw = %s)", (real, known[stored].id, real))
            if cur.rowcount == 1:
                known[real] = known.pop(stored)


def _mark_interrupted_scans(conn: Any) -> None:
    host = socket.gethostname()
    for scan_id, pid in conn.execute("SELECT id, pid FROM scans WHERE status = 'running' AND host = %s", (host,)):
        if not psutil.pid_exists(pid) or pid == os.getpid():
            conn.execute("UPDATE scans SET status = 'interrupted', finished_at = now() WHERE id = %s", (scan_id,))


_INFO_COLUMNS = ("content_hash", "size_bytes", "mtime_ns", "format", "width", "height", "orientation",
                 "taken_at", "taken_at_source", "camera_make", "camera_model", "thumbnail", "media_kind", "rating",
                 "label", "tags", "title", "sidecar_mtime_ns", "duration_ms")


def _info_values(info: ImageInfo) -> tuple[Any, ...]:
    return tuple(list(v) if isinstance(v, tuple) else v for v in (getattr(info, c) for c in _INFO_COLUMNS))


class _BatchWriter:
    def __init__(self, db: Database, known: dict[bytes, _Known], found: dict[bytes, FoundFile],
                 summary: ScanSummary) -> None:
        self.db = db
        self.known = known
        self.found = found
        self.summary = summary
        self.moved_ids: set[int] = set()
        self.left_folders: set[str] = set()  # folders a photo moved out of (their stacks change too)

    def _shown(self, key: bytes) -> tuple[str, str]:
        """Display path and folder of a file: as the user reached it (its resolved path is its identity)."""
        spelled = self.found[key].path_raw if key in self.found else key
        return display(spelled), folder_of(spelled)

    def write(self, results: Sequence[ImageInfo | ImageFault]) -> None:
        if not results:
            return
        with self.db.connection() as conn:
            infos = [r for r in results if isinstance(r, ImageInfo)]
            moves = self._find_moves(conn, [i for i in infos if i.path_raw not in self.known])
            for r in results:
                if isinstance(r, ImageFault):
                    self._write_fault(conn, r)
                elif r.path_raw in moves:
                    self._write_move(conn, r, moves[r.path_raw])
                else:
                    self._write_info(conn, r)

    def _find_moves(self, conn: Any, infos: list[ImageInfo]) -> dict[bytes, int]:
        """New paths whose content equals a stored photo whose file is gone: the photo moved."""
        if not infos:
            return {}
        candidates: dict[str, list[tuple[int, bytes]]] = {}
        for pid, path_raw, content_hash in conn.execute(
            "SELECT id, path_raw, content_hash FROM photos WHERE content_hash = ANY(%s) AND status <> 'error' "
            "ORDER BY id", ([i.content_hash for i in infos],)
        ):
            old = bytes(path_raw)
            if pid in self.moved_ids or old in self.found or os.path.lexists(old):
                continue
            candidates.setdefault(content_hash, []).append((pid, old))
        moves: dict[bytes, int] = {}
        for info in infos:
            options = candidates.get(info.content_hash)
            if options:
                pid, old = options.pop(0)
                self.left_folders.add(folder_of(old))
                moves[info.path_raw] = pid
                self.moved_ids.add(pid)
        return moves

    def _write_move(self, conn: Any, info: ImageInfo, photo_id: int) -> None:
        shown, folder = self._shown(info.path_raw)
        conn.execute(
            "UPDATE photos SET path = %s, path_raw = %s, folder = %s, status = 'ok', error = NULL, "
            "missing_since = NULL, last_seen_at = now(), updated_at = now(), "
            + ", ".join(f"{c} = %s" for c in _INFO_COLUMNS) + " WHERE id = %s",
            (shown, info.path_raw, folder, *_info_values(info), photo_id),
        )
        if info.media_kind == "video":
            frames.moved(conn, photo_id, shown, info.path_raw)
            frames.sync(conn, photo_id, info, shown, content_changed=False)
        self.summary.moved += 1

    def _write_info(self, conn: Any, info: ImageInfo) -> None:
        k = self.known.get(info.path_raw)
        if k is not None and k.content_hash is not None and k.content_hash != info.content_hash:
            # The file was edited: outputs computed from the old pixels no longer describe it.
            for table in PHOTO_OUTPUT_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE photo_id = %s", (k.id,))
        cols = ", ".join(_INFO_COLUMNS)
        shown, folder = self._shown(info.path_raw)
        row = conn.execute(
            f"INSERT INTO photos (path, path_raw, folder, status, {cols}) "
            f"VALUES (%s, %s, %s, 'ok', {', '.join(['%s'] * len(_INFO_COLUMNS))}) "
            "ON CONFLICT (path_raw) DO UPDATE SET status = 'ok', error = NULL, missing_since = NULL, "
            "last_seen_at = now(), updated_at = now(), "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in _INFO_COLUMNS)
            + " RETURNING id, (xmax = 0) AS inserted",
            (shown, info.path_raw, folder, *_info_values(info)),
        ).fetchone()
        if info.media_kind == "video":
            frames.sync(conn, row[0], info, shown, content_changed=k is not None and k.content_hash is not None
                        and k.content_hash != info.content_hash)
        if row[1]:
            self.summary.new += 1
            self.summary.new_photo_ids.append(row[0])
        else:
            self.summary.updated += 1

    def _write_fault(self, conn: Any, fault: ImageFault) -> None:
        k = self.known.get(fault.path_raw)
        if fault.kind == "vanished" and k is not None and k.status == "ok":
            conn.execute("UPDATE photos SET status = 'missing', missing_since = now(), updated_at = now() "
                         "WHERE id = %s", (k.id,))
            frames.follow_status(conn, [k.id])
            self.summary.missing += 1
            return
        # Keep whatever was stored for a photo that went bad; only status, reason and file facts change.
        shown, folder = self._shown(fault.path_raw)
        conn.execute(
            "INSERT INTO photos (path, path_raw, folder, status, error, size_bytes, mtime_ns) "
            "VALUES (%s, %s, %s, 'error', %s, %s, %s) "
            "ON CONFLICT (path_raw) DO UPDATE SET status = 'error', error = EXCLUDED.error, "
            "size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns, updated_at = now()",
            (shown, fault.path_raw, folder, fault.reason, fault.size_bytes, fault.mtime_ns),
        )
        if k is not None:
            frames.follow_status(conn, [k.id])
        self.summary.errors += 1
        self.summary.error_files.append({"path": shown, "reason": fault.reason})
