"""Connecting at an event: requests, acceptance, declining, removing, blocking and notes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain.db import db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.followups import cancel_about_connection, queue_followups
from domain.limits import CONNECTION_REQUESTS_PER_HOUR, CONNECTION_REQUESTS_WINDOW, NOTE_MAX
from domain.models import (
    Attendance,
    Block,
    Connection,
    ConnectionStatus,
    Person,
)
from domain.profile import has_control_characters
from domain.versions import (
    attendee_pages_move_on,
    attendees_changed,
    badge_changed,
    badges_moved_on,
    met_before_of,
)


class ConnectError(DomainError):
    """A connection change was refused; `code` is stable."""


def either_way(left: Any, right: Any, one: Any, other: Any) -> sa.ColumnElement[bool]:
    """Return the condition that a pair of columns holds two values, in either order."""
    return sa.or_(sa.and_(left == one, right == other), sa.and_(left == other, right == one))


def ordered(a: Attendance, b: Attendance) -> tuple[int, int]:
    """Return the pair's attendance ids, low first, as the table stores them."""
    return (a.id, b.id) if a.id < b.id else (b.id, a.id)


def find_connection(a: Attendance, b: Attendance, *, lock: bool = False) -> Connection | None:
    """Return the connection row between two attendances, whatever its state.

    With `lock`, the row is locked until the transaction ends (FOR UPDATE on PostgreSQL;
    SQLite's write transaction already holds the database), for a change about to be made.
    """
    low, high = ordered(a, b)
    pair = {"event": a.event_id, "low": low, "high": high}
    return db.session.scalars(_pair_statement(lock), pair).one_or_none()


