"""A badge page's unchanged live part is answered before the app (blueprints/unchanged.py).

Each test looks at whether the request reached the app: a spy wraps the app below the
middleware and counts what gets through, the app still answering it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from blueprints import unchanged
from blueprints.unchanged import UnchangedLiveParts
from domain.badges import retire_badges
from domain.db import db
from tests.conftest import database_url_under_test
from tests.statements import counting
from tests.test_live_versions import MINE, TO_MEET, Phone, text


class Reached:
    """Counts the requests that get past the middleware to the app."""

    def __init__(self, app) -> None:
        middleware = app.wsgi_app
        while not isinstance(middleware, UnchangedLiveParts):
            middleware = middleware.app  # below ProxyFix, when there is one
        self.inner = middleware.wsgi_app
        middleware.wsgi_app = self
        self.count = 0

    def __call__(self, environ, start_response):
        self.count += 1
        return self.inner(environ, start_response)


@pytest.fixture
def reached(app) -> Reached:
    return Reached(app)


@pytest.fixture
def event(make_event):
    return make_event()


@pytest.fixture
def ada(app, event) -> Phone:
    return Phone(app, event.checkin_token, "Ada", "chess, jazz")


def ask(client, url: str, etag: str, method: str = "GET"):
    return client.open(url, method=method, headers={"If-None-Match": etag})


@pytest.mark.parametrize("half", [MINE, TO_MEET])
def test_an_unchanged_half_is_answered_without_the_app(ada, reached, half):
    url = f"{ada.badge}{half}"
    with counting() as statements:
        response = ada.refresh(half)
    assert response.status_code == 304
    assert reached.count == 0  # the app was not asked
    assert len(statements.sent) == 2, statements.sent  # BEGIN and one indexed lookup
    assert response.headers["ETag"] == ada.etags[url]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Vary"] == "Accept-Encoding, Cookie"
    assert "Set-Cookie" not in response.headers
    assert response.data == b""


def test_a_changed_half_is_left_to_the_app(app, event, ada, reached):
    bob = Phone(app, event.checkin_token, "Bob", "chess")
    reached.count = 0
    # Bob's arrival shares an interest: Ada's people to meet moved on, her own list did not.
    assert ada.refresh(MINE).status_code == 304
    assert reached.count == 0
    response = ada.refresh(TO_MEET)
    assert response.status_code == 200
    assert reached.count == 1
    assert "Bob" in text(response)
    # Bob asks to connect: Ada's own list moves on.
    bob.post(f"{ada.badge}/connect")
    reached.count = 0
    response = ada.refresh(MINE)
    assert response.status_code == 200
    assert reached.count == 1
    assert "Bob" in text(response)
    assert ada.refresh(MINE).status_code == 304
    assert reached.count == 1


def test_a_phone_that_does_not_hold_the_badge_is_left_to_the_app(app, event, ada, reached):
    url = f"{ada.badge}{MINE}"
    etag = ada.etags[url]
    stranger = Phone(app, event.checkin_token, "Eve", "chess").client
    reached.count = 0
    assert ask(stranger, url, etag).status_code == 404
    assert ask(app.test_client(), url, etag).status_code == 404  # no cookie at all
    assert reached.count == 2


def test_a_forged_cookie_is_left_to_the_app(app, ada, reached):
    url = f"{ada.badge}{MINE}"
    cookie = ada.client.get_cookie("session")
    assert cookie is not None
    forged = app.test_client()
    # The same payload, its signature broken.
    forged.set_cookie("session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert ask(forged, url, ada.etags[url]).status_code == 404
    assert reached.count == 1


def test_a_retired_badge_is_left_to_the_app(ada, reached):
    url = f"{ada.badge}{MINE}"
    retire_badges([ada.badge.rsplit("/", 1)[-1]])
    db.session.commit()
    assert ask(ada.client, url, ada.etags[url]).status_code == 404
    assert reached.count == 1


def test_guessed_tokens_still_reach_the_app_and_its_limits(ada, reached):
    """A guess opens nothing, so the app counts it as a failed lookup, as without the header."""
    guesses = [f"/b/{'x' * 22}{n:04d}/live" for n in range(3)]
    for guess in guesses:
        assert ask(ada.client, guess, 'W/"0"').status_code == 404
    assert reached.count == len(guesses)


def test_other_methods_and_requests_without_a_version_are_left_to_the_app(ada, reached):
    url = f"{ada.badge}{MINE}"
    assert ask(ada.client, url, ada.etags[url], method="HEAD").status_code == 304
    assert ada.client.get(url).status_code == 200
    assert reached.count == 2


def test_a_database_that_does_not_answer_leaves_the_question_to_the_app(ada, reached, monkeypatch):
    """The app asks again; here the database answers it, so the app's own 304 comes back."""

    def fails(*_args, **_kwargs):
        raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(unchanged, "badge_version_on", fails)
    response = ada.refresh(MINE)
    assert response.status_code == 304
    assert reached.count == 1


