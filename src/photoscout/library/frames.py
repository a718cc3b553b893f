"""A video's frames as rows of their own (``media_kind = 'frame'``, ``frame_of`` the video, ``frame_ms`` the moment):
every model runs on them like on photos, and search folds a frame's hit into its video at that second. They are
not files: the walk never finds them, so they follow their video here (written with it, moved with it, missing,
back or unreadable with it)."""

from __future__ import annotations

from typing import Any

from photoscout.common import video
from photoscout.library.imagefile import ImageInfo

_COPIED = ("folder", "taken_at_source", "camera_make", "camera_model", "rating", "label", "tags", "title")


def suffix(ms: int) -> str:
    """What a frame's path adds to its video's: the moment, as a media fragment (``#t=12.000``,
    ``common/video.frame_path``)."""
    return video.frame_path(b"", ms).decode()


def sync(conn: Any, video_id: int, info: ImageInfo, shown: str, *, content_changed: bool) -> None:
    """The video's frame rows as ``info`` says: new ones added, gone ones deleted (their outputs with them), all
    of them following the video's path, date and metadata. A video whose pixels changed gets new frames."""
    if content_changed:
        conn.execute("DELETE FROM photos WHERE frame_of = %s", (video_id,))
    keep = [f.ms for f in info.frames]
    conn.execute("DELETE FROM photos WHERE frame_of = %s AND NOT (frame_ms = ANY(%s))", (video_id, keep))
    for f in info.frames:
        conn.execute(
            "INSERT INTO photos (path, path_raw, folder, status, content_hash, size_bytes, mtime_ns, format, width, "
            "height, taken_at, taken_at_source, thumbnail, media_kind, frame_of, frame_ms, tags) "
            "SELECT %s, %s, v.folder, 'ok', v.content_hash || %s, 0, v.mtime_ns, 'JPEG', %s, %s, "
            "v.taken_at + make_interval(secs => %s), v.taken_at_source, %s, 'frame', v.id, %s, v.tags "
            "FROM photos v WHERE v.id = %s "
            "ON CONFLICT (path_raw) DO UPDATE SET path = EXCLUDED.path, status = 'ok', error = NULL, "
            "missing_since = NULL, content_hash = EXCLUDED.content_hash, mtime_ns = EXCLUDED.mtime_ns, "
            "width = EXCLUDED.width, height = EXCLUDED.height, taken_at = EXCLUDED.taken_at, "
            "thumbnail = EXCLUDED.thumbnail, frame_of = EXCLUDED.frame_of, frame_ms = EXCLUDED.frame_ms, "
            "updated_at = now()",
            (shown + suffix(f.ms), info.path_raw + suffix(f.ms).encode(), suffix(f.ms), f.width, f.height,
             f.ms / 1000, f.thumbnail, f.ms, video_id))
    follow_metadata(conn, [video_id])


def follow_metadata(conn: Any, video_ids: list[int]) -> None:
    """Frames carry their video's folder, date source, camera and XMP facts (filters read them on the frame)."""
    conn.execute(
        "UPDATE photos f SET " + ", ".join(f"{c} = v.{c}" for c in _COPIED) + " FROM photos v "
        "WHERE f.frame_of = v.id AND v.id = ANY(%s)", (video_ids,))


def moved(conn: Any, video_id: int, new_path: str, new_raw: bytes) -> None:
    """The video moved: its frames' paths follow (before ``sync`` writes them again)."""
    conn.execute("UPDATE photos SET path = %s || '#t=' || to_char(frame_ms / 1000.0, 'FM999999990.000'), "
                 "path_raw = %s || convert_to('#t=' || to_char(frame_ms / 1000.0, 'FM999999990.000'), 'UTF8') "
                 "WHERE frame_of = %s", (new_path, new_raw, video_id))


def follow_status(conn: Any, video_ids: list[int]) -> None:
    """Frames take their video's status (missing, back, unreadable): what cannot be played is not searched."""
    if video_ids:
        conn.execute("UPDATE photos f SET status = v.status, missing_since = v.missing_since, error = CASE WHEN "
                     "v.status = 'error' THEN 'its video cannot be read' END, updated_at = now() FROM photos v "
                     "WHERE f.frame_of = v.id AND v.id = ANY(%s) AND f.status <> v.status", (video_ids,))