@functools.cache
def _pair_statement(lock: bool) -> sa.Select[tuple[Connection]]:
    # Built once: every card and connection request looks the pair up.
    statement = sa.select(Connection).where(
        Connection.event_id == sa.bindparam("event", type_=sa.Integer()),
        Connection.low_attendance_id == sa.bindparam("low", type_=sa.Integer()),
        Connection.high_attendance_id == sa.bindparam("high", type_=sa.Integer()),
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return statement


def is_blocked(a: Attendance, b: Attendance) -> bool:
    """Tell whether either person has blocked the other."""
    found = db.session.scalar(_blocked_statement(), {"a": a.person_id, "b": b.person_id})
    return (found or 0) > 0


@functools.cache
def _blocked_statement() -> sa.Select[tuple[int]]:
    # Built once: every card and connection request asks it.
    return (
        sa.select(sa.func.count())
        .select_from(Block)
        .where(
            either_way(
                Block.blocker_person_id,
                Block.blocked_person_id,
                sa.bindparam("a", type_=sa.Integer()),
                sa.bindparam("b", type_=sa.Integer()),
            )
        )
    )


def request_connection(requester: Attendance, target: Attendance, note: str = "") -> Connection:
    """Ask to connect; if the other person already asked, the two become connected.

    A repeated request changes nothing. Duplicates are settled by the pair's unique
    constraint, so two phones scanning each other at the same moment make one row.
    """
    note = clean_note(note)
    if requester.id == target.id or requester.person_id == target.person_id:
        raise ConnectError("self")
    if requester.event_id != target.event_id:
        raise ConnectError("other_event")
    if is_blocked(requester, target):
        raise ConnectError("blocked")
    existing = find_connection(requester, target, lock=True)
    if existing is None:
        if requests_in_last_hour(requester) >= CONNECTION_REQUESTS_PER_HOUR:
            raise ConnectError("rate_limited")
        low, high = ordered(requester, target)
        insert_ignoring_conflict(
            Connection.__table__,
            {
                "event_id": requester.event_id,
                "low_attendance_id": low,
                "high_attendance_id": high,
                "requested_by_id": requester.id,
                "status": ConnectionStatus.REQUESTED.value,
                "low_note": note if requester.id == low else "",
                "high_note": note if requester.id == high else "",
                "created_at": utcnow(),
            },
            ["event_id", "low_attendance_id", "high_attendance_id"],
        )
        existing = find_connection(requester, target, lock=True)
        assert existing is not None
        if existing.requested_by_id == requester.id and existing.status == "requested":
            badge_changed(requester.id, target.id)
            return existing
    if note:
        _set_note(existing, requester, note)
    if existing.status == ConnectionStatus.REQUESTED and existing.requested_by_id != requester.id:
        _accept(existing)
    elif existing.status == ConnectionStatus.DECLINED and existing.requested_by_id != requester.id:
        # The person who said no has changed their mind: both now want it.
        _accept(existing)
    elif note:
        badge_changed(requester.id)
    db.session.flush()
    return existing


def accept_connection(mine: Attendance, connection: Connection) -> None:
    """Accept a request someone made to me."""
    _require_party(mine, connection)
    _lock(connection)
    if connection.status == ConnectionStatus.ACCEPTED:
        return
    if connection.requested_by_id == mine.id:
        raise ConnectError("own_request")
    _accept(connection)
    db.session.flush()


def decline_connection(mine: Attendance, connection: Connection) -> None:
    """Decline a request someone made to me; they are not told."""
    _require_party(mine, connection)
    _lock(connection)
    if connection.status == ConnectionStatus.DECLINED:
        return
    if connection.status != ConnectionStatus.REQUESTED or connection.requested_by_id == mine.id:
        raise ConnectError("not_pending")
    connection.status = ConnectionStatus.DECLINED.value
    # The one who asked is not told: their page stays as it was.
    badge_changed(mine.id)
    db.session.flush()


def remove_connection(mine: Attendance, connection: Connection) -> None:
    """Remove a connection or withdraw my request; either of us may ask again later."""
    _require_party(mine, connection)
    if not locked(Connection.id == connection.id):
        return  # removed a moment ago, by either of us
    cancel_about_connection(connection, "connection_removed")
    _gone(connection)
    db.session.delete(connection)
    db.session.flush()


def remove_person(person_id: int, other_person_id: int) -> int:
    """Remove every connection between two people, at every event, without blocking: they
    no longer show as met before, and either may ask again later. Return how many went."""
    if person_id == other_person_id:
        raise ConnectError("self")
    pair = _attendance_ids_of(person_id, other_person_id)
    between = (Connection.low_attendance_id.in_(pair), Connection.high_attendance_id.in_(pair))
    found = locked(*between)
    for connection in found:
        cancel_about_connection(connection, "connection_removed")
    _gone(*found)
    db.session.execute(sa.delete(Connection).where(*between))
    db.session.flush()
    return len(found)


def block(blocker: Attendance, blocked: Attendance) -> None:
    """Block a person everywhere: no requests, no card, no suggestions, either way."""
    if blocker.person_id == blocked.person_id:
        raise ConnectError("self")
    between = (
        Connection.low_attendance_id.in_(_attendance_ids_of(blocker.person_id, blocked.person_id)),
        Connection.high_attendance_id.in_(_attendance_ids_of(blocker.person_id, blocked.person_id)),
    )
    # As when removing one, the emails waiting about these connections are cancelled.
    found = locked(*between)
    if not db.session.scalar(_still_here(), {"id": blocked.person_id}):
        raise ConnectError("gone")  # they erased themselves meanwhile: no one to block
    for connection in found:
        cancel_about_connection(connection, "blocked")
    _gone(*found)
    db.session.execute(sa.delete(Connection).where(*between))
    # Each leaves the other's suggestions.
    badge_changed(blocker.id, blocked.id)
    # Insert-or-ignore: two taps (or two people) blocking at once must not clash on the key.
    insert_ignoring_conflict(
        Block.__table__,
        {
            "blocker_person_id": blocker.person_id,
            "blocked_person_id": blocked.person_id,
            "created_at": utcnow(),
        },
        ["blocker_person_id", "blocked_person_id"],
        returning="blocker_person_id",
    )
    db.session.flush()


def set_note(mine: Attendance, connection: Connection, note: str) -> None:
    """Change my private note about a connection."""
    _require_party(mine, connection)
    _lock(connection)
    _set_note(connection, mine, clean_note(note))
    badge_changed(*_attendances_everywhere(mine.id))
    db.session.flush()


def share_email(mine: Attendance, connection: Connection, share: bool) -> None:
    """Show my email to one connection, or stop, whatever my event-wide choice."""
    _require_party(mine, connection)
    _lock(connection)
    if not connection.accepted:
        raise ConnectError("not_connected")
    if mine.id == connection.low_attendance_id:
        connection.low_shares_email = share
    else:
        connection.high_shares_email = share
    # The other sees my email (or no longer), and my badge offers the other choice; so do
    # the pages where they see me as met before.
    badges_moved_on(_pair(connection), met_before_of(mine.person_id))
    db.session.flush()


def clean_note(note: str) -> str:
    """Return a note trimmed; raise ConnectError if it is too long or has control codes."""
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ConnectError("note_too_long")
    if has_control_characters(note, allow_newlines=True):
        raise ConnectError("note_control")
    return note


def requests_in_last_hour(requester: Attendance) -> int:
    """Count the new requests this person made in the last hour, at any event."""
    since = utcnow() - CONNECTION_REQUESTS_WINDOW
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Connection)
            .join(Attendance, Attendance.id == Connection.requested_by_id)
            .where(Attendance.person_id == requester.person_id, Connection.created_at >= since)
        )
        or 0
    )


