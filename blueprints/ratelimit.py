"""Rate limits: counters per key in fixed windows, all of a request's in one trip.

A view declares its limits with `limiter.limit(...)` (its own counter) or
`limiter.shared_limit(..., scope=...)` (a counter shared by every view naming the scope).
Before the view runs, every limit the request meets is asked in one trip to the counters
(one Redis script call in production, see RATELIMIT_STORAGE_URI), and the request is
refused with 429 if one has run out. After it, a second trip is made only when an outcome
changes a count: a failed lookup counted, or a budget taken back.

A limit counts one of three ways:

- every request it meets (the default), taken up front;
- only requests whose response shows an outcome, `counts_when(response)`, such as a token
  that opened nothing: asked up front, counted afterwards (the rare case pays the trip);
- only requests expected to succeed, `given_back_unless(response)`, such as a new
  check-in: taken up front and given back afterwards when it did not happen.

A refused request uses none of any budget it was refused by. When the counters cannot be
reached, requests are let through and the failure is logged: a venue's door keeps working,
and the rules that protect a person's inbox are kept by the database (domain/limits.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger(__name__)

# How long requests go uncounted after the counters could not be reached, before trying again.
COUNTERS_RETRY_SECONDS = 5

View = TypeVar("View", bound=Callable[..., Any])

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"(\d+) per (\d+ )?(second|minute|hour|day)s?")


@dataclass(frozen=True)
class Limit:
    """How many in how many seconds, from the notation "N per [M] period"."""

    amount: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        found = _LIMIT.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"not a rate limit: {text!r}")
        amount, count, period = found.groups()
        return cls(int(amount), int(count or 1) * _PERIODS[period])


@dataclass(frozen=True)
class Rule:
    """One limit on a view: its counter, whom it counts and when."""

    limit: Limit
    scope: str
    key: Callable[[], str]
    methods: frozenset[str] | None
    exempt_when: Callable[[], bool] | None
    counts_when: Callable[[Response], bool] | None
    given_back_unless: Callable[[Response], bool] | None
    message: str | None
    # Refuse only the requests it counts, once they pass the amount, never the others.
    refuses_counted_only: bool = False

    def counter(self, prefix: str) -> str:
        limit = self.limit
        return f"{prefix}/{self.scope}/{self.key()}/{limit.amount}/{limit.seconds}"

    def applies(self) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        return self.exempt_when is None or not self.exempt_when()


class RateLimited(TooManyRequests):
    """A request refused by a limit: its message, and the window to wait."""

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule.message, retry_after=rule.limit.seconds)
        self.rule = rule


# What one trip asks of a counter: (key, operation, amount, window seconds).
#   "peek": read it.
#   "take": add one if under `amount`; answer the count after (amount + 1 when refused).
#   "add":  add one, starting a window if there is none.
#   "give": take one back, if the window still runs and holds any.
Operation = tuple[str, str, int, int]


class Storage(Protocol):
    def run(self, operations: Sequence[Operation]) -> list[int]: ...

    def reset(self, prefix: str) -> None: ...


class MemoryStorage:
    """Counters in this process: for one server process, and for tests.

    Counters whose window has ended are swept out every PRUNE_EVERY operations, so the
    store holds about as many as were counted in the longest window.
    """

    PRUNE_EVERY = 1000

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._operations = 0

    def run(self, operations: Sequence[Operation]) -> list[int]:
        now = time.monotonic()
        with self._lock:
            self._operations += len(operations)
            if self._operations >= self.PRUNE_EVERY:
                self._operations = 0
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return [self._one(now, *operation) for operation in operations]

    def _one(self, now: float, key: str, operation: str, amount: int, seconds: int) -> int:
        count, ends = self._counts.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + seconds
        if operation == "peek":
            return count
        if operation == "give":
            if count > 1:
                self._counts[key] = (count - 1, ends)
            else:  # nothing left to count: a budget given back whole keeps no entry
                self._counts.pop(key, None)
            return max(count - 1, 0)
        if operation == "take" and count >= amount:
            return amount + 1
        self._counts[key] = (count + 1, ends)
        return count + 1

    def reset(self, prefix: str) -> None:
        with self._lock:
            self._counts = {k: v for k, v in self._counts.items() if not k.startswith(prefix + "/")}


# The same operations on Redis, all of one trip in one script, so each is atomic and a
# counter's window starts with its first count (a key never lives without its expiry).
_SCRIPT = """
local answers = {}
for i, key in ipairs(KEYS) do
  local operation = ARGV[3 * i - 2]
  local amount = tonumber(ARGV[3 * i - 1])
  local seconds = tonumber(ARGV[3 * i])
  local count = tonumber(redis.call('GET', key) or '0')
  if operation == 'peek' then
    answers[i] = count
  elseif operation == 'give' then
    if count > 0 then count = redis.call('DECR', key) end
    answers[i] = count
  elseif operation == 'take' and count >= amount then
    answers[i] = amount + 1
  else
    count = redis.call('INCR', key)
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, seconds) end
    answers[i] = count
  end
