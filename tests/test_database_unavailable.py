"""A database that can't be written (read-only, full, locked) or reached answers 503 with a
readable "try again in a moment", changes nothing, and the next request after it recovers
succeeds: no broken connection or session is left behind in the pool."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from domain import limits
from domain.db import database_unavailable, db, utcnow, writing
from domain.events import EventDetails, create_event
from domain.models import Person
from domain.organisers import create_organiser
from tests.conftest import PUBLIC_URL, database_url_under_test

WAIT = 10


def check_in(client: FlaskClient, event_token: str, number: int, **headers: str) -> Any:
    """Post the poster's check-in form as a new phone from its own address."""
    return client.post(
        f"/e/{event_token}",
        data={
            "name": f"Guest {number}",
            "email": f"guest{number}@example.org",
            "about": f"Guest number {number} " + "x" * 120,
            "interests": "sourdough, marathons, travel in Asia",
            "share_profile": "y",
        },
        headers=headers,
        environ_base={"REMOTE_ADDR": f"10.0.{number // 200}.{number % 200 + 1}"},
    )


def people() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Person)) or 0


def retry_after(response: Any) -> int:
    """Return the seconds a response asks the client to wait.

    On rate-limited routes the limiter keeps the later of its own window and ours, and
    restates ours from its clock, rounding down by up to a second.
    """
    seconds = int(response.headers["Retry-After"])
    assert seconds >= limits.DATABASE_RETRY_AFTER_SECONDS - 1
    return seconds


def assert_unavailable_page(response: Any) -> None:
    assert response.status_code == 503, response.text
    retry_after(response)
    assert response.mimetype == "text/html"
    assert "please try again in a moment" in response.text


@pytest.fixture
def switch(app: Flask) -> Iterator[Callable[[str, bool], None]]:
    """Turn a real database condition on or off for every connection the app checks out.

    "read_only": SQLite's PRAGMA query_only; PostgreSQL's default_transaction_read_only.
    The setting is applied at each checkout, as if the database itself had changed.
    """
    state = {"read_only": False}
    engine = db.engine

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            value = "ON" if state["read_only"] else "OFF"
            dbapi_connection.execute(f"PRAGMA query_only={value}")
        else:
            value = "on" if state["read_only"] else "off"
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET default_transaction_read_only = {value}")
            dbapi_connection.commit()

    sa.event.listen(engine, "checkout", on_checkout)

    def turn(condition: str, on: bool) -> None:
        db.session.remove()
        state[condition] = on

    yield turn
    state["read_only"] = False
    sa.event.remove(engine, "checkout", on_checkout)


def test_a_read_only_database_answers_503_then_recovers(client, make_event, switch):
    token = make_event().checkin_token
    assert check_in(client, token, 1).status_code == 303
    switch("read_only", True)

    refused = check_in(client_of(client), token, 2)
    assert_unavailable_page(refused)
    assert "Busy for a moment" in refused.text
    assert f'<a class="button" href="/e/{token}">Try again</a>' in refused.text  # its form
    # Reading still works while writing can't.
    assert client.get(f"/e/{token}", follow_redirects=True).status_code == 200
    # A client that asks for JSON gets JSON.
    as_json = check_in(client_of(client), token, 3, Accept="application/json")
    assert as_json.status_code == 503
    retry_after(as_json)
    assert as_json.json["error"] == "unavailable"
    assert people() == 1

    switch("read_only", False)
    for number in range(4, 9):  # more requests than the pool has connections
        assert check_in(client_of(client), token, number).status_code == 303
    assert people() == 6


def client_of(client: FlaskClient) -> FlaskClient:
    """Return a new phone on the same app."""
    return client.application.test_client()


def test_connections_dropped_under_the_app_are_replaced(app, client, make_event):
    token = make_event().checkin_token
    for number in range(1, 4):
        assert check_in(client_of(client), token, number).status_code == 303
    db.session.remove()
    if db.engine.dialect.name == "postgresql":
        # The server ends every session of this database but ours (a restart, a failover).
        with db.engine.connect() as connection:
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    # ... and then ours too: every pooled connection is closed under the app.
    pool = db.engine.pool
    held = [pool.connect() for _ in range(3)]
    for connection in held:
        connection.dbapi_connection.close()
        connection.close()
    for number in range(4, 8):
        assert check_in(client_of(client), token, number).status_code == 303
    assert people() == 7


