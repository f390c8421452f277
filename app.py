"""The application factory: configuration, extensions, blueprints, commands, error pages."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from blueprints import (
    auth,
    badge,
    cli,
    communities,
    device,
    door,
    errors,
    maillinks,
    me,
    organiser,
    public,
    security,
    team,
    webhooks,
)
from blueprints.converters import CONVERTERS
from blueprints.extensions import (
    close_streamed_body,
    compress,
    csrf,
    drop_refused_encodings,
    limiter,
    login_manager,
    migrate,
)
from blueprints.unchanged import UnchangedLiveParts
from domain import caching
from domain.db import WriterConnection, db, end_reads_with_commit
from domain.limits import LOOKUP_CACHE_SECONDS
from domain.printtext import BOLD_FONTS, REGULAR_FONTS

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # falls back to instance/rapport.sqlite
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "SENDGRID_API_KEY": None,
    "SENDGRID_API_HOST": "https://api.sendgrid.com",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": None,
    "MAIL_FROM": "Rapport <hello@rapport.example>",
    "MAIL_POSTAL_ADDRESS": "",
    # Explicit, because the limiter is shared: an app built without limits (a test's) must
    # not leave them off for the next app built in the same process.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "rapport",
    "PROXY_HOPS": 0,
    "TRUSTED_HOSTS": None,  # any Host header; set it in production
    # Organisers who look after the whole installation (they may resume sending), by address.
    "RAPPORT_ADMIN_EMAILS": "",
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 60 * 60 * 24 * 90,
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    # Text responses are compressed so phone pages stay small on a slow venue network.
    "COMPRESS_MIMETYPES": [
        "text/html",
        "text/css",
        "text/csv",
        "text/plain",
        "text/javascript",
        "application/javascript",
        "application/json",
        "image/svg+xml",
    ],
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
    "COMPRESS_MIN_SIZE": 1024,
    # Seconds a process reuses a poster's event and its offered interests (0: never).
    "LOOKUP_CACHE_SECONDS": LOOKUP_CACHE_SECONDS,
    # Font files printed badges take glyphs from, first first (bold ones for names).
    "BADGE_FONTS": list(REGULAR_FONTS),
    "BADGE_BOLD_FONTS": list(BOLD_FONTS),
}

ENVIRONMENT_KEYS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "PUBLIC_URL",
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "MAIL_FROM",
    "MAIL_POSTAL_ADDRESS",
    "RATELIMIT_STORAGE_URI",
    "PROXY_HOPS",
    "TRUSTED_HOSTS",
    "RAPPORT_ADMIN_EMAILS",
    "BADGE_FONTS",
    "BADGE_BOLD_FONTS",
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Rapport application: defaults, then instance/config.py, then environment."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    if config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_mapping(
            {key: os.environ[key] for key in ENVIRONMENT_KEYS if os.environ.get(key)}
        )
    else:
        app.config.from_mapping(config)
    _derive_settings(app)
    app.url_map.converters.update(CONVERTERS)
    app.session_interface = device.PhoneSessions()

    caching.configure(app.config["LOOKUP_CACHE_SECONDS"])
    db.init_app(app)
    with app.app_context():
        end_reads_with_commit(db.engine)
    migrate.init_app(app, db, directory=os.path.join(app.root_path, "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    compress.init_app(app)
    app.before_request(drop_refused_encodings)
    # Registered after compression, so it runs before it and still sees the file.
    app.after_request(close_streamed_body)
    # Most refreshes of a badge page change nothing: those are answered before the app.
    unchanged = UnchangedLiveParts(app, app.wsgi_app)
    app.extensions["rapport.unchanged"] = unchanged
    app.wsgi_app = unchanged  # type: ignore[method-assign]
    if app.config["PROXY_HOPS"]:
        # Behind a reverse proxy, trust exactly that many X-Forwarded-* hops.
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    app.context_processor(device.navigation_context)
    for blueprint in (
        security.bp,
        errors.bp,
        auth.bp,
        organiser.bp,
        team.bp,
        door.bp,
        communities.bp,
        public.bp,
        badge.bp,
        me.bp,
        maillinks.bp,
        webhooks.bp,
        cli.bp,
    ):
        app.register_blueprint(blueprint)
    # Last, so its after-request hook runs first: a request it refuses only once the view
    # has answered (a failed lookup past an address's budget) still gets every header.
    limiter.init_app(app)
    return app


def _derive_settings(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set: put it in the environment or in instance/config.py "
            "(`make run` writes one for you)."
        )
    public_url = app.config["PUBLIC_URL"].rstrip("/")
    app.config["PUBLIC_URL"] = public_url
    if urlsplit(public_url).scheme == "https":
        app.config["SESSION_COOKIE_SECURE"] = True
        # A __Host- cookie is sent only to this exact host, over HTTPS, for the whole site:
        # a sibling subdomain cannot plant one.
        app.config["SESSION_COOKIE_NAME"] = "__Host-session"
        app.config["SESSION_COOKIE_DOMAIN"] = None
        app.config["SESSION_COOKIE_PATH"] = "/"
    trusted = app.config["TRUSTED_HOSTS"]
    if isinstance(trusted, str):
        # From the environment: host names separated by commas; ".example.org" means
        # example.org and every subdomain.
        app.config["TRUSTED_HOSTS"] = [host.strip() for host in trusted.split(",") if host.strip()]
    for key in ("BADGE_FONTS", "BADGE_BOLD_FONTS"):
        if isinstance(app.config[key], str):  # from the environment: paths as in PATH
            app.config[key] = [path for path in app.config[key].split(os.pathsep) if path]
    database_url = app.config["DATABASE_URL"] or "sqlite:///" + os.path.join(
        app.instance_path, "rapport.sqlite"
    )
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    if database_url.startswith("sqlite"):
        # Writers of one process take turns on a lock rather than in SQLite's busy loop.
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options["connect_args"] = {**options.get("connect_args", {}), "factory": WriterConnection}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
        os.makedirs(app.instance_path, exist_ok=True)
