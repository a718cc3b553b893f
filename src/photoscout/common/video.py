"""Videos through FFmpeg (the PyAV wheels carry it): how long a clip is, when it was taken, and a few frames of it
(``sample_times``: one every ``every_s`` seconds, at most ``max_frames``, spread evenly over a longer clip; a frame
that shows the same scene as the one kept before it is dropped, ``new_scenes``). Frames are found by seeking to the
keyframe before each time and decoding forward, so a 4 GB clip is never read whole.
A file FFmpeg cannot read raises :class:`VideoError` with a kind the scan records (``corrupt``, ``truncated``,
``unsupported``), like a damaged JPEG's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from PIL import Image

VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".3gp", ".mts", ".m2ts", ".webm"}
MEDIA_TYPES = {"MP4": "video/mp4", "M4V": "video/mp4", "MOV": "video/quicktime", "WEBM": "video/webm",
               "MKV": "video/x-matroska", "AVI": "video/x-msvideo", "3GP": "video/3gpp"}
_DATE_KEYS = ("com.apple.quicktime.creationdate", "creation_time", "date")


class VideoError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class VideoFacts:
    duration_ms: int
    width: int
    height: int
    taken_at: datetime | None
    codec: str


def is_video(name: bytes | str) -> bool:
    text = os.fsdecode(name)
    dot = text.rfind(".")
    return dot > 0 and text[dot:].lower() in VIDEO_EXTENSIONS


def frame_path(video_path: bytes, ms: int) -> bytes:
    """How a video's frame is named in the library: the video's path and the moment (``clip.mp4#t=12.000``)."""
    return video_path + f"#t={ms / 1000:.3f}".encode()


def split_frame_path(path: bytes | str) -> tuple[bytes, int] | None:
    """A frame's video and moment, from its name (``frame_path``); none for any other path."""
    raw = os.fsencode(path)
    head, sep, tail = raw.rpartition(b"#t=")
    if not sep or not is_video(head):
        return None
    try:
        return head, int(round(float(tail) * 1000))
    except ValueError:
        return None


def format_name(name: bytes | str) -> str:
    text = os.fsdecode(name)
    return text[text.rfind(".") + 1:].upper()


def sample_times(duration_ms: int, every_s: float, max_frames: int) -> list[int]:
    """The moments (ms) whose frames stand for a clip: 0, every_s, 2*every_s, ... or, for a clip longer than
    ``max_frames`` of them, ``max_frames`` moments spread evenly."""
    step = max(int(every_s * 1000), 1)
    if duration_ms <= 0:
        return [0]
    count = min(max_frames, duration_ms // step + 1)
    if count >= max_frames:
        step = duration_ms // max_frames
    return [i * step for i in range(max(count, 1))]


SAME_SCENE = 6.0  # mean absolute difference (0-255) of two frames' 32x32 grey copies under which they are one scene


def new_scenes(frames: Iterator[tuple[int, Image.Image]]) -> Iterator[tuple[int, Image.Image]]:
    """The frames that show something new: the first, then each that differs from the last one kept by at least
    ``SAME_SCENE`` (a still scene, a slide or a screen held for seconds is one frame, not one a second; the kept frame
    stands for the seconds until the next)."""
    import numpy as np

    kept = None
    for t, im in frames:
        grey = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.BILINEAR), dtype=np.float32)
        if kept is not None and float(np.abs(grey - kept).mean()) < SAME_SCENE:
            continue
        kept = grey
        yield t, im


def _open(source: bytes | str):  # type: ignore[no-untyped-def]
    import av

    try:
        return av.open(os.fsdecode(source), metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise VideoError("corrupt", f"FFmpeg cannot read it ({exc.strerror or exc})") from None
    except av.error.FFmpegError as exc:
        raise VideoError("unsupported", f"FFmpeg cannot open it ({exc})") from None


def probe(source: bytes | str) -> VideoFacts:
    """Duration, size, codec and date taken of a video (reads its header only)."""
    container = _open(source)
    try:
        streams = container.streams.video
        if not streams:
            raise VideoError("unsupported", "the file has no video stream")
        stream = streams[0]
        duration = container.duration / 1e6 if container.duration else (
            float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise VideoError("corrupt", "the video stream has no picture size")
        meta = {**dict(stream.metadata), **dict(container.metadata)}
        return VideoFacts(int(duration * 1000), width, height, _recorded_at(meta),
                          stream.codec_context.name or "unknown")
    finally:
        container.close()


def frames(source: bytes | str, times_ms: list[int], max_side: int) -> Iterator[tuple[int, Image.Image]]:
    """The frame at (or just after) each of ``times_ms``, upright RGB, no larger than ``max_side``. A clip whose data
    ends early raises ``VideoError('truncated')`` when not one frame could be decoded."""
    import av

    container = _open(source)
    got = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        for t in times_ms:
            try:
                if base is not None and t > 0:
                    container.seek(int(t / 1000 / base), stream=stream, backward=True, any_frame=False)
                picked = None
                for frame in container.decode(stream):
                    if frame.time is None or frame.time * 1000 >= t - 1:
                        picked = frame
                        break
            except (av.error.FFmpegError, ValueError, OSError):
                picked = None
            if picked is None:
                continue
            im = picked.to_image().convert("RGB")
            if max(im.size) > max_side:
                im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            got += 1
            yield t, im
    finally:
        container.close()
    if not got:
        raise VideoError("truncated", "no frame could be decoded (the clip is cut short or damaged)")


def _recorded_at(meta: dict[str, str]) -> datetime | None:
    for key in _DATE_KEYS:
        value = meta.get(key)
        if not value:
            continue
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            continue
        if 1900 <= parsed.year <= 2200 and not (parsed.year == 1970 and parsed.month == 1):
            offset = parsed.utcoffset()
            if offset is not None and not offset:  # UTC (most cameras): the wall clock here, as EXIF would say
                return parsed.astimezone().replace(tzinfo=None)
            return parsed.replace(tzinfo=None)  # no zone, or the phone's own: its wall clock
    return None
