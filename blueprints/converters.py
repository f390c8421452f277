"""URL converters that turn malformed tokens and ids into a 404 before any query runs."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, IntegerConverter

from domain.db import ID_MAX


class TokenConverter(BaseConverter):
    """A capability token: URL-safe base64, never anything else (no NUL, no slash)."""

    regex = r"[A-Za-z0-9_-]{16,128}"


class IdConverter(IntegerConverter):
    """A row id that fits the database's integer column."""

    def __init__(self, map: object) -> None:  # noqa: A002 - werkzeug's parameter name
        super().__init__(map, min=1, max=ID_MAX)  # type: ignore[arg-type]


CONVERTERS = {"token": TokenConverter, "id": IdConverter}