def connection_of(mine: Attendance, connection_id: int) -> Connection | None:
    """Return one of my connections by id, or None if it is not mine."""
    return db.session.scalars(
        sa.select(Connection).where(
            Connection.id == connection_id,
            sa.or_(
                Connection.low_attendance_id == mine.id,
                Connection.high_attendance_id == mine.id,
            ),
        )
    ).one_or_none()


@dataclass(frozen=True)
class MyConnections:
    """What my badge page lists: requests to me, my pending requests, my connections."""

    incoming: list[Connection]
    outgoing: list[Connection]
    accepted: list[Connection]


def connections_of(mine: Attendance) -> MyConnections:
    """Return my connections at this event, newest first, with both sides loaded."""
    rows = db.session.scalars(_mine_statement(), {"mine": mine.id}).all()
    incoming = [
        c for c in rows if c.status == ConnectionStatus.REQUESTED and c.requested_by_id != mine.id
    ]
    outgoing = [
        c for c in rows if c.status != ConnectionStatus.ACCEPTED and c.requested_by_id == mine.id
    ]
    accepted = [c for c in rows if c.status == ConnectionStatus.ACCEPTED]
    return MyConnections(incoming, outgoing, accepted)


@functools.cache
def _mine_statement() -> sa.Select[tuple[Connection]]:
    # Built once: every badge page and its refresh run it.
    mine = sa.bindparam("mine", type_=sa.Integer())
    return (
        sa.select(Connection)
        .where(sa.or_(Connection.low_attendance_id == mine, Connection.high_attendance_id == mine))
        .options(
            selectinload(Connection.low).selectinload(Attendance.person),
            selectinload(Connection.high).selectinload(Attendance.person),
            selectinload(Connection.low).selectinload(Attendance.interests),
            selectinload(Connection.high).selectinload(Attendance.interests),
        )
        .order_by(Connection.created_at.desc(), Connection.id.desc())
    )


def accepted_connections(mine: Attendance) -> list[Connection]:
    """Return my accepted connections, oldest first, with the other people loaded too.

    One query: the other side's attendance and person come back in the same rows, so
    `connection.other(mine)` finds them without asking the database again.
    """
    rows = db.session.execute(_accepted_statement(), {"mine": mine.id})
    return [connection for connection, _attendance, _person in rows]


@functools.cache
def _accepted_statement() -> sa.Select[tuple[Connection, Attendance, Person]]:
    mine = sa.bindparam("mine", type_=sa.Integer())
    other_side = sa.case(
        (Connection.low_attendance_id == mine, Connection.high_attendance_id),
        else_=Connection.low_attendance_id,
    )
    return (
        sa.select(Connection, Attendance, Person)
        .join(Attendance, Attendance.id == other_side)
        .join(Person, Person.id == Attendance.person_id)
        .where(
            Connection.status == ConnectionStatus.ACCEPTED.value,
            sa.or_(Connection.low_attendance_id == mine, Connection.high_attendance_id == mine),
        )
        .order_by(Connection.accepted_at, Connection.id)
    )


