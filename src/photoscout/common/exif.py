"""Small facts of EXIF shared by every reader (JPEG and friends, camera RAW): turning a picture upright by its
orientation tag, and a text tag made clean (no NULs, trimmed, bounded)."""

from __future__ import annotations

from PIL import Image

_TRANSPOSE = {
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_270],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_90],
}


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """``im`` turned as EXIF orientation ``orientation`` (1..8) says; 1 or unknown: as it is."""
    for op in _TRANSPOSE.get(orientation, []):
        im = im.transpose(op)
    return im


def clean_text(value: object) -> str | None:
    """A text tag as a string: bytes decoded, NULs dropped, trimmed, at most 200 characters; none when empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    return text[:200] or None
