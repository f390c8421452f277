"""The one shape of every refusal the domain gives: an exception with a stable code."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused a change; `code` is stable for callers, tests and messages."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
