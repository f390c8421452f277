"""Gzip for text responses, so phone pages stay small on a slow venue network."""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, request

bp = Blueprint("compression", __name__)

COMPRESSIBLE = frozenset(
    {
        "text/html",
        "text/css",
        "text/csv",
        "text/plain",
        "text/javascript",
        "application/javascript",
        "application/json",
        "image/svg+xml",
    }
)
MINIMUM_BYTES = 1024
LEVEL = 6


@bp.after_app_request
def compress(response: Response) -> Response:
    """Gzip a text response when the browser accepts it and it is worth it."""
    if (
        response.status_code != 200
        or response.mimetype not in COMPRESSIBLE
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "").lower()
        or response.is_streamed
        and not response.direct_passthrough
    ):
        return response
    original = response.response
    response.direct_passthrough = False
    data = response.get_data()
    if original is not response.response and hasattr(original, "close"):
        original.close()  # a static file's handle, now read into memory
    if len(data) < MINIMUM_BYTES:
        return response
    response.set_data(gzip.compress(data, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    etag, _ = response.get_etag()
    if etag:
        # The gzipped body is the same resource in another encoding: a weak validator.
        response.set_etag(etag, weak=True)
    return response
