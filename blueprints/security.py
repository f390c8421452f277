"""Per-request safety: write transactions, response headers."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from domain.db import write_intent

bp = Blueprint("security", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self'",
        "script-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


@bp.before_app_request
def mark_write_transactions() -> None:
    """Start the transactions of state-changing requests as write transactions."""
    g.write_intent_token = write_intent.set(request.method not in SAFE_METHODS)


@bp.teardown_app_request
def unmark_write_transactions(_error: BaseException | None) -> None:
    """Leave the thread as it was: server threads are reused from one request to the next."""
    token = g.pop("write_intent_token", None)
    if token is not None:
        write_intent.reset(token)


@bp.after_app_request
def set_security_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Token URLs must not leak to other sites through the Referer header.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
