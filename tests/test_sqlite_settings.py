"""SQLite settings: the pragmas on every pooled connection, and BEGIN IMMEDIATE for writes.

These tests always run on a SQLite file of their own, also when TEST_DATABASE_URL points
the rest of the suite at PostgreSQL: SQLite is the embedded default and must stay correct.
"""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from domain import db as database
from domain.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    Turn,
    WriterConnection,
    _turn_for,
    database_unavailable,
    db,
    writing,
)
from domain.models import Interest
from tests.conftest import make_config

POOLED_CONNECTIONS = 5
WAIT = 10  # seconds any thread may take before the test calls it stuck


def test_every_pooled_connection_has_the_pragmas(sqlite_app: Flask) -> None:
    with sqlite_app.app_context():
        engine = db.engine
        engine.dispose()  # start from an empty pool: every connection below is new
        connections = [engine.connect() for _ in range(POOLED_CONNECTIONS)]
        try:
            driver_connections = {id(c.connection.driver_connection) for c in connections}
            assert len(driver_connections) == POOLED_CONNECTIONS
            for connection in connections:
                pragma = lambda name, c=connection: c.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
                assert pragma("journal_mode") == "wal"
                assert pragma("foreign_keys") == 1
                assert pragma("busy_timeout") >= 5000
                assert pragma("busy_timeout") == SQLITE_BUSY_TIMEOUT_MS
                assert pragma("synchronous") == 1  # NORMAL
        finally:
            for connection in connections:
                connection.close()

        # Connections handed back to the pool and checked out again keep them too.
        for _ in range(POOLED_CONNECTIONS):
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_foreign_keys_are_enforced(sqlite_app: Flask) -> None:
    with sqlite_app.app_context(), writing():
        with pytest.raises(sa.exc.IntegrityError, match="FOREIGN KEY"):
            db.session.execute(
                sa.text(
                    "INSERT INTO event (organiser_id, name, starts_at, ends_at, timezone, "
                    "venue, description, checkin_token, event_word, created_at) VALUES (999, "
                    "'x', '2030-01-01', '2030-01-01', 'UTC', '', '', 'token', 'word', "
                    "'2030-01-01')"
                )
            )
        db.session.rollback()


def _interest_names(app: Flask) -> set[str]:
    with app.app_context():
        try:
            return set(db.session.scalars(sa.select(Interest.name)))
        finally:
            db.session.remove()


def test_write_transaction_begins_immediate_so_a_second_writer_waits(sqlite_app: Flask) -> None:
    """A writing() transaction holds the write lock from its first statement, even a read.

    With a deferred BEGIN the first transaction would hold only a read snapshot: the
    second writer would get in first and the first one's later write would fail at once
    with "database is locked". With BEGIN IMMEDIATE the second writer waits its turn.
    """
    first_has_read = threading.Event()
    first_may_write = threading.Event()
    second_started = threading.Event()
    second_done = threading.Event()
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with sqlite_app.app_context(), writing():
                db.session.scalar(sa.select(sa.func.count()).select_from(Interest))
                first_has_read.set()
                assert first_may_write.wait(WAIT)
                db.session.add(Interest(name="first"))
                db.session.commit()
        except BaseException as error:  # reported by the main thread
            errors.append(error)
        finally:
            first_has_read.set()
            with sqlite_app.app_context():
                db.session.remove()

    def second_writer() -> None:
        try:
            with sqlite_app.app_context(), writing():
                second_started.set()
                db.session.scalar(sa.select(sa.func.count()).select_from(Interest))
                db.session.add(Interest(name="second"))
                db.session.commit()
                second_done.set()
        except BaseException as error:
            errors.append(error)
        finally:
            second_started.set()
            with sqlite_app.app_context():
                db.session.remove()

    first = threading.Thread(target=first_writer)
    second = threading.Thread(target=second_writer)
    first.start()
    try:
        assert first_has_read.wait(WAIT)
        assert not errors

        # The first transaction has only read, yet it already holds the write lock: a
        # plain connection asking for it with no busy timeout is refused at once.
        probe = sqlite3.connect(
            sa.make_url(sqlite_app.config["DATABASE_URL"]).database,
            timeout=0,
            isolation_level=None,
        )
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                probe.execute("BEGIN IMMEDIATE")
        finally:
            probe.close()

        second.start()
        assert second_started.wait(WAIT)
        # The second writer waits (busy_timeout) instead of failing or overtaking.
        assert not second_done.wait(0.5)
        assert second.is_alive()
        assert not errors
        assert _interest_names(sqlite_app) == set()
    finally:
        first_may_write.set()
        first.join(WAIT)
        if second.is_alive() or second_started.is_set():
            second.join(WAIT)

    assert not first.is_alive() and not second.is_alive()
    assert errors == []
    assert second_done.is_set()
    assert _interest_names(sqlite_app) == {"first", "second"}


