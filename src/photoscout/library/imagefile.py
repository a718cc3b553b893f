"""Reading one image file: content hash, format, size, EXIF (date taken, orientation, camera), XMP (rating, label,
keywords, title: from its sidecar, else embedded) and a thumbnail. Camera RAW files are read through LibRaw
(``common/raw.py``): their thumbnail is made from the same pixels the models and previews get.

Runs in scan worker processes, so it takes plain values and returns a picklable result: :class:`ImageInfo`,
:class:`ImageFault` (what is wrong with the file, in words a user understands), or :class:`WriteFailure` (the
file may be fine: photoscout could not write its own thumbnail - a full or read-only disk - and nothing may be
blamed on the photo).
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from photoscout.common import raw, video
from photoscout.common.exif import clean_text, upright
from photoscout.common.imaging import to_rgb
from photoscout.library import xmp
from photoscout.library.xmp import XmpFacts

SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "GIF", "BMP", "MPO", "HEIF"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp", ".heic", ".heif", ".hif",
                    *raw.RAW_EXTENSIONS, *video.VIDEO_EXTENSIONS}
IN_MEMORY_LIMIT = 64 * 1024 * 1024  # files up to this size are read once and decoded from memory

# EXIF tags (https://exiftool.org/TagNames/EXIF.html)
_MAKE, _MODEL, _ORIENTATION, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_EXIF_IFD, _DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x8769, 0x9003, 0x9004


@dataclass(frozen=True)
class FrameInfo:
    """A frame of a video that stands for it in search: its moment, and its thumbnail (what the models read)."""

    ms: int
    thumbnail: str
    width: int
    height: int


@dataclass(frozen=True)
class ImageInfo:
    path_raw: bytes
    size_bytes: int
    mtime_ns: int
    content_hash: str
    format: str
    width: int
    height: int
    orientation: int | None
    taken_at: datetime
    taken_at_source: str  # 'exif' or 'file'
    camera_make: str | None
    camera_model: str | None
    thumbnail: str  # relative to the thumbnails directory
    media_kind: str = "image"  # image, raw, video
    duration_ms: int | None = None  # a video's
    frames: tuple[FrameInfo, ...] = ()  # a video's frames that stand for it
    rating: int | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    title: str | None = None
    sidecar_mtime_ns: int | None = None
    note: str | None = None  # a problem that did not stop the photo (an unreadable sidecar)


@dataclass(frozen=True)
class ImageFault:
    path_raw: bytes
    kind: str  # empty, not_image, unsupported, corrupt, truncated, too_large, permission, vanished, unreadable
    message: str
    size_bytes: int | None = None
    mtime_ns: int | None = None

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class WriteFailure:
    path_raw: bytes
    target: str  # the file photoscout could not write
    message: str  # the system's words: "No space left on device", "Read-only file system"


class _CannotWrite(Exception):
    def __init__(self, target: Path, exc: OSError) -> None:
        super().__init__(exc.strerror or str(exc))
        self.target = target


def thumbnail_relpath(content_hash: str) -> str:
    return f"{content_hash[:2]}/{content_hash}.jpg"


@dataclass(frozen=True)
class VideoSampling:
    every_s: float = 1.0
    max_frames: int = 24


def read_image(path_raw: bytes, thumbnails_dir: str, thumb_size: int, sidecar: bytes | None = None,
               sampling: VideoSampling | None = None) -> ImageInfo | ImageFault | WriteFailure:
    """Hash, inspect and thumbnail one file (and read its XMP ``sidecar``; a video's frames as ``sampling`` says).
    Never raises for a bad file; returns an :class:`ImageFault`."""
    result = _read_image(path_raw, thumbnails_dir, thumb_size, sampling or VideoSampling())
    if not isinstance(result, ImageInfo) or sidecar is None:
        return result
    try:
        mtime = os.stat(sidecar).st_mtime_ns
    except OSError:
        return result  # gone since the walk: the next scan sees that
    facts = xmp.read_sidecar(sidecar)
    merged = facts.merged_over(XmpFacts(result.rating, result.label, result.tags, result.title))
    return replace(result, rating=merged.rating, label=merged.label, tags=merged.tags, title=merged.title,
                   sidecar_mtime_ns=mtime, note=facts.problem)


def _read_image(path_raw: bytes, thumbnails_dir: str, thumb_size: int,
                sampling: VideoSampling) -> ImageInfo | ImageFault | WriteFailure:
    try:
        with open(path_raw, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size == 0:
                return ImageFault(path_raw, "empty", "the file is empty (0 bytes)", 0, st.st_mtime_ns)
            digest = hashlib.sha256()
            if st.st_size <= IN_MEMORY_LIMIT:
                data = fh.read()
                digest.update(data)
                head = data[:16]
                source: io.BytesIO | str | bytes = io.BytesIO(data)
            else:
                head = b""
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    head = head or chunk[:16]
                    digest.update(chunk)
                source = path_raw
    except OSError as exc:
        return _os_fault(path_raw, exc)
    content_hash = digest.hexdigest()
    if video.is_video(path_raw):
        return _inspect_video(path_raw, st, content_hash, Path(thumbnails_dir), thumb_size, sampling)
    if raw.is_raw(path_raw):
        return _inspect_raw(path_raw, source, st, content_hash, Path(thumbnails_dir), thumb_size)
    try:
        return _inspect(path_raw, source, st, content_hash, Path(thumbnails_dir), thumb_size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ImageFault(path_raw, "too_large", f"refused as a possible decompression bomb ({exc})",
                          st.st_size, st.st_mtime_ns)
    except UnidentifiedImageError:
        looks_like = sniff_format(head)
        if looks_like:
            return ImageFault(path_raw, "corrupt", f"starts like a {looks_like} file but its header is damaged",
                              st.st_size, st.st_mtime_ns)
        return ImageFault(path_raw, "not_image", "not an image (no known image format; wrong extension?)",
                          st.st_size, st.st_mtime_ns)
    except _Unsupported as exc:
        return ImageFault(path_raw, "unsupported", str(exc), st.st_size, st.st_mtime_ns)
    except _CannotWrite as exc:
        return WriteFailure(path_raw, str(exc.target), str(exc))
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            return _os_fault(path_raw, exc)
        text = str(exc)
        kind = "truncated" if "truncated" in text or "premature end" in text.lower() else "corrupt"
        return ImageFault(path_raw, kind, f"cannot decode image data ({text})", st.st_size, st.st_mtime_ns)
    except (ValueError, SyntaxError, IndexError, KeyError, TypeError, EOFError, MemoryError) as exc:
        # Pillow's plugins raise these on malformed files
        return ImageFault(path_raw, "corrupt", f"malformed image ({type(exc).__name__}: {exc})",
                          st.st_size, st.st_mtime_ns)


_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
)


def sniff_format(head: bytes) -> str | None:
    """The format a file's first bytes announce (to tell a damaged image from a file that is no image at all)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc"):
        return "HEIF"
    return None


class _Unsupported(Exception):
    pass


def _inspect(
    path_raw: bytes, source: io.BytesIO | str | bytes, st: os.stat_result, content_hash: str,
    thumbnails_dir: Path, thumb_size: int,
) -> ImageInfo:
    with Image.open(source) as im:
        fmt = (im.format or "").upper()
        if fmt not in SUPPORTED_FORMATS:
            raise _Unsupported(f"image format {fmt or 'unknown'} is not supported")
        if fmt == "MPO":  # multi-picture JPEG (many phones): the first frame is a normal JPEG
            fmt = "JPEG"
        width, height = im.size
        exif = im.getexif()
        orientation = _int_or_none(exif.get(_ORIENTATION))
        if orientation is not None and not 1 <= orientation <= 8:
            orientation = None
        taken = _exif_datetime(exif)
        make = clean_text(exif.get(_MAKE))
        model = clean_text(exif.get(_MODEL))
        packet = im.info.get("xmp")
        embedded = xmp.parse(packet) if isinstance(packet, (bytes, str)) and packet else XmpFacts()
        # Decoding is what finds truncated and corrupt data, so it always happens; JPEG draft mode makes the decoder
        # scale by 1/2..1/8 (DCT scaling), far faster than a full decode of a camera-sized photo.
        if fmt == "JPEG":
            im.draft("RGB", (thumb_size, thumb_size))
        im.load()
        rel = thumbnail_relpath(content_hash)
        target = thumbnails_dir / rel
        if not target.exists():
            thumb = im.copy()
            thumb.thumbnail((thumb_size, thumb_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            if orientation and orientation != 1:
                thumb = upright(thumb, orientation)
            if thumb.mode != "L":
                thumb = to_rgb(thumb)
            _save_thumbnail(thumb, target)
    taken_at, source_kind = _taken(taken, st)
    return ImageInfo(
        path_raw=path_raw, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=content_hash, format=fmt,
        width=width, height=height, orientation=orientation, taken_at=taken_at, taken_at_source=source_kind,
        camera_make=make, camera_model=model, thumbnail=rel, rating=embedded.rating, label=embedded.label,
        tags=embedded.tags, title=embedded.title,
    )


def _inspect_raw(path_raw: bytes, source: io.BytesIO | str | bytes, st: os.stat_result, content_hash: str,
                 thumbnails_dir: Path, thumb_size: int) -> ImageInfo | ImageFault | WriteFailure:
    """A camera RAW file: all of its sensor data read (a truncated file is found), the picture LibRaw gives
    (its preview, or the sensor data demosaiced) thumbnailed."""
    try:
        picture = raw.open_raw(source, check_data=True, max_pixels=Image.MAX_IMAGE_PIXELS)
    except raw.RawError as exc:
        return ImageFault(path_raw, exc.kind, f"{raw.format_name(path_raw)} file: {exc}", st.st_size, st.st_mtime_ns)
    rel = thumbnail_relpath(content_hash)
    target = thumbnails_dir / rel
    if not target.exists():
        thumb = picture.image.copy()
        thumb.thumbnail((thumb_size, thumb_size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        try:
            _save_thumbnail(thumb, target)
        except _CannotWrite as exc:
            return WriteFailure(path_raw, str(exc.target), str(exc))
    taken_at, source_kind = _taken(picture.taken_at, st)
    return ImageInfo(
        path_raw=path_raw, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=content_hash,
        format=raw.format_name(path_raw), width=picture.width, height=picture.height,
        orientation=picture.orientation, taken_at=taken_at, taken_at_source=source_kind, camera_make=picture.make,
        camera_model=picture.model, thumbnail=rel, media_kind="raw",
    )


def _inspect_video(path_raw: bytes, st: os.stat_result, content_hash: str, thumbnails_dir: Path, thumb_size: int,
                   sampling: VideoSampling) -> ImageInfo | ImageFault | WriteFailure:
    """A video: its header (duration, size, date), and its frames every ``sampling.every_s`` seconds thumbnailed
    (the first is its poster), those that show the same scene as the frame before them left out. Read from the
    file by seeking: never whole into memory."""
    name = video.format_name(path_raw)
    try:
        facts = video.probe(path_raw)
        times = video.sample_times(facts.duration_ms, sampling.every_s, sampling.max_frames)
        frames: list[FrameInfo] = []
        for ms, im in video.new_scenes(video.frames(path_raw, times, thumb_size)):
            rel = frame_thumbnail_relpath(content_hash, ms)
            target = thumbnails_dir / rel
            if not target.exists():
                _save_thumbnail(im, target)
            frames.append(FrameInfo(ms, rel, im.width, im.height))
    except video.VideoError as exc:
        return ImageFault(path_raw, exc.kind, f"{name} video: {exc}", st.st_size, st.st_mtime_ns)
    except _CannotWrite as exc:
        return WriteFailure(path_raw, str(exc.target), str(exc))
    taken_at, source_kind = _taken(facts.taken_at, st)
    return ImageInfo(
        path_raw=path_raw, size_bytes=st.st_size, mtime_ns=st.st_mtime_ns, content_hash=content_hash, format=name,
        width=facts.width, height=facts.height, orientation=None, taken_at=taken_at, taken_at_source=source_kind,
        camera_make=None, camera_model=None, thumbnail=frames[0].thumbnail, media_kind="video",
        duration_ms=facts.duration_ms, frames=tuple(frames),
    )


def _taken(recorded: datetime | None, st: os.stat_result) -> tuple[datetime, str]:
    """When a photo was taken: as the file records it, else the file's modification time."""
    if recorded is not None:
        return recorded, "exif"
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9), "file"


def frame_thumbnail_relpath(content_hash: str, ms: int) -> str:
    return f"{content_hash[:2]}/{content_hash}-{ms}.jpg"


def _save_thumbnail(thumb: Image.Image, target: Path) -> None:
    """Write atomically (a temporary file renamed into place); a failure is photoscout's, not the photo's."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        thumb.save(tmp, "JPEG", quality=82)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise _CannotWrite(target, exc) from exc


def _exif_datetime(exif: Image.Exif) -> datetime | None:
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except (KeyError, ValueError, TypeError, OSError):
        sub = {}
    for value in (sub.get(_DATETIME_ORIGINAL), sub.get(_DATETIME_DIGITIZED), exif.get(_DATETIME)):
        parsed = _parse_exif_datetime(value)
        if parsed is not None:
            return parsed
    return None


def _parse_exif_datetime(value: object) -> datetime | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00")[:19]
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if 1826 <= parsed.year <= 2200:  # the first photograph .. clearly bogus clocks
            return parsed
    return None


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _os_fault(path_raw: bytes, exc: OSError) -> ImageFault:
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path_raw):
            return ImageFault(path_raw, "broken_symlink", "symbolic link whose target does not exist")
        return ImageFault(path_raw, "vanished", "the file disappeared during the scan")
    if isinstance(exc, PermissionError):
        return ImageFault(path_raw, "permission", "permission denied when reading the file")
    if exc.errno == errno.ELOOP:
        return ImageFault(path_raw, "symlink_loop", "symbolic link loop")
    if exc.errno == errno.EISDIR:
        return ImageFault(path_raw, "unreadable", "is a directory")
    if exc.errno == errno.EIO:  # the disk, not necessarily the file: tried again by the next scan
        return ImageFault(path_raw, "io_error", f"input/output error while reading the file ({exc.strerror})")
    return ImageFault(path_raw, "unreadable", f"cannot read the file ({exc.strerror or exc})")
