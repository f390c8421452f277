"""Database handle, declarative base and engine settings shared by every model."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import functools
import logging
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
log = logging.getLogger(__name__)

# SQLite upgrades a deferred read-then-write transaction to a write lock only when it
# first writes, and in WAL mode that upgrade fails at once under contention instead of
# waiting for busy_timeout. Transactions that will write therefore start with
# BEGIN IMMEDIATE; the web layer and the CLI mark them with this flag.
write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("write_intent", default=False)

SQLITE_BUSY_TIMEOUT_MS = 15_000
ID_MAX = 2**31 - 1  # the largest integer key both SQLite and PostgreSQL store


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark the transactions opened inside this block as write transactions."""
    token = write_intent.set(True)
    try:
        yield
    finally:
        write_intent.reset(token)


def on_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the transaction under way commits; never if it is rolled back.

    For what may only be believed of committed rows (a memo of an id the transaction
    itself inserted would outlive a rollback). Called after a statement of the transaction.
    """
    db.session.info.setdefault(_ON_COMMIT, []).append(callback)


_ON_COMMIT = "rapport.on_commit"


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _run_on_commit(session: sa.orm.Session) -> None:
    # A savepoint's release commits nothing yet: its callbacks wait for the transaction's.
    if not session.in_nested_transaction():
        for callback in session.info.pop(_ON_COMMIT, ()):
            callback()


@sa.event.listens_for(sa.orm.Session, "after_soft_rollback")
def _drop_on_rollback(session: sa.orm.Session, _previous: Any) -> None:
    # Any rollback, a savepoint's too, forgets them all: a callback dropped costs nothing but
    # what it would have saved.
    session.info.pop(_ON_COMMIT, None)


@sa.event.listens_for(sa.orm.Session, "after_transaction_end")
def _drop_at_the_end(session: sa.orm.Session, transaction: sa.orm.SessionTransaction) -> None:
    # However the transaction ended (a commit has run them by now; close(), reset() and a
    # rollback that failed send no rollback event), nothing waits for a later one.
    if transaction.parent is None:
        session.info.pop(_ON_COMMIT, None)


def begin_writing() -> None:
    """End the read transaction this session holds, if any; the next one is a write.

    For a request that reads first and writes last (a check-in): on SQLite the write lock
    is then taken just before the first write and held only until the commit. Nothing has
    been written yet, so ending the read transaction loses nothing.
    """
    db.session.commit()
    write_intent.set(True)


class Turn:
    """The turn to write to one SQLite file: first among this process's threads (a lock),
    then among the processes writing to it (an exclusive lock on a file beside it).

    SQLite lets one writer in at a time and makes the others wait in its busy handler,
    which sleeps up to 100 ms a time between tries: a writer of one server process then
    sleeps on while writers of the others slip in, and some wait for seconds. A writer
    waiting its turn here is woken within a millisecond of the last one's end.
    """

    PAUSE = 0.001  # seconds between two looks at the other processes' lock

    def __init__(self, path: str) -> None:
        self.threads = threading.Lock()
        self.database = path
        self.path = f"{path}-writer"
        self._file: int | None = None
        self._pid = 0

    def locked(self) -> bool:
        """Tell whether a writer of this process holds the turn."""
        return self.threads.locked()

    def acquire(self, timeout: float) -> bool:
        """Wait for the turn, at most `timeout` seconds; tell whether it was given."""
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            return False
        try:
            descriptor = self._descriptor()
            while descriptor is not None:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self.threads.release()
                        return False
                    time.sleep(self.PAUSE)
        except BaseException:
            self.threads.release()
            raise
        return True  # no file to take turns on: the other processes meet in SQLite's wait

    def release(self) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def __del__(self) -> None:
        # No connection holds this turn any more (their engine was disposed): its file goes.
        if self._file is not None and self._pid == os.getpid():
            os.close(self._file)

    def _after_fork(self) -> None:
        """In a forked child: nothing of the parent's turn is the child's (a lock a parent's
        thread held stays locked in the child, and a descriptor shared with the parent would
        share its file lock too)."""
        self.threads = threading.Lock()
        if self._file is not None:
            os.close(self._file)
        self._file, self._pid = None, 0

    def _descriptor(self) -> int | None:
        # A process forked from this one (a server's workers) opens its own: a lock taken
        # through a shared descriptor would be held by both.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            try:
                self._file = self._open()
            except OSError as error:
                log.warning(
                    "writers of %s take turns within each process only: %s", self.path, error
                )
                self._file = None
        return self._file

    def _open(self) -> int:
        """Open the lock file, made as SQLite makes its own beside the database: with the
        database's mode and owner, so that every program that may write the database may
        take the turn, whoever came first."""
        flags = os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            database = os.stat(self.database)
        except OSError:
            database = None
        try:
            created = os.open(self.path, flags | os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            if database is not None:
                os.fchmod(created, database.st_mode & 0o666)
                if os.geteuid() == 0:
                    os.fchown(created, database.st_uid, database.st_gid)
            return created
        try:
            return os.open(self.path, flags | os.O_RDWR)
        except PermissionError:
            # A lock is taken as well through a descriptor that may only read.
            return os.open(self.path, flags | os.O_RDONLY)


class WriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take turns (`Turn`).

    The turn is taken just before BEGIN IMMEDIATE and given back when the transaction ends,
    however it ends (commit, rollback, or the connection closed).
    """

    turn: Turn | None = None
    _holding = False

    def take_turn(self) -> None:
        """Wait for the turn to write to this database (as long as SQLite would)."""
        if self.turn is None:
            return
        if not self.turn.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            # As SQLite says it when its own wait runs out: the app answers "try again".
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
            busy.sqlite_errorname = "SQLITE_BUSY"  # type: ignore[attr-defined]
            raise busy
        self._holding = True

    def give_turn_back(self) -> None:
        if self._holding:
            self._holding = False
            assert self.turn is not None
            self.turn.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_turn_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_turn_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_turn_back()


# Held by the connections of each database file: a turn no connection uses is let go.
_turns: weakref.WeakValueDictionary[str, Turn] = weakref.WeakValueDictionary()
_turns_lock = threading.Lock()


def _turn_for(path: str) -> Turn | None:
    """Return the turn writers of one database file take; None in memory."""
    if not path:
        return None
    with _turns_lock:
        turn = _turns.get(path)
        if turn is None:
            turn = _turns[path] = Turn(path)
        return turn


def _turns_after_fork() -> None:
    for turn in list(_turns.values()):
        turn._after_fork()
    global _turns_lock
    _turns_lock = threading.Lock()


os.register_at_fork(after_in_child=_turns_after_fork)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    if isinstance(dbapi_connection, WriterConnection):
        main = next(
            row for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main"
        )
        dbapi_connection.turn = _turn_for(main[2])
    # Let SQLAlchemy's "begin" hook below emit BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@sa.event.listens_for(sa.engine.Engine, "begin")
def _begin_sqlite(connection: sa.engine.Connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    if not write_intent.get():
        connection.exec_driver_sql("BEGIN")
        return
    dbapi_connection = connection.connection.dbapi_connection
    writer = dbapi_connection if isinstance(dbapi_connection, WriterConnection) else None
    if writer is not None:
        try:
            writer.take_turn()
        except sqlite3.OperationalError as busy:
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, busy) from busy
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if writer is not None:
            writer.give_turn_back()
        raise


# psycopg prepares a statement on a connection once it has run there a few times, which
# spares PostgreSQL parsing and planning it again: for the badge page's suggestions that
# is most of their cost. But psycopg forgets every prepared statement at each ROLLBACK,
# and a request that only read ends its transaction with one. So on psycopg a transaction
# that wrote nothing ends with COMMIT instead, which is the same for the database.
_WROTE = "rapport.wrote"
# Anything but one plain query counts as a write: a savepoint, several statements in one,
# SELECT ... INTO. (A function that writes, called by a SELECT, would not be seen, nor
# anything sent through the driver's connection past the engine: Rapport does neither,
# and must not.)
_WRITES = re.compile(r"\A\s*+(?!SELECT\b)|;|\sINTO\s", re.IGNORECASE)


def end_reads_with_commit(engine: sa.Engine) -> None:
    """On psycopg, end transactions that wrote nothing with COMMIT rather than ROLLBACK."""
    if engine.dialect.driver != "psycopg":
        return
    sa.event.listen(engine, "begin", _transaction_begun)
    sa.event.listen(engine, "before_cursor_execute", _note_writes)
    sa.event.listen(engine, "rollback", _commit_if_read_only)


def _transaction_begun(connection: sa.Connection) -> None:
    connection.info[_WROTE] = False


