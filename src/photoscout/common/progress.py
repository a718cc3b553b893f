"""The progress interface long operations report to (the CLI draws a Rich bar, the API exposes it)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, name: str, total: int | None) -> None:
        """A new phase starts (``total`` None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current phase are done."""


class NoProgress:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass
