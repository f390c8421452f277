"""Per-request safety: write transactions, response headers."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, current_app, g, request

from blueprints.headers import security_headers
from domain.db import write_intent

bp = Blueprint("security", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
