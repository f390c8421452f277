"""Rate limits: guessing tokens and passwords runs out fast; counters can live in Redis."""

from __future__ import annotations

import secrets

import redis

from domain.tokens import new_token
from tests.conftest import PASSWORD


def test_guessing_badge_tokens_is_cut_off(client, make_event, make_attendee):
    real = make_attendee(make_event())
    for _ in range(30):
        assert client.get(f"/b/{new_token()}").status_code == 404
    blocked = client.get(f"/b/{new_token()}")
    assert blocked.status_code == 429
    assert "Too many tries" in blocked.text
    # Another address is not affected.
    other = client.get(f"/b/{real.badge_token}", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


def test_opening_real_badges_does_not_count(client, make_event, make_attendee):
    real = make_attendee(make_event())
    for _ in range(40):
        assert client.get(f"/b/{real.badge_token}").status_code == 200


def test_guessing_poster_tokens_is_cut_off(client):
    statuses = [client.get(f"/e/{new_token()}").status_code for _ in range(31)]
    assert statuses[:30] == [404] * 30 and statuses[30] == 429


def test_password_guessing_is_cut_off(client, make_organiser):
    organiser = make_organiser()
    for _ in range(10):
        response = client.post("/login", data={"email": organiser.email, "password": "wrong one!"})
        assert response.status_code == 200
    response = client.post("/login", data={"email": organiser.email, "password": PASSWORD})
    assert response.status_code == 429


def test_counters_in_redis_are_shared_between_processes(app_factory):
    # A client address of its own, so counters left by another run never meet this one.
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    client_of = {"environ_base": {"REMOTE_ADDR": address}}
    settings = {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}
    first, second = app_factory(**settings), app_factory(**settings)
    try:
        for _ in range(20):
            assert first.test_client().get(f"/b/{new_token()}", **client_of).status_code == 404
        for _ in range(10):
            assert second.test_client().get(f"/b/{new_token()}", **client_of).status_code == 404
        assert second.test_client().get(f"/b/{new_token()}", **client_of).status_code == 429
    finally:
        connection = redis.Redis.from_url("redis://127.0.0.1:6379")
        keys = list(connection.scan_iter(f"*/{address}/*"))
        assert keys, "the counters were not in Redis"
        connection.delete(*keys)
        connection.close()
