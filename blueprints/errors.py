"""Readable error pages; every unknown, revoked or foreign token gets the same 404."""

from __future__ import annotations

import contextlib
import logging
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.urls import iri_to_uri

from blueprints.ratelimit import RateLimited
from domain import limits
from domain.db import database_unavailable, db
from domain.words import duration_in_words

bp = Blueprint("errors", __name__)
log = logging.getLogger(__name__)

# The pages' refresh scripts fetch these; they get a short JSON answer, not a page.
LIVE_ENDPOINTS = frozenset(
    {"organiser.attendees_live", "organiser.pictures_live", "badge.live", "badge.live_people"}
)
UNAVAILABLE_TITLE = "Busy for a moment"
UNAVAILABLE_MESSAGE = (
    "We can't save or load that right now. Nothing was changed: please try again in a moment."
)

MESSAGES = {
    400: ("Something was wrong with that request", "Please go back and try again."),
    404: (
        "Not found",
        "This link doesn't work. If you scanned a code, it may have been replaced: a "
        "poster's by the organiser, a badge's when its owner moved it to another phone. "
        "Ask whoever showed it to you for the current one.",
    ),
    405: ("Not allowed", "That page can't be used this way."),
    413: ("Too much", "That was more than we accept in one go. Please shorten it and try again."),
    429: ("Slow down", "Too many tries in a short time. Please wait a little and try again."),
    500: ("Something went wrong", "Sorry, that's our fault. Please try again in a moment."),
}
# A refusal by a rate limit says how long to wait, after the limit's own words or these.
TOO_MANY = "Too many tries in a short time."
# An organiser's page that is not there, or not theirs (another's event, a role without it).
ORGANISER_NOT_FOUND = (
    "Not found",
    "This page doesn't exist, or your account can't open it: an event's owner decides what "
    "each member of its team may see. Go back to your events and try from there.",
)


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> tuple[str, int]:
    """Explain an expired or missing form token in plain words."""
    return render_template(
        "errors/error.html",
        title="This form has expired",
        message=(
            "The page was open too long or cookies are off, so nothing was sent. Please open "
            "the form again and send it once more."
        ),
        again=_again(),
        again_label="Open the form again",
    ), 400


@bp.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Render any HTTP error as a short page in the site's style."""
    if isinstance(error, SecurityError):
        # A Host header outside TRUSTED_HOSTS: no URL of ours can be built for that host,
        # so the answer is plain text.
        return "Bad request: this site is not served under that host name.", 400
    code = error.code or 500
    title, message = MESSAGES.get(code, (error.name, error.description or ""))
    if code == 404 and request.path.startswith("/organiser/"):
        title, message = ORGANISER_NOT_FOUND
    if isinstance(error, RateLimited):
        wait = duration_in_words(error.rule.limit.seconds)
        message = f"{error.rule.message or TOO_MANY} You can try again in {wait} or less."
    again = _again() if code == 429 else None
    page = render_template("errors/error.html", title=title, message=message, again=again)
    if isinstance(error, RateLimited):
        # The window's length, read from the limit itself: no extra trip to the counters.
        return page, code, {"Retry-After": str(error.rule.limit.seconds)}
    return page, code


@bp.app_errorhandler(sa.exc.DBAPIError)
def database_error(error: sa.exc.DBAPIError) -> Response | tuple[str, int, dict[str, str]]:
    """Answer 503 "try again in a moment" while the database can't be written or reached."""
    # Whatever the transaction did is gone; hand its connection back so the pool resets
    # (or, if the server dropped it, replaces) it, and the next request starts clean.
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        db.session.rollback()
    db.session.remove()
    if not database_unavailable(error):
        raise error
    log.warning("database unavailable (%s %s): %s", request.method, request.path, error.orig)
    retry_after = {"Retry-After": str(limits.DATABASE_RETRY_AFTER_SECONDS)}
    if request.endpoint in LIVE_ENDPOINTS or _prefers_json():
        response = jsonify(
            error="unavailable",
            message=UNAVAILABLE_MESSAGE,
            retry_after=limits.DATABASE_RETRY_AFTER_SECONDS,
        )
        response.status_code = 503
        response.headers.update(retry_after)
        return response
    page = render_template(
        "errors/error.html",
        title=UNAVAILABLE_TITLE,
        message=UNAVAILABLE_MESSAGE,
        without_database=True,
        again=_again(),
    )
    return page, 503, retry_after


def _again() -> str | None:
    """Return where to try again from: this address, when it is a page one can open.

    A form posts to the page it is on (a poster's check-in, the sign-in), so a refused POST
    leads back to its form; one that has no page of its own (a button's action) leads
    nowhere new, and the page offers the start page only.
    """
    if request.url_rule is None:
        return None  # not one of our pages
    if request.method not in ("GET", "HEAD"):
        try:
            current_app.create_url_adapter(request).match(request.path, method="GET")  # type: ignore[union-attr]
        except HTTPException:
            return None
    # One leading slash: a link on this site, never a protocol-relative "//elsewhere". The
    # query as it came, bytes that are not UTF-8 included, quoted where it needs to be.
    path = "/" + iri_to_uri(request.path).lstrip("/")
    query = quote(request.query_string, safe="=&%+/:;@!$'()*,?~")
    return f"{path}?{query}" if query else path


def _prefers_json() -> bool:
    accepted = request.accept_mimetypes
    return accepted.best_match(["text/html", "application/json"]) == "application/json"
