"""Finding image files under the roots a user gives, with bytes paths (any file name, UTF-8 or not).

Symbolic links to files and directories are followed; a directory reached twice (a symlink loop, or two links to one
folder) is walked once. Each file comes with the path the user reached it by (``path_raw``, kept for display) and
its resolved path (``real``: one file is one photo, however it is reached); folders are resolved once each, so this
costs a few system calls per folder, not per file. Problems that are not about one image file (an unreadable folder,
a loop) are reported as :class:`WalkIssue`; a link to a file that cannot be followed is yielded as a
:class:`FoundFile` with ``fault``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from photoscout.library import xmp
from photoscout.library.imagefile import IMAGE_EXTENSIONS

# Folders that hold no user photos: hidden ones, Synology/QNAP thumbnail and recycle folders.
SKIPPED_DIR_NAMES = {b"@eaDir", b"#recycle", b"@Recycle", b"@Recently-Snapshot", b"lost+found"}
_EXTENSIONS = {e.encode() for e in IMAGE_EXTENSIONS}


@dataclass(frozen=True)
class FoundFile:
    path_raw: bytes
    size_bytes: int | None
    mtime_ns: int | None
    fault: str | None = None  # "broken_symlink: ...", "symlink_loop: ...", "permission: ..."
    real: bytes = b""  # the resolved path (symbolic links followed); the identity of the file
    sidecar: bytes | None = None  # its XMP sidecar (``name.ext.xmp`` or ``name.xmp``), if the folder has one
    sidecar_mtime_ns: int | None = None

    @property
    def key(self) -> bytes:
        return self.real or self.path_raw


@dataclass(frozen=True)
class WalkIssue:
    path_raw: bytes
    message: str


def has_image_extension(name: bytes) -> bool:
    dot = name.rfind(b".")
    return dot > 0 and name[dot:].lower() in _EXTENSIONS


def walk(roots: Iterable[bytes], *, exclude: Iterable[bytes] = ()) -> Iterator[FoundFile | WalkIssue]:
    excluded = {os.path.realpath(e) for e in exclude}
    visited: set[tuple[int, int]] = set()
    for root in roots:
        if os.path.isfile(root):
            yield from _file_entry(root, os.path.realpath(root))
            continue
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                st = os.stat(directory)
            except OSError as exc:
                yield WalkIssue(directory, f"cannot open folder ({exc.strerror})")
                continue
            key = (st.st_dev, st.st_ino)
            if key in visited:
                yield WalkIssue(directory, "folder already scanned through another path (symbolic link loop?); skipped")
                continue
            visited.add(key)
            real_dir = os.path.realpath(directory)
            if real_dir in excluded:
                continue
            try:
                with os.scandir(directory) as it:
                    entries = list(it)
            except OSError as exc:
                yield WalkIssue(directory, f"cannot list folder ({exc.strerror})")
                continue
            subdirs = []
            sidecars = {e.name.lower(): e for e in entries
                        if e.name.lower().endswith(xmp.SIDECAR_EXTENSION) and not e.name.startswith(b"._")}
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                path = entry.path
                assert isinstance(name, bytes) and isinstance(path, bytes)
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                except OSError:
                    is_dir = False
                if is_dir:
                    if not name.startswith(b".") and name not in SKIPPED_DIR_NAMES:
                        subdirs.append(path)
                    continue
                if not has_image_extension(name) or name.startswith(b"._"):  # macOS resource forks
                    continue
                for found in _file_entry(path, os.path.realpath(path) if entry.is_symlink()
                                         else os.path.join(real_dir, name)):
                    yield _with_sidecar(found, sidecars, name) if sidecars and found.fault is None else found
            stack.extend(reversed(subdirs))


def _with_sidecar(found: FoundFile, sidecars: dict[bytes, os.DirEntry[bytes]], name: bytes) -> FoundFile:
    for candidate in xmp.sidecar_candidates(name):
        entry = sidecars.get(candidate)
        if entry is not None:
            try:
                mtime = entry.stat().st_mtime_ns
            except OSError:
                continue
            return replace(found, sidecar=entry.path, sidecar_mtime_ns=mtime)
    return found


def _file_entry(path: bytes, real: bytes) -> Iterator[FoundFile]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            yield FoundFile(path, None, None, "broken_symlink: symbolic link whose target does not exist")
        return  # vanished between listing and stat: nothing to record
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            yield FoundFile(path, None, None, "symlink_loop: symbolic link loop")
        elif isinstance(exc, PermissionError):
            yield FoundFile(path, None, None, "permission: permission denied")
        else:
            yield FoundFile(path, None, None, f"unreadable: {exc.strerror}")
        return
    if stat.S_ISREG(st.st_mode):
        yield FoundFile(path, st.st_size, st.st_mtime_ns, real=real)
