"""Readable error pages; every unknown, revoked or foreign token gets the same 404."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError

bp = Blueprint("errors", __name__)

MESSAGES = {
    400: ("Something was wrong with that request", "Please go back and try again."),
    404: (
        "Not found",
        "This link doesn't work. If you scanned a code, it may have been replaced: "
        "ask the organiser for the current one.",
    ),
    405: ("Not allowed", "That page can't be used this way."),
    413: ("Too much", "That was more than we accept in one go. Please shorten it and try again."),
    429: ("Slow down", "Too many tries in a short time. Please wait a little and try again."),
    500: ("Something went wrong", "Sorry, that's our fault. Please try again in a moment."),
}


@bp.app_errorhandler(CSRFError)
def csrf_error(error: CSRFError) -> tuple[str, int]:
    """Explain an expired or missing form token in plain words."""
    return render_template(
        "errors/error.html",
        title="This form has expired",
        message=(
            "The page was open too long or cookies are off. Please go back, reload and try again."
        ),
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
    if isinstance(error, RateLimitExceeded) and error.limit.error_message:
        message = error.description or message
    page = render_template("errors/error.html", title=title, message=message)
    if isinstance(error, RateLimitExceeded):
        # The window's length, read from the limit itself: no extra trip to the counters.
        return page, code, {"Retry-After": str(error.limit.limit.get_expiry())}
    return page, code
