"""Flask extensions, created unbound and bound to the app in create_app."""

from __future__ import annotations

from flask import Response, request
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect
from werkzeug.http import parse_accept_header

compress = Compress()
csrf = CSRFProtect()
migrate = Migrate(compare_type=True)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"

# Counters live where RATELIMIT_STORAGE_URI says: memory for one process, Redis for several.
limiter = Limiter(get_remote_address, headers_enabled=True)


def failed_lookup(response: object) -> bool:
    """Count a request against a lookup limit only when its token opened nothing."""
    return getattr(response, "status_code", 200) == 404


def drop_refused_encodings() -> None:
    """Leave out the encodings a browser refuses with q=0, so compression never picks one."""
    offered = request.environ.get("HTTP_ACCEPT_ENCODING")
    if offered and "q=0" in offered.replace(" ", ""):
        accepted = [name for name, quality in parse_accept_header(offered) if quality > 0]
        request.environ["HTTP_ACCEPT_ENCODING"] = ", ".join(accepted) or "identity"


def close_streamed_body(response: Response) -> Response:
    """Close a streamed body (a static file) when its response closes, even once compressed.

    Compression replaces the body with a generator that does not close the file it reads.
    """
    body = response.response
    if response.is_streamed and hasattr(body, "close"):
        response.call_on_close(body.close)
    return response
