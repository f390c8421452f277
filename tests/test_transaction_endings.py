"""How transactions end: a rollback undoes every write, and on psycopg a transaction that
only read ends with COMMIT, so PostgreSQL keeps the statements psycopg prepared.

psycopg forgets every prepared statement at each ROLLBACK; a request that only read ended
with one, and the badge page's suggestions were parsed and planned anew on every view.
Run on whichever engine the suite runs; the prepared statements are PostgreSQL's alone.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from domain.db import (
    _WROTE,
    _commit_if_read_only,
    _note_writes,
    _transaction_begun,
    db,
    end_reads_with_commit,
    insert_ignoring_conflict,
)
from domain.models import Interest
from tests.conftest import make_config

REPEATS = 8  # more than psycopg's prepare_threshold (5)


def _postgresql(app: Flask) -> bool:
    return db.engine.dialect.name == "postgresql"


def _interests() -> list[str]:
    return list(db.session.scalars(sa.select(Interest.name).order_by(Interest.name)))


def _sent(app: Flask) -> list[str]:
    """Collect what each transaction ends with, as the driver is asked."""
    ended: list[str] = []
    sa.event.listen(db.engine, "commit", lambda _c: ended.append("commit"))
    sa.event.listen(db.engine, "rollback", lambda _c: ended.append("rollback"))
    return ended


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda: db.session.add(Interest(name="chess", key="chess")), id="orm"),
        pytest.param(
            lambda: db.session.execute(
                sa.text("INSERT INTO interest (name, key) VALUES ('chess', 'chess')")
            ),
            id="text",
        ),
        pytest.param(
            lambda: insert_ignoring_conflict(
                Interest.__table__, {"name": "chess", "key": "chess"}, ["name"]
            ),
            id="insert-or-ignore",
        ),
        pytest.param(
            lambda: db.session.execute(sa.insert(Interest).values(name="chess", key="chess")),
            id="core",
        ),
    ],
)
def test_a_rollback_undoes_a_write_of_any_kind(app: Flask, write: Any) -> None:
    assert _interests() == []  # read first: the transaction starts with a query
    write()
    db.session.flush()
    assert _interests() == ["chess"]
    db.session.rollback()
    assert _interests() == []
    db.session.remove()
    assert _interests() == []


def test_a_rollback_after_a_write_inside_a_savepoint_undoes_it(app: Flask) -> None:
    assert _interests() == []
    with db.session.begin_nested():
        db.session.add(Interest(name="jazz", key="jazz"))
    db.session.rollback()
    assert _interests() == []


def test_a_failed_statement_is_rolled_back_and_the_next_request_works(app: Flask) -> None:
    db.session.add(Interest(name="go", key="go"))
    db.session.commit()
    assert _interests() == ["go"]
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.text("SELECT * FROM no_such_table"))
    db.session.rollback()
    assert _interests() == ["go"]
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text("INSERT INTO interest (name, key) VALUES ('go', 'go')"))
    db.session.rollback()
    db.session.remove()
    assert _interests() == ["go"]


def test_reads_end_with_commit_on_psycopg_and_writes_with_a_real_rollback(app: Flask) -> None:
    installed = sa.event.contains(db.engine, "rollback", _commit_if_read_only)
    assert installed == (db.engine.dialect.driver == "psycopg")
    if not installed:
        return  # SQLite's driver keeps its statement cache through a rollback
    driver = db.session.connection().connection.driver_connection
    from psycopg.pq import TransactionStatus

    _interests()
    assert driver.info.transaction_status == TransactionStatus.INTRANS
    committed: list[int] = []
    original_commit = driver.commit
    driver.commit = lambda: (committed.append(1), original_commit())  # type: ignore[method-assign]
    try:
        db.session.rollback()  # a read: ends with COMMIT
        assert committed == [1]
        assert driver.info.transaction_status == TransactionStatus.IDLE
        db.session.add(Interest(name="chess", key="chess"))
        db.session.flush()
        db.session.rollback()  # a write: a real ROLLBACK
        assert committed == [1]
        assert _interests() == []
    finally:
        del driver.commit


def test_a_page_viewed_again_runs_prepared_statements_on_postgresql(
    app: Flask, client: Any, make_event: Any, make_organiser: Any, make_attendee: Any
) -> None:
    event = make_event(make_organiser())
    for number in range(3):
        make_attendee(event, name=f"Guest {number}", interests=["chess", "jazz"])
    poster = f"/e/{event.checkin_token}"
    for _ in range(REPEATS):
        assert client.get(poster).status_code == 200
    db.session.remove()
    if not _postgresql(app):
        return  # nothing is prepared on SQLite; the requests above must still succeed
    db.engine.dispose()  # one pooled connection from here on, as the test client uses it
    for _ in range(REPEATS):
        assert client.get(poster).status_code == 200
        db.session.remove()  # each request in a transaction of its own, as on a server
    prepared = db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements")).all()
    assert any("FROM event" in statement for statement in prepared), prepared


def test_no_listener_on_sqlite(tmp_path: Any) -> None:
    """SQLite's driver keeps its statements through a rollback: nothing is changed there."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plain.sqlite'}")
    end_reads_with_commit(engine)
    assert not sa.event.contains(engine, "rollback", _commit_if_read_only)
    engine.dispose()