def test_an_unreachable_database_answers_503(tmp_path: Path, app, make_event):
    token = make_event().checkin_token
    if database_url_under_test():
        url = sa.make_url(database_url_under_test()).set(host="127.0.0.1", port=1)
        unreachable = url.render_as_string(hide_password=False)
    else:
        unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'rapport.sqlite'}"
    down = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-" + "x" * 32,
            "DATABASE_URL": unreachable,
            "PUBLIC_URL": PUBLIC_URL,
            "WTF_CSRF_ENABLED": False,
        }
    )
    phone = down.test_client()
    assert_unavailable_page(phone.get(f"/e/{token}"))
    assert_unavailable_page(check_in(phone, token, 1))
    for half in ("live", "live/people"):
        live = phone.get(f"/b/{'x' * 43}/{half}")
        assert live.status_code == 503
        assert live.json["error"] == "unavailable"
        retry_after(live)
    with down.app_context():
        db.engine.dispose()


# ---------------------------------------------------------------- SQLite: full and locked


def sqlite_event(app: Flask) -> str:
    now = utcnow().replace(tzinfo=None, microsecond=0)
    with writing():
        organiser = create_organiser("organiser@example.org", "correct horse battery", "")
        event = create_event(
            organiser,
            EventDetails(
                name="Sunday brunch",
                starts_at=now,
                ends_at=now + timedelta(hours=4),
                timezone="UTC",
            ),
        )
        db.session.commit()
        return event.checkin_token


def test_a_full_sqlite_database_answers_503_then_recovers(sqlite_app):
    token = sqlite_event(sqlite_app)
    cap = {"pages": None}

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # PRAGMA max_page_count never goes below the current size: the file can't grow.
        pages = cap["pages"] if cap["pages"] is not None else 1_073_741_823
        dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        db.session.remove()
        cap["pages"] = 1
        stored, answers = 0, []
        for number in range(1, 200):
            response = check_in(sqlite_app.test_client(), token, number)
            answers.append(response.status_code)
            if response.status_code == 303:
                stored += 1
                continue
            assert_unavailable_page(response)
            break
        assert answers[-1] == 503, answers
        assert people() == stored  # the refused check-in left nothing half-written

        db.session.remove()
        cap["pages"] = None
        for number in range(300, 305):
            assert check_in(sqlite_app.test_client(), token, number).status_code == 303
        assert people() == stored + 5
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)


def test_a_locked_sqlite_database_answers_503_after_busy_timeout_then_recovers(sqlite_app):
    token = sqlite_event(sqlite_app)

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")  # not 15 s, in a test

    sa.event.listen(db.engine, "checkout", on_checkout)
    try:
        db.session.remove()
        path = db.engine.url.database
        # Another process holds the write lock (a long import, a backup, a stuck worker).
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        released = threading.Event()
        try:
            response = check_in(sqlite_app.test_client(), token, 1)
            assert_unavailable_page(response)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            released.set()
        assert people() == 0
        for number in range(2, 7):
            assert check_in(sqlite_app.test_client(), token, number).status_code == 303
        assert people() == 5
    finally:
        sa.event.remove(db.engine, "checkout", on_checkout)


# ---------------------------------------------------------------- which errors are "unavailable"


def wrapped(original: BaseException, kind: type[sa.exc.DBAPIError]) -> sa.exc.DBAPIError:
    return kind("INSERT ...", {}, original)


@pytest.mark.parametrize(
    ("original", "kind"),
    [
        (psycopg.errors.ReadOnlySqlTransaction("read-only"), sa.exc.InternalError),
        (psycopg.errors.DiskFull("could not extend file"), sa.exc.OperationalError),
        (psycopg.errors.TooManyConnections("too many clients"), sa.exc.OperationalError),
        (psycopg.errors.AdminShutdown("terminating connection"), sa.exc.OperationalError),
        (psycopg.errors.CannotConnectNow("the database system is starting up"),
         sa.exc.OperationalError),
        (psycopg.OperationalError("connection refused"), sa.exc.OperationalError),
        # Given up by the server: nothing was written, and the same request would pass now.
        (psycopg.errors.DeadlockDetected("deadlock detected"), sa.exc.OperationalError),
        (psycopg.errors.SerializationFailure("could not serialize"), sa.exc.OperationalError),
    ],
)  # fmt: skip
def test_postgresql_errors_that_mean_unavailable(original, kind):
    assert database_unavailable(wrapped(original, kind))


@pytest.mark.parametrize(
    ("original", "kind"),
    [
        (psycopg.errors.UndefinedTable("no such table"), sa.exc.ProgrammingError),
        (psycopg.errors.UniqueViolation("duplicate key"), sa.exc.IntegrityError),
        (psycopg.errors.SyntaxError("syntax error"), sa.exc.ProgrammingError),
    ],
)
def test_postgresql_errors_that_are_bugs_stay_bugs(original, kind):
    assert not database_unavailable(wrapped(original, kind))


def test_a_sqlite_statement_error_is_a_bug_not_unavailable(sqlite_app):
    with pytest.raises(sa.exc.OperationalError) as raised:
        db.session.execute(sa.text("SELECT * FROM no_such_table"))
    assert not database_unavailable(raised.value)
