"""Absolute links to this site, for what leaves the browser: emails, posters, the terminal."""

from __future__ import annotations

from flask import current_app

from domain.models import Event


def absolute(path: str) -> str:
    """Return an absolute URL on this site, built from PUBLIC_URL (never the Host header)."""
    return f"{current_app.config['PUBLIC_URL']}{path}"


def poster_url(event: Event) -> str:
    """Return the absolute check-in URL printed on an event's poster."""
    return absolute(f"/e/{event.checkin_token}")
