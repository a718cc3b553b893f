"""Camera RAW files through LibRaw (the ``rawpy`` wheels), one way for everything that reads pixels (the scan's
thumbnail, the models, the previews): the embedded preview when it is large enough (``PREVIEW_MIN_SIDE``), else the
sensor data demosaiced at half size; upright either way. The date taken comes from LibRaw (every format it knows),
the camera from the file's TIFF directory (DNG, NEF, CR2, ARW, ORF, RW2, PEF, ...) or the preview's EXIF (CR3, RAF).

A file LibRaw cannot read raises :class:`RawError` with a kind the scan records (``unsupported``, ``truncated``,
``corrupt``, ``too_large``), like a damaged JPEG's."""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, BinaryIO, cast

from PIL import Image

from photoscout.common.exif import clean_text, upright

RAW_EXTENSIONS = {".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
                  ".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".erf", ".mef", ".mos", ".kdc", ".dcr"}
PREVIEW_MIN_SIDE = 1024  # an embedded preview whose longer side is at least this is used instead of demosaicing
_FLIP_TO_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw's flip -> the EXIF orientation
_MAKE, _MODEL, _ORIENTATION = 0x010F, 0x0110, 0x0112


class RawError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class RawPicture:
    image: Image.Image  # upright RGB
    source: str  # "preview" or "demosaic"
    width: int  # the sensor's picture, as stored (before orientation)
    height: int
    orientation: int
    taken_at: datetime | None
    make: str | None
    model: str | None


def is_raw(name: bytes | str) -> bool:
    text = os.fsdecode(name)
    dot = text.rfind(".")
    return dot > 0 and text[dot:].lower() in RAW_EXTENSIONS


def format_name(name: bytes | str) -> str:
    """The format a RAW file is recorded as: its extension in capitals (DNG, NEF, CR3, ...)."""
    text = os.fsdecode(name)
    return text[text.rfind(".") + 1:].upper()


def open_raw(source: bytes | str | IO[bytes], *, check_data: bool = False, max_pixels: int | None = None) -> RawPicture:
    """Read a RAW file (a path, or a file object holding it). ``check_data``: read all of the sensor data even when
    the preview is used, so a truncated file is found (the scan does; the models and previews do not)."""
    import rawpy

    if isinstance(source, bytes):
        source = os.fsdecode(source)
    try:
        with rawpy.imread(source if isinstance(source, str) else cast(BinaryIO, source)) as raw:
            sizes = raw.sizes
            width, height = int(sizes.width), int(sizes.height)
            if width <= 0 or height <= 0:
                raise RawError("corrupt", "the RAW file has no picture size")
            if max_pixels and width * height > max_pixels:
                raise RawError("too_large", f"refused as a possible decompression bomb ({width}x{height} pixels)")
            orientation = _FLIP_TO_ORIENTATION.get(int(sizes.flip), 1)
            if check_data:
                raw.unpack()
            preview, exif = _preview(raw, orientation)
            if preview is not None and max(preview.size) >= PREVIEW_MIN_SIDE:
                image, used = preview, "preview"
            else:
                pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                image, used = Image.fromarray(pixels).convert("RGB"), "demosaic"
            taken = _timestamp(raw)  # read after the data: LibRaw refuses to unpack once it was read
    except RawError:
        raise
    except rawpy.LibRawFileUnsupportedError:
        if _looks_raw(source):  # a RAW file's first bytes, but not a picture LibRaw can find: damaged or cut short
            raise RawError("corrupt", "starts like a RAW file but LibRaw cannot read it (damaged or cut short?)"
                           ) from None
        raise RawError("unsupported", "LibRaw does not know this RAW format (or it is not a RAW file)") from None
    except (rawpy.LibRawIOError, rawpy.LibRawOutOfOrderCallError) as exc:
        raise RawError("truncated", f"the RAW data ends early ({_words(exc)})") from None
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError) as exc:
        raise RawError("too_large", f"too large to decode ({_words(exc)})") from None
    except (rawpy.LibRawError, ValueError, OSError) as exc:
        raise RawError("corrupt", f"LibRaw cannot decode it ({type(exc).__name__}: {_words(exc)})") from None
    make, model = _camera(source, exif)
    return RawPicture(image, used, width, height, orientation, taken, make, model)


_MAGIC = (b"II*\x00", b"MM\x00*", b"IIRO", b"IIRS", b"IIU\x00", b"FUJIFILMCCD-RAW", b"FOVb")


def _looks_raw(source: str | IO[bytes]) -> bool:
    """Whether a file starts as RAW files do (TIFF and its variants, Fuji, Sigma, Canon's CR3 box)."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as fh:
                head = fh.read(16)
        else:
            source.seek(0)
            head = source.read(16)
    except (OSError, ValueError):
        return False
    return head.startswith(_MAGIC) or head[4:11] == b"ftypcrx"


def _words(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else exc
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _timestamp(raw: Any) -> datetime | None:
    try:
        stamp = raw.other.timestamp
    except (AttributeError, ValueError, OSError):
        return None
    if isinstance(stamp, datetime) and 1826 <= stamp.year <= 2200:
        return stamp.replace(tzinfo=None)
    return None


def _preview(raw: Any, orientation: int) -> tuple[Image.Image | None, Image.Exif | None]:
    """The embedded preview, upright RGB, and its EXIF; none when there is none LibRaw can hand out."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None, None
    except rawpy.LibRawError:
        return None, None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            im = Image.open(io.BytesIO(thumb.data))
            im.draft("RGB", (PREVIEW_MIN_SIDE, PREVIEW_MIN_SIDE))
            exif = im.getexif()
            im.load()
            own = exif.get(_ORIENTATION)
            # a preview that says how to turn it is turned so; one that does not is turned as the RAW says
            turn = own if isinstance(own, int) and 2 <= own <= 8 else orientation
            return upright(im.convert("RGB"), turn), exif
        return upright(Image.fromarray(thumb.data).convert("RGB"), orientation), None
    except (OSError, ValueError, SyntaxError):
        return None, None


def _camera(source: str | IO[bytes], exif: Image.Exif | None) -> tuple[str | None, str | None]:
    """Make and model from the file's first TIFF directory (most RAW formats are TIFF inside), else the preview's
    EXIF."""
    tags = _tiff_directory(source)
    make, model = clean_text(tags.get(_MAKE)), clean_text(tags.get(_MODEL))
    if (make is None or model is None) and exif is not None:
        make, model = make or clean_text(exif.get(_MAKE)), model or clean_text(exif.get(_MODEL))
    return make, model


def _tiff_directory(source: str | IO[bytes]) -> dict[int, Any]:
    from PIL import TiffImagePlugin

    try:
        fh: IO[bytes] = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115
        try:
            fh.seek(0)
            head = fh.read(8)
            if head[:2] not in (b"II", b"MM"):
                return {}
            # ORF ("IIRO") and RW2 ("IIU\0") are TIFF with their own magic number
            prefix = head[:2] + (b"*\x00" if head[:2] == b"II" else b"\x00*")
            ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=prefix + head[4:8])
            fh.seek(int.from_bytes(head[4:8], "little" if head[:2] == b"II" else "big"))
            ifd.load(fh)
            return {k: ifd.get(k) for k in (_MAKE, _MODEL)}
        finally:
            if isinstance(source, str):
                fh.close()
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, struct.error):
        return {}
