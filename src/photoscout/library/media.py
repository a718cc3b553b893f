"""A photo's files, found by its id only: the stored thumbnail, a larger preview (made on first use and kept under
``data/previews``) and the original. No path from a request ever reaches the file system: each file is found
through the photo's row, resolved, and refused when it leaves its folder or when the original is no longer the
file that was scanned (a symbolic link put in its place, a file that vanished)."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from photoscout.common import video
from photoscout.common.errors import EnvironmentProblem, InvalidParameter, NotFound
from photoscout.common.imaging import load_rgb
from photoscout.config import Settings
from photoscout.database import Database

PREVIEW_SIZES = (720, 1440)  # the sizes a preview is made in (longest side)
MEDIA_TYPES = {"DNG": "image/x-adobe-dng", "JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png",
               "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp", "TIFF": "image/tiff", "HEIF": "image/heif"}


@dataclass(frozen=True)
class MediaFile:
    path: Path
    media_type: str
    etag: str  # stable for the file's content: the photo's content hash (and the size for previews)


def _row(db: Database, photo_id: int) -> tuple[bytes, str, str | None, str | None, str | None]:
    with db.connection() as conn:
        row = conn.execute("SELECT path_raw, status, content_hash, thumbnail, format FROM photos WHERE id = %s",
                           (photo_id,)).fetchone()
    if row is None:
        raise NotFound(f"no photo {photo_id} in the library")
    return bytes(row[0]), row[1], row[2], row[3], row[4]


def _inside(folder: Path, rel: str) -> Path:
    """``folder/rel`` resolved; NotFound when it is not a regular file inside ``folder`` (no symlink escape)."""
    base = folder.resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        raise NotFound("the file is not there")
    return target


def thumbnail(db: Database, settings: Settings, photo_id: int) -> MediaFile:
    _path, _status, content_hash, thumb, _fmt = _row(db, photo_id)
    if not thumb or not content_hash:
        raise NotFound(f"photo {photo_id} has no thumbnail")
    try:
        target = _inside(settings.thumbnails_dir, thumb)
    except NotFound:
        raise NotFound(f"the thumbnail of photo {photo_id} is gone (photoscout index --repair-thumbnails)") from None
    return MediaFile(target, "image/jpeg", content_hash)


class ThumbnailCache:
    """Photo id -> its thumbnail, remembered for ``ttl`` seconds: a grid asks for the same few hundred again and
    again, and a lookup costs a database round trip. Thumbnails are content-addressed, so a remembered one is right
    until its photo changes or leaves the library (then it is forgotten within ``ttl``); one whose file is gone is
    not served from here."""

    def __init__(self, ttl: float = 60.0, size: int = 50_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[int, tuple[MediaFile, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, photo_id: int) -> MediaFile | None:
        with self._lock:
            item = self._items.get(photo_id)
        if item is None or time.monotonic() - item[1] > self.ttl or not item[0].path.is_file():
            return None
        return item[0]

    def put(self, photo_id: int, found: MediaFile) -> None:
        with self._lock:
            self._items[photo_id] = (found, time.monotonic())
            self._items.move_to_end(photo_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def original(db: Database, settings: Settings, photo_id: int) -> MediaFile:
    """The photo's own file, as long as it is still the file that was scanned (same resolved path, a regular file)."""
    path_raw, status, content_hash, _thumb, fmt = _row(db, photo_id)
    if status != "ok":
        raise NotFound(f"photo {photo_id} is {status}; its file cannot be served")
    path = settings.map_path(path_raw)
    try:
        st = os.lstat(path)
    except OSError:
        raise NotFound(f"the file of photo {photo_id} is gone") from None
    if not stat.S_ISREG(st.st_mode) or os.path.realpath(path) != path:
        raise NotFound(f"the file of photo {photo_id} is no longer the file that was scanned (index again)")
    return MediaFile(Path(os.fsdecode(path)), MEDIA_TYPES.get(fmt or "", video.MEDIA_TYPES.get(fmt or "",
                                                                                        "application/octet-stream")),
                     content_hash or "")


def preview(db: Database, settings: Settings, photo_id: int, size: int = 1440) -> MediaFile:
    """A JPEG of the photo, upright, its longest side ``size`` pixels (or less): made once, then kept."""
    if size not in PREVIEW_SIZES:
        raise InvalidParameter(f"a preview is {' or '.join(map(str, PREVIEW_SIZES))} pixels", "size")
    source = original(db, settings, photo_id)
    folder = settings.data_dir / "previews" / source.etag[:2]
    target = folder / f"{source.etag}-{size}.jpg"
    if target.is_file():
        return MediaFile(target, "image/jpeg", f"{source.etag}-{size}")
    try:
        im = load_rgb(os.fsencode(source.path), size)
    except (OSError, ValueError, Warning, video.VideoError, StopIteration) as exc:
        raise NotFound(f"photo {photo_id} cannot be read for a preview: {exc}") from exc
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        im.save(tmp, "JPEG", quality=85, optimize=True)
        os.replace(tmp, target)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write a preview to {folder}: {exc.strerror or exc}") from exc
    return MediaFile(target, "image/jpeg", f"{source.etag}-{size}")