def test_deferred_read_then_write_is_what_writing_prevents(sqlite_app: Flask) -> None:
    """The failure BEGIN IMMEDIATE exists for, shown without writing(): locked at once."""
    first_has_read = threading.Event()
    outcome: list[BaseException | None] = []

    def deferred_reader_then_writer() -> None:
        try:
            with sqlite_app.app_context():
                db.session.scalar(sa.select(sa.func.count()).select_from(Interest))
                first_has_read.set()
                assert second_committed.wait(WAIT)
                db.session.add(Interest(name="late"))
                db.session.commit()
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)
        finally:
            first_has_read.set()
            with sqlite_app.app_context():
                db.session.rollback()
                db.session.remove()

    second_committed = threading.Event()
    thread = threading.Thread(target=deferred_reader_then_writer)
    thread.start()
    try:
        assert first_has_read.wait(WAIT)
        with sqlite_app.app_context(), writing():
            db.session.add(Interest(name="early"))
            db.session.commit()
            db.session.remove()
    finally:
        second_committed.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], sa.exc.OperationalError)
    assert "database is locked" in str(outcome[0])
    assert _interest_names(sqlite_app) == {"early"}


def _pool_without_busy_wait(app: Flask, size: int) -> None:
    """Fill the pool with `size` connections whose busy_timeout is 0: any wait for
    SQLite's write lock fails at once with "database is locked"."""
    db.engine.dispose()
    connections = [db.engine.connect() for _ in range(size)]
    for connection in connections:
        connection.exec_driver_sql("PRAGMA busy_timeout=0")
    for connection in connections:
        connection.close()


def test_writers_of_one_process_take_turns_without_sqlites_busy_wait(sqlite_app: Flask) -> None:
    """Threads of one server process queue for the write lock among themselves.

    SQLite's own busy handler sleeps between retries, so under load some writers wait for
    seconds while newer ones slip in. Here SQLite may not wait at all (busy_timeout 0): a
    writer that met another inside SQLite would fail at once. None does: they take turns
    on the process's lock before BEGIN IMMEDIATE.
    """
    threads, each = POOLED_CONNECTIONS, 40
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(number: int) -> None:
        try:
            start.wait(WAIT)
            for n in range(each):
                with sqlite_app.app_context(), writing():
                    db.session.add(Interest(name=f"writer {number} row {n}"))
                    db.session.commit()
                    db.session.remove()
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    with sqlite_app.app_context():
        _pool_without_busy_wait(sqlite_app, POOLED_CONNECTIONS)
    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT * 3)
    assert not any(worker.is_alive() for worker in workers)
    assert errors == []
    assert len(_interest_names(sqlite_app)) == threads * each


def test_the_turn_to_write_is_given_back_however_a_transaction_ends(sqlite_app: Flask) -> None:
    def turn_taken() -> bool:
        writer = db.session.connection().connection.dbapi_connection
        assert isinstance(writer, WriterConnection) and writer.turn is not None
        return writer.turn.locked()

    with sqlite_app.app_context():
        with writing():
            db.session.add(Interest(name="kept"))
            db.session.flush()
            assert turn_taken()
            db.session.commit()
        with writing():
            db.session.add(Interest(name="dropped"))
            db.session.flush()
            db.session.rollback()
        with writing():
            db.session.add(Interest(name="kept"))  # the name is unique
            with pytest.raises(sa.exc.IntegrityError):
                db.session.flush()
            db.session.rollback()
        db.session.remove()
        assert not _turn_of(sqlite_app).locked()
        assert _other_process_could_write(_turn_of(sqlite_app))

        # SQLite itself refuses the write lock (another program holds it): the turn goes
        # back with the error.
        _pool_without_busy_wait(sqlite_app, 1)
        other = sqlite3.connect(
            sa.make_url(sqlite_app.config["DATABASE_URL"]).database, isolation_level=None
        )
        try:
            other.execute("BEGIN IMMEDIATE")
            with writing(), pytest.raises(sa.exc.OperationalError, match="database is locked"):
                db.session.execute(sa.select(sa.literal(1)))
            db.session.rollback()
            assert not _turn_of(sqlite_app).locked()
            assert _other_process_could_write(_turn_of(sqlite_app))
        finally:
            other.close()
            db.session.remove()
    assert _interest_names(sqlite_app) == {"kept"}


def _turn_of(app: Flask) -> Turn:
    turn = _turn_for(sa.make_url(app.config["DATABASE_URL"]).database)
    assert turn is not None
    return turn


