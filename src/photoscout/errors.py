"""One exception type for everything a user can get wrong; the CLI and API turn it into a message."""

from __future__ import annotations


class PhotoscoutError(Exception):
    """An error with a message meant for the user (no traceback needed).

    ``status`` is the HTTP status the API answers with; the CLI exits with ``exit_code``.
    """

    status: int = 400
    exit_code: int = 2

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(PhotoscoutError):
    status = 404


class DatabaseUnavailable(PhotoscoutError):
    status = 503
    exit_code = 3
