"""Per-request safety: write transactions, response headers."""

from __future__ import annotations

import secrets

from flask import Blueprint, Flask, Response, current_app, g, request

from domain.db import write_intent

bp = Blueprint("security", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Browsers remember for a year to use HTTPS only, for this host and any below it.
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(nonce: str) -> str:
    """Return the policy: our own files, plus inline scripts carrying this response's nonce."""
    return "; ".join(
        (
            "default-src 'self'",
            "img-src 'self' data:",
            "style-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "connect-src 'self'",
            "media-src 'self' blob: mediastream:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


@bp.app_template_global()
def csp_nonce() -> str:
    """Return this response's script nonce, for the few inline scripts of phone pages."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


@bp.before_app_request
def mark_write_transactions() -> None:
    """Start the transactions of state-changing requests as write transactions."""
    view = current_app.view_functions.get(request.endpoint or "")
    writes_first = not getattr(view, "reads_before_writes", False)
    g.write_intent_token = write_intent.set(writes_first and request.method not in SAFE_METHODS)


@bp.teardown_app_request
def unmark_write_transactions(_error: BaseException | None) -> None:
    """Leave the thread as it was: server threads are reused from one request to the next."""
    token = g.pop("write_intent_token", None)
    if token is not None:
        write_intent.reset(token)


@bp.after_app_request
def set_security_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    headers = security_headers(
        current_app, nonce=csp_nonce(), cacheable=request.endpoint == "static"
    )
    for name, value in headers:
        response.headers.setdefault(name, value)
    return response


def security_headers(app: Flask, *, nonce: str, cacheable: bool) -> list[tuple[str, str]]:
    """Return the headers every response carries: those of a static file when cacheable."""
    headers = [
        ("Content-Security-Policy", content_security_policy(nonce)),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # Token URLs must not leak to other sites through the Referer header.
        ("Referrer-Policy", "no-referrer"),
        # The badge scanner uses the camera on our own pages; nothing framed or foreign may.
        ("Permissions-Policy", "camera=(self)"),
    ]
    if app.config["PUBLIC_URL"].startswith("https://"):
        headers.append(("Strict-Transport-Security", HSTS))
    if not cacheable:
        headers.append(("Cache-Control", "no-store"))
    return headers
