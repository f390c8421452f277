"""Flask extensions, created unbound and bound to the app in create_app."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response, current_app, request
from flask_compress import Compress
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect
from werkzeug.http import parse_accept_header

from blueprints import device
from blueprints.ratelimit import Limiter
from domain import limits
from domain.profile import normalise_email
from domain.tokens import derive_token

compress = Compress()
csrf = CSRFProtect()
migrate = Migrate(compare_type=True)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see that page."
login_manager.login_message_category = "info"
login_manager.session_protection = "basic"


def client_address() -> str:
    """Key a limit by the client's address (the proxy's view of it, with PROXY_HOPS)."""
    return request.remote_addr or "unknown"


# Counters live where RATELIMIT_STORAGE_URI says: memory for one process, Redis for several.
limiter = Limiter(client_address)

View = TypeVar("View", bound=Callable[..., object])


def device_key() -> str:
    """Key a limit by this device; a request without one counts as its address's device."""
    return device.limit_key() or client_address()


def typed_email_key() -> str:
    """Key a limit by the email address typed into the form, never stored in clear."""
    email = normalise_email(request.form.get("email", ""))
    return "email:" + derive_token(current_app.secret_key or "", f"limit-email:{email}")


def no_email_typed() -> bool:
    """Tell whether the form names no address, so there is no person to protect by it."""
    return not request.form.get("email", "").strip()


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


# Kept in the request's environ, not in g: g lives as long as the app context, which a
# test client's requests may share.
OUTCOME_KEY = "rapport.counts_against_outcome_limits"


def count_outcome() -> None:
    """Mark this request as one that counts against its outcome limits."""
    request.environ[OUTCOME_KEY] = True


def counted_outcome(response: object) -> bool:
    """Tell whether the view marked this request as counting against its outcome limits."""
    return bool(request.environ.get(OUTCOME_KEY))


def reads_before_writes(view: View) -> View:
    """Mark a view that starts its write transaction itself, after its reads.

    Other state-changing requests start theirs at their first query (blueprints/security.py).
    """
    view.reads_before_writes = True  # type: ignore[attr-defined]
    return view


def holds_named_badge() -> bool:
    """Tell whether this phone holds the badge token the request names.

    The server gave it to the phone (the cookie is signed), so it is no guess: a phone
    opening and refreshing its own badge never asks the counters.
    """
    token = (request.view_args or {}).get("token")
    return isinstance(token, str) and device.holds_badge(token)


def has_no_device() -> bool:
    """Tell whether the request carries no device of its own (no session cookie yet)."""
    return device.limit_key() is None


def lookup_limited(view: View) -> View:
    """Limit the failed token lookups of a view, per device and per address.

    Every route taking a token uses this (tests/test_rate_limits.py walks the URL map), and
    both budgets are shared by all of them, so guessing on one route uses up the others.
    A device past its budget is refused everything (its own badge aside); an address past
    its budget is refused only the lookups that open nothing, and requests without a device
    (a phone's first scan of a poster) count only there: no guesser can lock a venue out.
    """
    per_device = limiter.shared_limit(
        limits.FAILED_LOOKUPS_PER_DEVICE,
        scope="token-lookups-by-device",
        key_func=device_key,
        counts_when=failed_lookup,
        exempt_when=lambda: holds_named_badge() or has_no_device(),
    )
    per_address = limiter.shared_limit(
        limits.FAILED_LOOKUPS_PER_ADDRESS,
        scope="token-lookups",
        counts_when=failed_lookup,
        refuses_counted_only=True,
        exempt_when=holds_named_badge,
    )
    return per_address(per_device(view))


def sign_in_requests_limited(view: View) -> View:
    """Limit sign-in link requests per address typed, per device and per client address.

    The budgets are shared by every form that asks for a link.
    """
    # A request without an address typed sends nothing; the per-address budget counts it.
    per_email = limiter.shared_limit(
        limits.SIGNIN_REQUESTS_PER_EMAIL,
        scope="sign-in-links-by-email",
        key_func=typed_email_key,
        exempt_when=no_email_typed,
    )
    per_device = limiter.shared_limit(
        limits.SIGNIN_REQUESTS_PER_DEVICE,
        scope="sign-in-links-by-device",
        key_func=device_key,
        exempt_when=no_email_typed,
    )
    per_address = limiter.shared_limit(limits.SIGNIN_REQUESTS_PER_ADDRESS, scope="sign-in-links")
    return per_address(per_device(per_email(view)))