end
return answers
"""


class RedisStorage:
    """Counters in Redis, shared by every server process."""

    def __init__(self, uri: str) -> None:
        # Short timeouts: a counter store that hangs must not hold the door.
        self._client = redis.Redis.from_url(uri, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_SCRIPT)

    def run(self, operations: Sequence[Operation]) -> list[int]:
        keys = [key for key, *_ in operations]
        arguments = [value for _, *rest in operations for value in rest]
        return [int(answer) for answer in self._script(keys=keys, args=arguments)]

    def reset(self, prefix: str) -> None:
        keys = list(self._client.scan_iter(f"{prefix}/*"))
        if keys:
            self._client.delete(*keys)


def storage_for(uri: str) -> Storage:
    if uri == "memory://":
        return MemoryStorage()
    if uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage(uri)
    raise ValueError(f"RATELIMIT_STORAGE_URI: no counters at {uri!r}")


@dataclass
class _State:
    """One app's limiter: its counters, and whether limits are on."""

    storage: Storage
    prefix: str
    enabled: bool
    unreachable_until: float = 0.0


_RULES = "_rate_limit_rules"
# Kept in the request's environ, not in g: g lives as long as the app context, which a
# test client's requests may share.
_ASKED = "rapport.rate_limits_asked"


class Limiter:
    """Rate limits for an app's views, declared on each view by a decorator."""

    def __init__(self, default_key: Callable[[], str]) -> None:
        self.default_key = default_key

    def init_app(self, app: Flask) -> None:
        app.extensions["rate_limits"] = _State(
            storage_for(app.config["RATELIMIT_STORAGE_URI"]),
            app.config["RATELIMIT_KEY_PREFIX"],
            bool(app.config["RATELIMIT_ENABLED"]),
        )
        app.before_request(self._before)
        app.after_request(self._after)

    def limit(
        self,
        limit: str,
        *,
        scope: str | None = None,
        methods: Sequence[str] | None = None,
        key_func: Callable[[], str] | None = None,
        exempt_when: Callable[[], bool] | None = None,
        counts_when: Callable[[Response], bool] | None = None,
        given_back_unless: Callable[[Response], bool] | None = None,
        refuses_counted_only: bool = False,
        error_message: str | None = None,
    ) -> Callable[[View], View]:
        """Limit a view; with `scope`, on a counter shared by every view naming it."""
        if counts_when is not None and given_back_unless is not None:
            raise ValueError("a limit counts afterwards or gives back afterwards, not both")
        if refuses_counted_only and counts_when is None:
            raise ValueError("only a limit that counts afterwards can refuse what it counts")

        def decorate(view: View) -> View:
            rule = Rule(
                Limit.parse(limit),
                scope or f"{view.__module__}.{view.__name__}",
                key_func or self.default_key,
                frozenset(methods) if methods is not None else None,
                exempt_when,
                counts_when,
                given_back_unless,
                error_message,
                refuses_counted_only,
            )
            setattr(view, _RULES, (*getattr(view, _RULES, ()), rule))
            return view

        return decorate

    def shared_limit(self, limit: str, *, scope: str, **options: Any) -> Callable[[View], View]:
        """Limit a view on the counter `scope` names, shared by every view limited by it."""
        return self.limit(limit, scope=scope, **options)

    def reset(self) -> None:
        """Start every counter of the current app afresh."""
        state = _state()
        state.storage.reset(state.prefix)

    def _before(self) -> None:
        state = _state()
        view = current_app.view_functions.get(request.endpoint or "")
        rules = getattr(view, _RULES, ())
        if not state.enabled or not rules:
            return
        asked = [
            (rule, rule.counter(state.prefix), _asking(rule)) for rule in rules if rule.applies()
        ]
        now = [(rule, key, op) for rule, key, op in asked if op != "later"]
        counts = _run(
            state, [(key, op, rule.limit.amount, rule.limit.seconds) for rule, key, op in now]
        )
        if counts is None:
            return
        refused = next(
            (
                rule
                for (rule, _, op), count in zip(now, counts, strict=True)
                if count > rule.limit.amount or (op == "peek" and count == rule.limit.amount)
            ),
            None,
        )
        if refused is not None:
            # What this request took, it gives back: a refused request uses no budget.
            given = [
                (key, "give", 0, 0)
                for (rule, key, op), count in zip(now, counts, strict=True)
                if op == "take" and count <= rule.limit.amount
            ]
            _run(state, given)
            raise RateLimited(refused)
        request.environ[_ASKED] = asked

    def _after(self, response: Response) -> Response:
        """Count the outcomes the limits wait for, in one trip; refuse, once a limit that
        refuses only what it counts has passed its amount, the request it just counted."""
        asked: list[tuple[Rule, str, str]] = request.environ.pop(_ASKED, [])
        settled = []
        for rule, key, op in asked:
            if op != "take" and rule.counts_when and rule.counts_when(response):
                settled.append((rule, (key, "add", rule.limit.amount, rule.limit.seconds)))
            elif rule.given_back_unless and not rule.given_back_unless(response):
                settled.append((rule, (key, "give", 0, 0)))
        counts = _run(_state(), [operation for _, operation in settled]) or []
        for (rule, _), count in zip(settled, counts, strict=False):
            if rule.refuses_counted_only and count > rule.limit.amount:
                return current_app.make_response(
                    current_app.handle_user_exception(RateLimited(rule))
                )
        return response


