"""Opening images with Pillow, the same way everywhere (the scan and the models): the decompression-bomb limit and
HEIF support, transparency flattened onto white, photos upright (EXIF orientation), decoded no bigger than needed;
camera RAW files through ``raw.py`` (LibRaw), videos (their first frame) through ``video.py`` (FFmpeg)."""

from __future__ import annotations

import os
import warnings
from typing import IO

from PIL import Image, ImageOps

from photoscout.common import raw, video

_heif_registered = False


def configure_pillow(max_image_pixels: int) -> None:
    """Process-wide Pillow settings: decompression-bomb limit (a warning past it is an error) and HEIF support."""
    global _heif_registered
    Image.MAX_IMAGE_PIXELS = max_image_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - pillow-heif is a dependency
            pass
        _heif_registered = True


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB; transparent pixels (PNG/WebP/GIF with alpha) become white, as they look on a page or screen."""
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    return im.convert("RGB")


def load_rgb(path: bytes | str | IO[bytes], max_side: int, min_side: int = 0) -> Image.Image:
    """Open a photo for a model: upright, RGB. Decode at a reduced scale when the format allows (JPEG DCT scaling),
    keeping at least ``min_side`` (or ``max_side``) pixels on the shorter side, then cap the longer side at
    ``max_side``."""
    configure_pillow(Image.MAX_IMAGE_PIXELS or 178_956_970)
    if isinstance(path, (bytes, str)) and raw.is_raw(path):  # camera RAW: LibRaw, as the scan's thumbnail was made
        im = raw.open_raw(path, max_pixels=Image.MAX_IMAGE_PIXELS).image
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        return im
    if isinstance(path, (bytes, str)) and video.is_video(path):  # a video: its first frame (the grid's poster)
        return next(video.frames(path, [0], max_side))[1]
    frame = video.split_frame_path(path) if isinstance(path, (bytes, str)) else None
    if frame is not None:  # a video's frame (``clip.mp4#t=12.000``), decoded from the video
        return next(video.frames(frame[0], [frame[1]], max_side))[1]
    with Image.open(os.fsdecode(path) if isinstance(path, bytes) else path) as src:
        if src.format in ("JPEG", "MPO"):
            want = min_side or max_side
            w, h = src.size
            scale = want / min(w, h)
            src.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        im = to_rgb(ImageOps.exif_transpose(src))
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        im.load()
        return im