def test_the_app_installs_it_on_its_own_engine(tmp_path: Any) -> None:
    from app import create_app

    app = create_app(make_config(tmp_path))
    with app.app_context():
        expected = db.engine.dialect.driver == "psycopg"
        assert sa.event.contains(db.engine, "rollback", _commit_if_read_only) == expected
        db.engine.dispose()


class _Connection:
    def __init__(self) -> None:
        self.info: dict[str, bool] = {}


@pytest.mark.parametrize(
    ("statement", "writes"),
    [
        ("SELECT interest.id FROM interest WHERE interest.name = %(name)s", False),
        ("  select 1", False),
        ("INSERT INTO interest (name, key) VALUES ('a', 'a')", True),
        ("  insert into interest (name, key) values ('a', 'a')", True),
        ("/* a comment */ SELECT 1", True),  # not a plain query: counted as a write
        ("WITH x AS (INSERT INTO interest (name, key) VALUES ('a', 'a')) SELECT 1", True),
        ("SELECT 1; INSERT INTO interest (name, key) VALUES ('a', 'a')", True),
        ("SELECT * INTO copied FROM interest", True),
        ("select * into copied from interest", True),
        ("SAVEPOINT sa_savepoint_1", True),
        ("UPDATE attendance SET badge_version = 2", True),
    ],
)
def test_what_counts_as_a_write(statement: str, writes: bool) -> None:
    connection = _Connection()
    _transaction_begun(connection)  # type: ignore[arg-type]
    _note_writes(connection, None, statement)  # type: ignore[arg-type]
    assert connection.info[_WROTE] is writes


def test_a_rollback_on_a_connection_invalidated_underneath_does_not_fail(app: Flask) -> None:
    _interests()
    db.session.connection().connection.invalidate()
    db.session.rollback()
    db.session.remove()
    assert _interests() == []


def test_select_into_and_several_statements_are_rolled_back_on_postgresql(app: Flask) -> None:
    if not _postgresql(app):
        return  # SQLite has neither SELECT ... INTO nor several statements in one call
    db.session.add(Interest(name="go", key="go"))
    db.session.commit()
    _interests()
    db.session.execute(sa.text("SELECT * INTO copied FROM interest"))
    db.session.rollback()
    copied = db.session.scalar(sa.text("SELECT to_regclass('copied') IS NOT NULL"))
    assert copied is False
    db.session.connection().exec_driver_sql(
        "SELECT 1; INSERT INTO interest (name, key) VALUES ('jazz', 'jazz')"
    )
    db.session.rollback()
    assert _interests() == ["go"]
