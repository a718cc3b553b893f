"""Photo paths are stored twice: exact bytes (to open the file) and a display string (to show and filter)."""

from __future__ import annotations

import os


def display(path_raw: bytes) -> str:
    """Text form of a file-system path; bytes that are not UTF-8 are shown as ``\\xNN``."""
    return path_raw.decode("utf-8", "backslashreplace")


def folder_of(path_raw: bytes) -> str:
    return display(os.path.dirname(path_raw))


def normalize_root(root: str | bytes | os.PathLike[str]) -> bytes:
    """Absolute, normalised, symlinks kept (the user's view of their library)."""
    raw = os.fsencode(root)
    return os.path.normpath(os.path.abspath(raw))


def like_prefix(root_display: str) -> str:
    """A LIKE pattern matching everything under a folder (wildcards in the name escaped)."""
    escaped = root_display.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.rstrip("/") + "/%"
