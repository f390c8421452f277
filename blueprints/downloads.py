"""Files to save: one Content-Disposition header for every download, whatever the name."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from flask import Response

from domain.vcard import Card, vcard

# What may not appear in a saved file's name on any common system.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\/:*?<>|\u2028\u2029\u202a-\u202e\u2066-\u2069]')
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FILENAME_MAX = 100


def content_disposition(filename: str, fallback: str = "download") -> str:
    """Return an attachment header naming the file, with an ASCII name for old clients.

    HTTP header values are Latin-1; a name in any other script goes in RFC 6266's
    `filename*=UTF-8''...` and `filename` carries an ASCII stand-in.
    """
    stem, dot, extension = filename.rpartition(".")
    if not dot:
        stem, extension = filename, ""
    suffix = f".{_ASCII_UNSAFE.sub('', extension)}" if extension else ""
    name = _UNSAFE.sub("", stem).strip(" .")[:FILENAME_MAX] or fallback
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = _ASCII_UNSAFE.sub("", folded.replace(" ", "-")).strip(".-")[:FILENAME_MAX]
    header = f'attachment; filename="{ascii_name or fallback}{suffix}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name + suffix, safe='')}"
    return header


def download(
    body: str | bytes, mimetype: str, filename: str, fallback: str = "download"
) -> Response:
    """Return a body as a file to save under the given name."""
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": content_disposition(filename, fallback)},
    )


def vcard_download(card: Card) -> Response:
    """Return a vCard as a file to save, named after the person."""
    return download(vcard(card), "text/vcard", f"{card.name}.vcf", fallback="contact")