def _asking(rule: Rule) -> str:
    """What a rule asks of its counter before the view: read it, take from it, or nothing
    (it is asked once the view has answered)."""
    if rule.refuses_counted_only:
        return "later"
    return "peek" if rule.counts_when else "take"


def _state() -> _State:
    state: _State = current_app.extensions["rate_limits"]
    return state


def _run(state: _State, operations: Sequence[Operation]) -> list[int] | None:
    """Make one trip to the counters; None when they cannot be reached.

    After a failure (logged) no trip is tried for COUNTERS_RETRY_SECONDS, so a counter
    store that hangs costs one request its timeout, not every request.
    """
    if not operations:
        return []
    now = time.monotonic()
    if now < state.unreachable_until:
        return None
    if state.unreachable_until:
        # The first request after a pause tries the store alone: the others wait no
        # timeout while it does.
        state.unreachable_until = now + COUNTERS_RETRY_SECONDS
    try:
        answers = state.storage.run(operations)
    except redis.RedisError as error:
        state.unreachable_until = time.monotonic() + COUNTERS_RETRY_SECONDS
        log.warning(
            "rate-limit counters unavailable, letting requests through for %s s: %s",
            COUNTERS_RETRY_SECONDS,
            error,
        )
        return None
    state.unreachable_until = 0.0
    return answers
