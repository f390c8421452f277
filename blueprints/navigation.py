"""Where a page may send a visitor next, without ever becoming an open redirect."""

from __future__ import annotations

import re

_BADGE_PATH = re.compile(r"/b/[A-Za-z0-9_-]{16,128}")


def badge_continuation(target: str | None) -> str | None:
    """Return `target` if it is a badge path on this site, else None."""
    if target and _BADGE_PATH.fullmatch(target):
        return target
    return None


def local_path(target: str | None) -> str | None:
    """Return `target` if it is a plain path on this site, else None."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 33 for char in target) or ":" in target.split("?")[0]:
        return None
    return target
