"""Short-lived memos, per process, for what may be a few seconds old: the event a poster
opens, the interests an event's form offers, and the ids of interests by name.

A change made through the domain forgets the memo in this process at once; other server
processes see it within `LOOKUP_CACHE_SECONDS` (domain/limits.py), set per app by
`configure` (tests set 0: every lookup reads the database).
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from domain.limits import INTEREST_IDS_CACHE_SIZE, LOOKUP_CACHE_SECONDS, LOOKUP_CACHE_SIZE

T = TypeVar("T")


class Memos:
    """Values remembered for the memos' few seconds, at most `size` of them.

    When full, the old ones go first; if every one is still fresh, all are forgotten.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def recalled(self, key: Hashable) -> Any:
        """Return the memo under `key` if there is one and it is not old; else None."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def keep(self, key: Hashable, value: Any) -> None:
        """Remember `value` under `key` (nothing while memos are off)."""
        if _seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.size:
                old = [key for key, (expires, _) in self._entries.items() if expires <= now]
                for key_ in old:
                    del self._entries[key_]
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[key] = (now + _seconds, value)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_seconds = float(LOOKUP_CACHE_SECONDS)
# What pages look up for a poster; and, apart so that many names typed never push those
# out, the ids of interests by name.
_lookups = Memos(LOOKUP_CACHE_SIZE)
interest_ids = Memos(INTEREST_IDS_CACHE_SIZE)


def configure(seconds: float) -> None:
    """Set how long a memo lasts; 0 turns memos off. Forget every memo."""
    global _seconds
    _seconds = float(seconds)
    _lookups.clear()
    interest_ids.clear()


def enabled() -> bool:
    """Tell whether memos are kept at all."""
    return _seconds > 0


def remembered(key: Hashable, compute: Callable[[], T]) -> T:
    """Return the memo under `key`, computing and keeping it if it is missing or old."""
    if _seconds <= 0:
        return compute()
    value = _lookups.recalled(key)
    if value is not None:
        return value  # type: ignore[no-any-return]
    value = compute()
    if value is not None:  # nothing found is not remembered: a guess must not fill the memo
        _lookups.keep(key, value)
    return value


def forget(key: Hashable) -> None:
    """Forget one memo in this process, after a change to what it holds."""
    _lookups.forget(key)


def poster_key(token: str) -> Hashable:
    """Name the memo of the event a poster token opens."""
    return ("poster", token)


def popular_key(event_id: int, token: str) -> Hashable:
    """Name the memo of the interests an event's form offers."""
    # The poster token is random, so an id reused by another database is never confused.
    return ("popular", event_id, token)


def interest_id_key(database: object, name: str) -> Hashable:
    """Name the memo of an interest's id in one database (its engine), by normalised name."""
    # Each engine has a random name of its own: two apps in one process, or an engine made
    # where a dropped one was, never take each other's ids.
    own = _databases.get(database)
    if own is None:
        own = _databases.setdefault(database, secrets.token_hex(8))
    return (own, name)


_databases: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def forget_event(event_id: int, token: str) -> None:
    """Forget what this process remembers of an event, after a change to it."""
    forget(poster_key(token))
    forget(popular_key(event_id, token))
