"""The one shape of every refusal the domain gives: an exception with a stable code."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused a change; `code` is stable for callers, tests and messages.

    `message` is the sentence a person reads, where the rule has one of its own; callers
    that map codes to their own wording ignore it.
    """

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code
        self.message = message
