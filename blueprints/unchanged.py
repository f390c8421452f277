"""The badge page's live refresh when nothing changed, answered before the app is asked.

Every phone at an event asks every few seconds whether its own list changed (and every
half minute whether its people to meet did): at a conference that is hundreds of requests
a second, and nearly every answer is "not modified". Such a request is answered here, in
the WSGI stack, from the signed cookie and one indexed lookup (domain/versions.py): no
request context, session cookie, rate limiter or template.

Anything else goes on to the app, which answers it as it always has: no cookie, a cookie
that does not verify, a badge this phone does not hold, a token that opens nothing (its
failed lookup is counted there), a version that moved, a database that does not answer.
So this answers only what the app would have answered with the same 304.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from werkzeug.http import parse_etags
from werkzeug.sansio.http import parse_cookie
from werkzeug.sansio.utils import host_is_trusted

from blueprints.converters import TokenConverter
from blueprints.device import read_cookie
from blueprints.headers import security_headers
from domain.db import db
from domain.versions import badge_version_on

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

# The two live halves of a badge page (blueprints/badge.py `live` and `live_people`).
_LIVE_PATH = re.compile(rf"/b/(?P<token>{TokenConverter.regex})/live(?P<people>/people)?")


class UnchangedLiveParts:
    """WSGI middleware: a 304 for a badge page's live part whose version the phone holds."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._serializer: Any = None
        self._engine: sa.Engine | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("HTTP_IF_NONE_MATCH")
            and self._trusted(environ)
        ):
            found = _LIVE_PATH.fullmatch(environ.get("PATH_INFO", ""))
            if found is not None:
                tag = self._unchanged(environ, found["token"], people=bool(found["people"]))
                if tag is not None:
                    start_response("304 Not Modified", self._headers(tag))
                    return []
        return self.wsgi_app(environ, start_response)

    def _trusted(self, environ: WSGIEnvironment) -> bool:
        """Tell whether the request names a host the app serves (TRUSTED_HOSTS, when set):
        any other is left to the app, which refuses it."""
        trusted = self.app.config["TRUSTED_HOSTS"]
        return not trusted or host_is_trusted(environ.get("HTTP_HOST"), trusted)

    def _unchanged(self, environ: WSGIEnvironment, token: str, *, people: bool) -> str | None:
        """Return the part's tag if the phone holds this badge and that version; else None."""
        badges = self._badges(environ)
        if not badges or not any(_same(token, held) for held in badges.values()):
            return None
        try:
            with self._engine_of().connect() as connection:
                try:
                    version = badge_version_on(connection, token)
                except sa.exc.DBAPIError:
                    # A connection whose lookup failed is not used again: it may hold a
                    # statement prepared before a migration made it wrong, which nothing on
                    # its way back to the pool would clear.
                    connection.invalidate()
                    raise
        except sa.exc.SQLAlchemyError:
            return None  # the app asks again, and says what is wrong
        if version is None or not _same(token, badges.get(str(version.event_id))):
            return None
        tag = version.tags.part(to_meet=people)
        return tag if parse_etags(environ["HTTP_IF_NONE_MATCH"]).contains_weak(tag) else None

    def _badges(self, environ: WSGIEnvironment) -> dict[str, Any]:
        """Return the badges this phone's signed session cookie holds, or {}."""
        # From the header as the server passed it (as Flask reads it): bytes that are not
        # UTF-8 make a value that does not verify, never an error.
        cookies = parse_cookie(environ.get("HTTP_COOKIE"))
        value = cookies.get(self.app.config["SESSION_COOKIE_NAME"])
        if not value:
            return {}
        if self._serializer is None:
            self._serializer = self.app.session_interface.get_signing_serializer(  # type: ignore[attr-defined]
                self.app
            )
        found = read_cookie(self.app, self._serializer, value)
        session = found[0] if found is not None else None
        badges = session.get("badges") if isinstance(session, dict) else None
        return badges if isinstance(badges, dict) else {}

    def _engine_of(self) -> sa.Engine:
        """Return the app's engine; on PostgreSQL, one that reads without a transaction.

        A lone SELECT needs no BEGIN and ROLLBACK around it: on PostgreSQL each is a round
        trip. (SQLite's are calls in this process, and its connections are set up for the
        app's own BEGIN: they are left as they are.) The connections are the app's own pool,
        so no process keeps more of them open for this.
        """
        if self._engine is None:
            with self.app.app_context():
                engine = db.engine
            if engine.dialect.name == "postgresql":
                engine = engine.execution_options(isolation_level="AUTOCOMMIT")
            self._engine = engine
        return self._engine

    def _headers(self, tag: str) -> list[tuple[str, str]]:
        return [
            ("ETag", f'W/"{tag}"'),
            # As every answer of the app: a 304 refreshes the headers the browser keeps.
            *security_headers(self.app, nonce=secrets.token_urlsafe(16), cacheable=False),
            ("Vary", "Accept-Encoding, Cookie"),
        ]


def _same(token: str, held: object) -> bool:
    return isinstance(held, str) and hmac.compare_digest(held, token)
