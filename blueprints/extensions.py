"""Flask extensions, created unbound and bound to the app in create_app."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

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
