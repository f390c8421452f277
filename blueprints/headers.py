"""The headers every response carries, whoever answers it: a view, or the WSGI stack."""

from __future__ import annotations

from flask import Flask

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
