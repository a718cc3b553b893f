"""Files real libraries hold, made here (no camera file ships with the test data): DNG files written with tifffile
(a CFA mosaic of a real photo, with and without an embedded preview), XMP sidecars and embedded XMP. Shared by the
tests and ``benchmarks/bench_media.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

XMP = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:lr="http://ns.adobe.com/lightroom/1.0/" {attrs}>
{body}
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""


def xmp_packet(rating: int | None = None, label: str | None = None, tags: tuple[str, ...] = (),
               title: str | None = None, hierarchical: tuple[str, ...] = ()) -> str:
    attrs = " ".join(f'xmp:{k}="{v}"' for k, v in (("Rating", rating), ("Label", label)) if v is not None)
    body = []
    if tags:
        body.append("<dc:subject><rdf:Bag>" + "".join(f"<rdf:li>{t}</rdf:li>" for t in tags)
                    + "</rdf:Bag></dc:subject>")
    if hierarchical:
        body.append("<lr:hierarchicalSubject><rdf:Bag>" + "".join(f"<rdf:li>{t}</rdf:li>" for t in hierarchical)
                    + "</rdf:Bag></lr:hierarchicalSubject>")
    if title:
        body.append(f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>')
    return XMP.format(attrs=attrs, body="\n".join(body))


def write_dng(path: Path, source: Path, *, preview: bool, width: int = 1280, orientation: int = 1,
              make: str = "Canon", model: str = "Canon EOS 5D Mark IV", taken: str = "2021:07:04 10:11:12") -> Path:
    """A DNG of ``source``'s picture: a 12-bit RGGB mosaic (``width`` wide), with an uncompressed RGB preview of the
    same size in IFD0 (``preview``) or the mosaic itself in IFD0."""
    import tifffile

    with Image.open(source) as im:
        rgb = im.convert("RGB")
    height = int(width * rgb.height / rgb.width) // 2 * 2
    rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb).astype(np.float32) / 255.0
    linear = (pixels ** 2.2) * 4095
    cfa = np.zeros((height, width), np.uint16)
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    # ColorMatrix1 (XYZ -> camera) of a "camera" whose channels are linear sRGB: the XYZ -> linear sRGB matrix
    xyz_to_srgb = (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)
    identity = tuple(v for n in xyz_to_srgb for v in (n, 10000))
    dng = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True), (271, "s", 0, make, True),
           (272, "s", 0, model, True), (50708, "s", 0, model, True), (306, "s", 0, taken, True),
           (274, "H", 1, orientation, True), (50721, "2i", 9, identity, True), (50728, "2I", 3, (1, 1) * 3, True),
           (50778, "H", 1, 21, True)]
    mosaic = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True), (50717, "I", 1, 4095, True),
              (50714, "H", 1, 0, True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tifffile.TiffWriter(path) as tw:
        if preview:
            tw.write(np.asarray(rgb), photometric="rgb", subfiletype=1, subifds=1, extratags=dng)
            tw.write(cfa, photometric=32803, subfiletype=0, extratags=mosaic)
        else:
            tw.write(cfa, photometric=32803, subfiletype=0, extratags=dng + mosaic)
    return path


def truncated_copy(source: Path, dest: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def jpeg_with_xmp(source: Path, dest: Path, packet: str) -> Path:
    with Image.open(source) as im:
        im.convert("RGB").save(dest, "JPEG", quality=90, xmp=packet.encode())
    return dest


def write_clip(path: Path, segments: list[tuple[Path, float]], *, fps: int = 5, size: tuple[int, int] = (960, 720),
               creation_time: str | None = "2022-05-01T12:00:00.000000Z") -> Path:
    """An H.264 clip (MP4 or MOV by the name) showing each image for its seconds, written with PyAV."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for image, seconds in segments:
            with Image.open(image) as im:
                frame_image = im.convert("RGB")
            frame_image.thumbnail(size, Image.Resampling.LANCZOS)
            canvas = Image.new("RGB", size, (255, 255, 255))
            canvas.paste(frame_image, ((size[0] - frame_image.width) // 2, (size[1] - frame_image.height) // 2))
            frame = av.VideoFrame.from_image(canvas)
            for _ in range(int(seconds * fps)):
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
