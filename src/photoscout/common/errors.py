"""One exception type for everything a user can get wrong; each face (CLI, API) turns it into its own output."""

from __future__ import annotations

from typing import Any


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

    def details(self) -> dict[str, Any]:
        """What the error says besides its message, the same in every face (the API's error body, the CLI's
        ``--json``): e.g. the gate's verdict of a refused promotion."""
        return {}


class InvalidParameter(PhotoscoutError):
    """A value given to an operation is not acceptable. The message speaks of the operation; ``params`` names the
    parameters concerned (the operation's own names, e.g. ``after``), which each face shows in its own words (the
    CLI as its options, an API as its fields)."""

    def __init__(self, message: str, *params: str) -> None:
        super().__init__(message)
        self.params = params


class NotFound(PhotoscoutError):
    status = 404


class DatabaseUnavailable(PhotoscoutError):
    status = 503
    exit_code = 3


class EnvironmentProblem(PhotoscoutError):
    """The machine, not the input: a full or read-only disk, an I/O error or missing permission on photoscout's own
    files. Nothing is blamed on a photo; run the command again once it is fixed."""

    status = 507
    exit_code = 5
