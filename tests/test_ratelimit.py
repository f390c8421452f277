"""The rate limiter's counters (blueprints/ratelimit.py), in memory and in Redis alike.

The limits the app sets, and what they protect, are tested in tests/test_rate_limits.py.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from blueprints import ratelimit
from blueprints.ratelimit import Limit, Limiter, MemoryStorage, RedisStorage
from tests.test_rate_limits import guest, open_poster

REDIS = "redis://127.0.0.1:6379"


@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        ("30 per minute", 30, 60),
        ("6 per hour", 6, 3600),
        ("10 per 10 minutes", 10, 600),
        ("1200 per minute", 1200, 60),
        ("5 per day", 5, 86400),
    ],
)
def test_limits_read_as_written(text, amount, seconds):
    assert Limit.parse(text) == Limit(amount, seconds)


@pytest.mark.parametrize(
    "text", ["", "30", "30 a minute", "per minute", "-1 per hour", "3 per fortnight"]
)
def test_anything_else_is_no_limit(text):
    with pytest.raises(ValueError, match="not a rate limit"):
        Limit.parse(text)


def test_a_limit_counts_afterwards_or_gives_back_afterwards_not_both():
    with pytest.raises(ValueError, match="not both"):
        Limiter(lambda: "key").limit(
            "1 per minute", counts_when=lambda _r: True, given_back_unless=lambda _r: True
        )


@pytest.fixture(params=["memory", "redis"])
def storage(request) -> Iterator[tuple[object, str]]:
    """Each kind of counters, with a prefix no other run shares."""
    prefix = f"test-{secrets.token_hex(8)}"
    if request.param == "memory":
        yield MemoryStorage(), prefix
        return
    store = RedisStorage(REDIS)
    yield store, prefix
    store.reset(prefix)


def test_counters_take_peek_add_and_give(storage):
    store, prefix = storage
    key = f"{prefix}/scope/who/3/60"
    take, peek, add, give = ((key, op, 3, 60) for op in ("take", "peek", "add", "give"))
    assert store.run([take, take, take]) == [1, 2, 3]
    # Full: a take is refused (amount + 1) and counts nothing.
    assert store.run([take, peek]) == [4, 3]
    assert store.run([give, peek]) == [2, 2]
    assert store.run([take, take]) == [3, 4]
    # "add" counts whatever the amount: an outcome that happened is counted.
    assert store.run([add, peek]) == [4, 4]
    # One trip, several counters: each is its own.
    other = (f"{prefix}/scope/else/3/60", "take", 3, 60)
    assert store.run([other, take]) == [1, 4]


def test_giving_back_never_goes_below_nothing(storage):
    store, prefix = storage
    key = f"{prefix}/scope/who/3/60"
    assert store.run([(key, "give", 0, 0), (key, "give", 0, 0), (key, "peek", 3, 60)]) == [0, 0, 0]
    assert store.run([(key, "take", 3, 60)]) == [1]


def test_a_window_starts_with_its_first_count_and_ends_after_its_seconds(storage):
    store, prefix = storage
    key = f"{prefix}/scope/who/1/1"
    assert store.run([(key, "take", 1, 1), (key, "take", 1, 1)]) == [1, 2]
    time.sleep(1.5)
    assert store.run([(key, "peek", 1, 1), (key, "take", 1, 1)]) == [0, 1]


def test_redis_keeps_no_counter_without_its_window():
    store, prefix = RedisStorage(REDIS), f"test-{secrets.token_hex(8)}"
    key = f"{prefix}/scope/who/5/60"
    try:
        store.run([(key, "take", 5, 60), (key, "add", 5, 60), (key, "give", 0, 0)])
        ttl = redis.Redis.from_url(REDIS).ttl(key)
        assert 0 < ttl <= 60
    finally:
        store.reset(prefix)


def test_concurrent_takes_never_pass_the_amount(storage):
    store, prefix = storage
    key = f"{prefix}/scope/crowd/20/60"
    answers: list[int] = []
    start = threading.Barrier(40)

    def one() -> None:
        start.wait()
        answers.extend(store.run([(key, "take", 20, 60)]))

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer for answer in answers if answer <= 20) == list(range(1, 21))
    assert answers.count(21) == 20
    assert store.run([(key, "peek", 20, 60)]) == [20]


def test_counters_out_of_reach_let_the_door_through_and_say_so(app_factory, make_event, caplog):
    # Nothing listens on port 1: every trip to the counters fails at once.
    app = app_factory(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    with app.app_context():
        token = make_event().checkin_token
    phone = app.test_client()
    with caplog.at_level(logging.WARNING, logger="blueprints.ratelimit"):
        assert phone.get(f"/e/{token}").status_code == 200
        checked_in = phone.post(f"/e/{token}", data=guest(1))
    assert checked_in.status_code == 303
    assert "rate-limit counters unavailable" in caplog.text


def test_a_refused_request_uses_no_budget(app, make_event):
    """A check-in refused by the phone's budget gives back what it took of the address's."""
    store: MemoryStorage = app.extensions["rate_limits"].storage
    posters = [make_event().checkin_token for _ in range(8)]
    phone = open_poster(app, posters[0])
    statuses = [
        phone.post(f"/e/{token}", data=guest(n)).status_code for n, token in enumerate(posters)
    ]
    assert statuses == [303] * 6 + [429] * 2
    address = [key for key in store._counts if "/blueprints.public.landing/127.0.0.1/" in key]
    assert [store._counts[key][0] for key in address] == [6]


def test_limits_off_ask_nothing(app_factory, make_event):
    app = app_factory(RATELIMIT_ENABLED=False)
    state = app.extensions["rate_limits"]
    with app.app_context():
        token = make_event().checkin_token
    phone = app.test_client()
    for n in range(10):
        assert phone.post(f"/e/{token}?new=1", data=guest(n)).status_code == 303
    assert state.storage._counts == {}


class Counted:
    """Counts the trips made to a store."""

    def __init__(self, storage) -> None:
        self.storage, self.trips = storage, 0

    def run(self, operations):
        self.trips += 1
        return self.storage.run(operations)

    def reset(self, prefix: str) -> None:
        self.storage.reset(prefix)


def test_counters_out_of_reach_are_not_asked_again_for_a_few_seconds(
    app_factory, make_event, monkeypatch
):
    """A store that hangs costs one request its timeout, not every request."""
    app = app_factory(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    state = app.extensions["rate_limits"]
    state.storage = counted = Counted(state.storage)
    with app.app_context():
        token = make_event().checkin_token
    phone = app.test_client()
    phone.get(f"/e/{token}")  # its cookie: from now on every lookup asks the counters
    for number in range(5):
        assert phone.post(f"/e/{token}?new=1", data=guest(number)).status_code == 303
    assert counted.trips == 1
    # Once the pause is over, the store is asked again.
    monkeypatch.setattr(state, "unreachable_until", 0.0)
    assert phone.get(f"/e/{token}").status_code in (200, 303)
    assert counted.trips == 2


def test_memory_counters_forget_windows_that_ended(monkeypatch):
    store = MemoryStorage()
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    store.run([(f"p/s/{n}/5/60", "take", 5, 60) for n in range(MemoryStorage.PRUNE_EVERY - 1)])
    assert len(store._counts) == MemoryStorage.PRUNE_EVERY - 1
    clock[0] += 61
    store.run([("p/s/late/5/60", "take", 5, 60)])
    assert list(store._counts) == ["p/s/late/5/60"]


def test_a_reset_starts_afresh_only_the_counters_under_its_prefix():
    store = MemoryStorage()
    store.run([("one/s/k/5/60", "take", 5, 60), ("two/s/k/5/60", "take", 5, 60)])
    store.reset("one")
    assert list(store._counts) == ["two/s/k/5/60"]


def test_after_a_pause_one_request_tries_the_store_while_the_others_go_on(app_factory):
    app = app_factory(RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    state = app.extensions["rate_limits"]
    seen = []

    class Probe:
        def run(self, operations):
            # While this request tries the store, every other request is let through.
            seen.append(time.monotonic() < state.unreachable_until)
            raise redis.ConnectionError("still away")

        def reset(self, prefix: str) -> None:
            pass

    state.storage = Probe()
    state.unreachable_until = time.monotonic() - 1  # a pause that has just ended
    assert ratelimit._run(state, [("k", "peek", 1, 60)]) is None
    assert seen == [True]
    assert state.unreachable_until > time.monotonic()