def _note_writes(connection: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if _WRITES.search(statement):
        connection.info[_WROTE] = True


def _commit_if_read_only(connection: sa.Connection) -> None:
    """Before a rollback: commit instead when the transaction wrote nothing and is healthy;
    psycopg's own rollback then finds no transaction left and sends nothing."""
    if connection.closed or connection.invalidated or connection.info.get(_WROTE, True):
        return
    import psycopg
    from psycopg.pq import TransactionStatus

    driver_connection = connection.connection.driver_connection
    if (
        driver_connection is None
        or driver_connection.info.transaction_status != TransactionStatus.INTRANS
    ):
        return
    # A failed COMMIT fails the same way for the rollback that follows, which then reports
    # it as any other; the server's own reason, which the COMMIT took, is logged here.
    try:
        driver_connection.commit()
    except psycopg.Error as error:
        log.warning("ending a read-only transaction failed: %r", error)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp that is always stored and returned as an aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite has no time zone type; store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite primary result codes that mean the database can't be written just now (busy or
# locked past busy_timeout, read-only, an I/O error, full, or the file can't be opened),
# as opposed to a mistake in a statement.
SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 8, 10, 13, 14})
# PostgreSQL SQLSTATE classes for the same: connection exceptions, insufficient resources
# (disk full, out of memory, too many connections), operator intervention (shutting down,
# starting up), transaction rollback (a deadlock or a serialization failure: the server
# gave this transaction up, nothing of it was written, and the same request would pass
# now); and read_only_sql_transaction.
POSTGRESQL_UNAVAILABLE_CLASSES = frozenset({"08", "40", "53", "57"})
POSTGRESQL_UNAVAILABLE_STATES = frozenset({"25006"})


def database_unavailable(error: BaseException) -> bool:
    """Tell whether an error means the database can't serve us for now, not a bug."""
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        # Extended result codes (SQLITE_READONLY_DBMOVED, ...) carry the primary code
        # in their low byte.
        return code is not None and code & 0xFF in SQLITE_UNAVAILABLE_CODES
    state = getattr(original, "sqlstate", None)
    if state:
        return state[:2] in POSTGRESQL_UNAVAILABLE_CLASSES or state in POSTGRESQL_UNAVAILABLE_STATES
    # psycopg has no SQLSTATE when it never reached the server (refused, timed out, closed).
    return isinstance(error, sa.exc.OperationalError)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def like_anywhere(text: str) -> str:
    """Return a LIKE pattern (escape character "\\") for text anywhere in a value, its
    wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def rows_locked(key: sa.ColumnElement[Any], *where: Any, updating: bool = False) -> list[Any]:
    """Lock the rows that match, in the order of `key`, and return their keys: on
    PostgreSQL FOR UPDATE, or FOR NO KEY UPDATE for rows only about to be updated (SQLite's
    writers take turns anyway)."""
    statement = sa.select(key).where(*where).order_by(key).with_for_update(key_share=updating)
    return list(db.session.scalars(statement))


def insert_ignoring_conflict(
    table: sa.Table, values: dict[str, Any], conflict_columns: list[str], returning: str = "id"
) -> Any:
    """Insert one row unless it clashes with a unique key; return its `returning` column
    (the id by default), or None on clash.

    Duplicates are settled by the database's unique constraint rather than by a
    check-then-insert race, on both SQLite and PostgreSQL.
    """
    statement = _insert_ignoring(table, tuple(values), tuple(conflict_columns), returning)
    return db.session.execute(statement, values).scalar()


@functools.cache
def _insert_ignoring(
    table: sa.Table, columns: tuple[str, ...], conflict: tuple[str, ...], returning: str | None
) -> sa.TextClause:
    """Build, once per shape, the insert-or-ignore both engines speak alike.

    Written as text with typed parameters: SQLAlchemy compiles an ON CONFLICT insert anew on
    every execution (it has no cache key), which was a third of a check-in's time.
    """
    # Names from the models' own tables, never from input.
    text = (
        f"INSERT INTO {_quoted(table.name)} ({', '.join(map(_quoted, columns))}) "  # noqa: S608
        f"VALUES ({', '.join(':' + column for column in columns)}) "
        f"ON CONFLICT ({', '.join(map(_quoted, conflict))}) DO NOTHING"
    )
    statement = sa.text(text + (f" RETURNING {_quoted(returning)}" if returning else ""))
    statement = statement.bindparams(
        *(sa.bindparam(column, type_=table.c[column].type) for column in columns)
    )
    return statement.columns(table.c[returning]) if returning else statement


def _quoted(name: str) -> str:
    return f'"{name}"'


def insert_many_ignoring_conflict(
    table: sa.Table, rows: list[dict[str, Any]], conflict_columns: list[str]
) -> None:
    """Insert rows (all with the same columns) in one statement, skipping those that clash."""
    if rows:
        statement = _insert_ignoring(table, tuple(rows[0]), tuple(conflict_columns), None)
        db.session.execute(statement, rows)
