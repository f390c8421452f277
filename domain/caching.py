"""Short-lived memos, per process, for what may be a few seconds old: the event a poster
opens, the interests an event's form offers, and the ids of interests by name.

A change made through the domain forgets the memo in this process at once; other server
processes see it within `LOOKUP_CACHE_SECONDS` (domain/limits.py), set per app by
`configure` (tests set 0: every lookup reads the database).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from domain.limits import LOOKUP_CACHE_SECONDS, LOOKUP_CACHE_SIZE

T = TypeVar("T")

_lock = threading.Lock()
_entries: dict[Hashable, tuple[float, Any]] = {}
_seconds = float(LOOKUP_CACHE_SECONDS)


def configure(seconds: float) -> None:
    """Set how long a memo lasts; 0 turns memos off. Forget every memo."""
    global _seconds
    with _lock:
        _seconds = float(seconds)
        _entries.clear()


def enabled() -> bool:
    """Tell whether memos are kept at all."""
    return _seconds > 0


def remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """Return the memo under `key`, computing and keeping it if it is missing or old."""
    if _seconds <= 0:
        return compute()
    value = recalled(key)
    if value is not None:
        return value  # type: ignore[no-any-return]
    value = compute()
    if value is not None:  # nothing found is not remembered: a guess must not fill the memo
        keep(key, value)
    return value


def recalled(key: Hashable) -> Any:
    """Return the memo under `key` if there is one and it is not old; else None."""
    entry = _entries.get(key)
    if entry is not None and entry[0] > time.monotonic():
        return entry[1]
    return None


def keep(key: Hashable, value: Any) -> None:
    """Remember `value` under `key` for the memos' few seconds (nothing while they are off)."""
    if _seconds <= 0:
        return
    expires = time.monotonic() + _seconds
    with _lock:
        if len(_entries) >= LOOKUP_CACHE_SIZE:
            _entries.clear()
        _entries[key] = (expires, value)


def forget(key: Hashable) -> None:
    """Forget one memo in this process, after a change to what it holds."""
    with _lock:
        _entries.pop(key, None)


def poster_key(token: str) -> Hashable:
    """Name the memo of the event a poster token opens."""
    return ("poster", token)


def popular_key(event_id: int, token: str) -> Hashable:
    """Name the memo of the interests an event's form offers."""
    # The poster token is random, so an id reused by another database is never confused.
    return ("popular", event_id, token)


def interest_id_key(name: str) -> Hashable:
    """Name the memo of an interest's id, by its normalised name."""
    return ("interest", name)


def forget_event(event_id: int, token: str) -> None:
    """Forget what this process remembers of an event, after a change to it."""
    forget(poster_key(token))
    forget(popular_key(event_id, token))