def connection_counts(event_id: int) -> dict[int, int]:
    """Return each attendance's number of accepted connections at an event."""
    counts: dict[int, int] = {}
    rows = db.session.execute(
        sa.select(Connection.low_attendance_id, Connection.high_attendance_id).where(
            Connection.event_id == event_id, Connection.status == ConnectionStatus.ACCEPTED.value
        )
    )
    for low, high in rows:
        counts[low] = counts.get(low, 0) + 1
        counts[high] = counts.get(high, 0) + 1
    return counts


def _accept(connection: Connection) -> None:
    """Make a request a connection: its row, then its event's attendee page, then the two
    badges (the lock order of domain/versions.py)."""
    connection.status = ConnectionStatus.ACCEPTED.value
    connection.accepted_at = utcnow()
    db.session.flush()
    queue_followups(connection)
    attendees_changed(connection.event_id, *_pair(connection))
    badge_changed(*_pair(connection))


def _lock(connection: Connection) -> None:
    """Lock a connection before changing it, as read now; raise ConnectError("gone") if it
    was removed meanwhile."""
    if not locked(Connection.id == connection.id, updating=True):
        raise ConnectError("gone")


def locked(*where: sa.ColumnElement[bool], updating: bool = False) -> list[Connection]:
    """Return the connections that match, locked (in the order of their ids) before anything
    else their change or removal writes, as read now: for an update of theirs, or (by
    default) for their removal."""
    return list(
        db.session.scalars(
            sa.select(Connection)
            .where(*where)
            .order_by(Connection.id)
            .with_for_update(key_share=updating)
            .execution_options(populate_existing=True)
        )
    )


def _gone(*connections: Connection) -> None:
    """Move on the pages that showed these connections (or requests), about to be deleted:
    the attendee pages of the events where they were made, then the badges."""
    accepted: dict[int, list[int]] = {}
    for connection in connections:
        if connection.status == ConnectionStatus.ACCEPTED:
            accepted.setdefault(connection.event_id, []).extend(_pair(connection))
    marked = attendee_pages_move_on(accepted)
    # Every badge in one statement, in the order of ids; the lines marked are among them.
    badge_changed(
        *(attendance_id for connection in connections for attendance_id in _pair(connection)),
        *_attendances_everywhere(*(ids for pairs in accepted.values() for ids in pairs)),
    )
    marked()


@functools.cache
def _still_here() -> sa.Select[tuple[int]]:
    # FOR KEY SHARE: the block about to refer to them waits for an erasure under way.
    return (
        sa.select(Person.id)
        .where(Person.id == sa.bindparam("id", type_=sa.Integer()))
        .with_for_update(read=True, key_share=True)
    )


def _pair(connection: Connection) -> tuple[int, int]:
    return (connection.low_attendance_id, connection.high_attendance_id)


def _attendances_everywhere(*attendance_ids: int) -> list[int]:
    """Return the check-ins, at every event, of the people with these: a connection of theirs
    shows as "met before" at the events after its own (domain/met_before.py)."""
    if not attendance_ids:
        return []
    people = sa.select(Attendance.person_id).where(Attendance.id.in_(attendance_ids))
    return list(
        db.session.scalars(sa.select(Attendance.id).where(Attendance.person_id.in_(people)))
    )


def _set_note(connection: Connection, mine: Attendance, note: str) -> None:
    if mine.id == connection.low_attendance_id:
        connection.low_note = note
    else:
        connection.high_note = note


def _require_party(mine: Attendance, connection: Connection) -> None:
    if mine.id not in (connection.low_attendance_id, connection.high_attendance_id):
        raise ConnectError("not_yours")


def _attendance_ids_of(*person_ids: int) -> sa.Select[tuple[int]]:
    return sa.select(Attendance.id).where(Attendance.person_id.in_(person_ids))