def _other_process_could_write(turn: Turn) -> bool:
    """Tell whether another process could take the turn now (a lock of its own on the file)."""
    other = os.open(turn.path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(other)
    return True


def _write_rows(database_file: str, number: int, rows: int, start: Any) -> None:
    """In a process of its own: add `rows` interests, SQLite forbidden to wait at all."""
    tmp_path = Path(database_file).parent
    app = create_app(make_config(tmp_path, DATABASE_URL=f"sqlite:///{database_file}"))
    with app.app_context():
        _pool_without_busy_wait(app, 2)
        start.wait(WAIT * 3)  # every process writes at the same time
        for n in range(rows):
            with writing():
                db.session.add(Interest(name=f"process {number} row {n}"))
                db.session.commit()
            db.session.remove()


def test_writers_of_several_processes_take_turns_without_sqlites_busy_wait(
    sqlite_app: Flask,
) -> None:
    """Server processes queue for the write lock on a file beside the database, which wakes
    the next writer at once; none meets SQLite's sleeping busy handler (here forbidden to
    wait: a writer that met another inside SQLite would fail)."""
    database_file = sa.make_url(sqlite_app.config["DATABASE_URL"]).database
    processes, rows = 3, 200
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(processes)
    children = [
        spawn.Process(target=_write_rows, args=(database_file, n, rows, start))
        for n in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(WAIT * 6)
    assert [child.exitcode for child in children] == [0] * processes
    assert len(_interest_names(sqlite_app)) == processes * rows


def test_a_held_turn_makes_another_writer_wait_no_longer_than_sqlite_would(
    sqlite_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 300)
    turn = _turn_of(sqlite_app)
    other = os.open(turn.path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)  # another process is writing
        with sqlite_app.app_context():
            with (
                writing(),
                pytest.raises(sa.exc.OperationalError, match="database is locked") as busy,
            ):
                db.session.add(Interest(name="waited"))
                db.session.flush()
            # As when SQLite's own wait runs out: the app answers 503, try again.
            assert database_unavailable(busy.value)
            db.session.rollback()
            assert not turn.locked()
            db.session.remove()
        fcntl.flock(other, fcntl.LOCK_UN)
        with sqlite_app.app_context(), writing():
            db.session.add(Interest(name="written"))
            db.session.commit()
            db.session.remove()
    finally:
        os.close(other)
    assert _interest_names(sqlite_app) == {"written"}


def test_a_forked_process_takes_the_turn_through_its_own_file(tmp_path: Path) -> None:
    """A process forked while one of its threads holds the turn (a server forking its
    workers): the child starts with a turn of its own, and a lock taken through the
    parent's descriptor would be held by both, so the child must wait for the parent."""
    turn = _turn_for(str(tmp_path / "forked.sqlite"))
    assert turn is not None and turn.acquire(1)
    child = os.fork()
    if child == 0:
        waited = turn.acquire(0.2)  # the parent still holds it: the child waits, then fails
        os._exit(0 if waited is False and not turn.locked() else 1)
    _, status = os.waitpid(child, 0)
    turn.release()
    assert os.waitstatus_to_exitcode(status) == 0


def _lock_files_open(under: Path) -> list[str]:
    descriptors = Path("/proc/self/fd")
    return [
        target
        for target in (os.readlink(fd) for fd in descriptors.iterdir() if fd.exists())
        if target.endswith("-writer") and target.startswith(str(under))
    ]


def test_a_database_no_longer_used_lets_its_lock_file_go(tmp_path: Path) -> None:
    """A process that opens many databases in turn (the tests) keeps no lock file open for
    those whose engines were disposed."""
    for n in range(3):
        url = f"sqlite:///{tmp_path / f'db{n}.sqlite'}"
        app = create_app(make_config(tmp_path, DATABASE_URL=url))
        with app.app_context():
            db.create_all()
            with writing():
                db.session.add(Interest(name="kept"))
                db.session.commit()
            assert _lock_files_open(tmp_path) == [f"{tmp_path / f'db{n}.sqlite'}-writer"]
            db.session.remove()
            db.engine.dispose()
        del app
        gc.collect()
        assert _lock_files_open(tmp_path) == []


def test_without_a_file_to_take_turns_on_writers_still_write(tmp_path: Path) -> None:
    """A lock file that can't be made (say, a directory that became read-only) leaves the
    processes to SQLite's own wait, as before: the turn is still taken and given back."""
    turn = Turn(str(tmp_path / "missing" / "rapport.sqlite"))
    assert turn.acquire(1)
    assert turn.locked()
    turn.release()
    assert not turn.locked()


def test_the_lock_file_is_made_as_sqlite_makes_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database's mode: a program of the database's group, which may write it, may
    take the turn too; and a lock file it may only read still gives the turn."""
    database = tmp_path / "shared.sqlite"
    database.touch()
    database.chmod(0o660)
    first = Turn(str(database))
    assert first.acquire(1)
    first.release()
    assert (Path(first.path).stat().st_mode & 0o777) == 0o660

    # Another program, which may only read the lock file someone else made.
    opened = os.open

    def only_reading(path: str, flags: int, *args: int) -> int:
        if path == first.path and flags & os.O_EXCL:
            raise FileExistsError(17, "File exists", path)
        if path == first.path and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(13, "Permission denied", path)
        return opened(path, flags, *args)

    monkeypatch.setattr(os, "open", only_reading)
    second = Turn(str(database))
    assert second.acquire(1)
    monkeypatch.setattr(os, "open", opened)
    assert not _other_process_could_write(second)  # its lock holds all the same
    second.release()
    assert _other_process_could_write(second)
