"""Opening a photo for a model: upright (EXIF orientation), RGB, no bigger than needed (JPEG draft decoding)."""

from __future__ import annotations

import os

from PIL import Image, ImageOps

from photoscout.library.imagefile import configure_worker


def load_rgb(path: bytes | str, max_side: int, min_side: int = 0) -> Image.Image:
    """Decode at a reduced scale when the format allows (JPEG DCT scaling), keeping at least ``min_side`` (or
    ``max_side``) pixels on the shorter side, then cap the longer side at ``max_side``."""
    configure_worker(Image.MAX_IMAGE_PIXELS or 178_956_970)
    with Image.open(os.fsdecode(path) if isinstance(path, bytes) else path) as src:
        if src.format in ("JPEG", "MPO"):
            want = min_side or max_side
            w, h = src.size
            scale = want / min(w, h)
            src.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        im: Image.Image = ImageOps.exif_transpose(src)
        if im.mode != "RGB":
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                bg = Image.new("RGB", rgba.size, (255, 255, 255))
                bg.paste(rgba, mask=rgba.getchannel("A"))
                im = bg
            else:
                im = im.convert("RGB")
        if max(im.size) > max_side:
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
        im.load()
        return im