def test_connections_closed_under_it_are_replaced(app, ada, reached):
    """A restart or a failover closes the lookup's connections: the refresh still gets its
    304 (from the app, whose pool pings, when the lookup's own connection failed), and the
    next one is answered before the app again."""
    assert ada.refresh(MINE).status_code == 304
    assert reached.count == 0
    pool = app.extensions["rapport.unchanged"]._engine_of().pool
    held = [pool.connect() for _ in range(2)]
    for connection in held:
        connection.dbapi_connection.close()
        connection.close()
    assert ada.refresh(MINE).status_code == 304
    asked = reached.count
    assert asked <= 1
    for _ in range(3):
        assert ada.refresh(MINE).status_code == 304
    assert reached.count == asked


def test_a_connection_whose_lookup_failed_is_not_used_again(app, ada, reached, monkeypatch):
    assert ada.refresh(MINE).status_code == 304
    used = []
    real = unchanged.badge_version_on

    def fails_once(connection, token):
        used.append(connection.connection.dbapi_connection)
        if len(used) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real(connection, token)

    monkeypatch.setattr(unchanged, "badge_version_on", fails_once)
    assert ada.refresh(MINE).status_code == 304  # the app's
    assert reached.count == 1
    assert ada.refresh(MINE).status_code == 304  # before the app again
    assert reached.count == 1
    assert used[1] is not used[0]


def test_a_migration_while_phones_poll_costs_one_lookup(app, ada, reached):
    """On PostgreSQL the lookup is prepared after a few runs; a migration that changes the
    type of a column it reads makes that statement fail once, and only once."""
    for _ in range(8):  # past psycopg's prepare_threshold
        assert ada.refresh(MINE).status_code == 304
    assert reached.count == 0
    if db.engine.dialect.name != "postgresql":
        return  # SQLite prepares nothing that a migration could make wrong
    db.session.remove()
    # From another connection, as `flask db upgrade` runs beside the servers.
    migrator = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    with migrator.begin() as connection:
        connection.execute(sa.text("ALTER TABLE attendance ALTER COLUMN badge_version TYPE bigint"))
    migrator.dispose()
    for _ in range(5):
        assert ada.refresh(MINE).status_code == 304
    assert reached.count == 1


def test_the_lookup_engine_takes_the_apps_connection_settings(app_factory):
    """Preparing turned off for a pooler (README) is off for the lookup's connections too."""
    postgresql = (database_url_under_test() or "").startswith("postgresql")
    settings = {"prepare_threshold": None} if postgresql else {"timeout": 7}
    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": settings})
    engine = app.extensions["rapport.unchanged"]._engine_of()
    if not postgresql:
        with app.app_context():
            assert engine is db.engine  # SQLite: the app's own connections serve
        return
    with engine.connect() as connection:
        assert connection.connection.driver_connection.prepare_threshold is None


def test_on_postgresql_the_lookup_reads_without_a_transaction(app, ada, reached):
    engine = app.extensions["rapport.unchanged"]._engine_of()
    if engine.dialect.name != "postgresql":
        assert engine is db.engine  # SQLite: the app's own connections serve
        return
    assert engine.pool is db.engine.pool  # the app's own connections
    with engine.connect() as connection:
        assert connection.connection.driver_connection.autocommit is True
    for _ in range(3):
        assert ada.refresh(MINE).status_code == 304
    assert reached.count == 0


def test_a_cookie_that_is_not_utf8_is_left_to_the_app(app, ada, reached):
    url = f"{ada.badge}{MINE}"
    # As a server passes a header's raw bytes on: one character per byte.
    response = app.test_client().get(
        url, headers={"If-None-Match": ada.etags[url]}, environ_base={"HTTP_COOKIE": "session=\xff"}
    )
    assert response.status_code == 404
    assert reached.count == 1


def test_a_host_outside_trusted_hosts_is_left_to_the_app(app_factory, make_event):
    app = app_factory(TRUSTED_HOSTS=["rapport.test"])
    with app.app_context():
        token = make_event().checkin_token
    client = app.test_client()
    base = "http://rapport.test"
    assert client.get(f"{base}/e/{token}").status_code == 200
    done = client.post(f"{base}/e/{token}", data={"name": "Ada", "email": "ada@example.org"})
    badge = done.headers["Location"]
    etag = client.get(f"{base}{badge}/live").headers["ETag"]
    assert client.get(f"{base}{badge}/live", headers={"If-None-Match": etag}).status_code == 304
    inner = Reached(app)
    other = client.get(f"http://evil.example{badge}/live", headers={"If-None-Match": etag})
    assert other.status_code == 400
    assert inner.count == 1
