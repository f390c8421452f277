"""Connecting at an event: requests, acceptance, blocking, suggestions and who sees what."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain.db import db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.followups import cancel_about_connection, queue_followups
from domain.limits import CONNECTION_REQUESTS_PER_HOUR
from domain.models import (
    NOTE_MAX,
    PROFILE_FIELDS,
    Attendance,
    Block,
    Connection,
    ConnectionStatus,
    Interest,
    Person,
    Visibility,
    attendance_interest,
)
from domain.profile import has_control_characters
from domain.vcard import Card

REQUESTS_PER_HOUR = CONNECTION_REQUESTS_PER_HOUR
SUGGESTIONS = 8


class ConnectError(DomainError):
    """A connection change was refused; `code` is stable."""


class Relation(enum.Enum):
    """What the viewer of a profile is to its owner."""

    SELF = "self"
    CONNECTION = "connection"
    ATTENDEE = "attendee"
    OUTSIDER = "outsider"


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
    statement = sa.select(Connection).where(
        Connection.event_id == a.event_id,
        Connection.low_attendance_id == low,
        Connection.high_attendance_id == high,
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return db.session.scalars(statement).one_or_none()


def is_blocked(a: Attendance, b: Attendance) -> bool:
    """Tell whether either person has blocked the other."""
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Block)
            .where(
                either_way(
                    Block.blocker_person_id, Block.blocked_person_id, a.person_id, b.person_id
                )
            )
        )
        > 0
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
        if requests_in_last_hour(requester) >= REQUESTS_PER_HOUR:
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
            return existing
    if note:
        _set_note(existing, requester, note)
    if existing.status == ConnectionStatus.REQUESTED and existing.requested_by_id != requester.id:
        _accept(existing)
    elif existing.status == ConnectionStatus.DECLINED and existing.requested_by_id != requester.id:
        # The person who said no has changed their mind: both now want it.
        _accept(existing)
    db.session.flush()
    return existing


def accept_connection(mine: Attendance, connection: Connection) -> None:
    """Accept a request someone made to me."""
    _require_party(mine, connection)
    if connection.status == ConnectionStatus.ACCEPTED:
        return
    if connection.requested_by_id == mine.id:
        raise ConnectError("own_request")
    _accept(connection)
    db.session.flush()


def decline_connection(mine: Attendance, connection: Connection) -> None:
    """Decline a request someone made to me; they are not told."""
    _require_party(mine, connection)
    if connection.status == ConnectionStatus.DECLINED:
        return
    if connection.status != ConnectionStatus.REQUESTED or connection.requested_by_id == mine.id:
        raise ConnectError("not_pending")
    connection.status = ConnectionStatus.DECLINED.value
    db.session.flush()


def remove_connection(mine: Attendance, connection: Connection) -> None:
    """Remove a connection or withdraw my request; either of us may ask again later."""
    _require_party(mine, connection)
    cancel_about_connection(connection, "connection_removed")
    db.session.delete(connection)
    db.session.flush()


def block(blocker: Attendance, blocked: Attendance) -> None:
    """Block a person everywhere: no requests, no card, no suggestions, either way."""
    if blocker.person_id == blocked.person_id:
        raise ConnectError("self")
    between = (
        Connection.low_attendance_id.in_(_attendance_ids_of(blocker.person_id, blocked.person_id)),
        Connection.high_attendance_id.in_(_attendance_ids_of(blocker.person_id, blocked.person_id)),
    )
    # As when removing one, the emails waiting about these connections are cancelled.
    for connection in db.session.scalars(sa.select(Connection).where(*between)).all():
        cancel_about_connection(connection, "blocked")
    db.session.execute(sa.delete(Connection).where(*between))
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
    _set_note(connection, mine, clean_note(note))
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
    since = utcnow() - timedelta(hours=1)
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
    rows = db.session.scalars(
        sa.select(Connection)
        .where(
            sa.or_(
                Connection.low_attendance_id == mine.id,
                Connection.high_attendance_id == mine.id,
            )
        )
        .options(
            selectinload(Connection.low).selectinload(Attendance.person),
            selectinload(Connection.high).selectinload(Attendance.person),
            selectinload(Connection.low).selectinload(Attendance.interests),
            selectinload(Connection.high).selectinload(Attendance.interests),
        )
        .order_by(Connection.created_at.desc(), Connection.id.desc())
    ).all()
    incoming = [
        c for c in rows if c.status == ConnectionStatus.REQUESTED and c.requested_by_id != mine.id
    ]
    outgoing = [
        c for c in rows if c.status != ConnectionStatus.ACCEPTED and c.requested_by_id == mine.id
    ]
    accepted = [c for c in rows if c.status == ConnectionStatus.ACCEPTED]
    return MyConnections(incoming, outgoing, accepted)


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


def shared_interest_names(mine: Attendance, others: list[Attendance]) -> dict[int, list[str]]:
    """Return, for each other attendance, the interests it shares with mine, in one query."""
    if not others:
        return {}
    rows = db.session.execute(
        _shared_statement(), {"mine": mine.id, "others": [other.id for other in others]}
    )
    shared: dict[int, list[str]] = {other.id: [] for other in others}
    for attendance_id, name in rows:
        shared[attendance_id].append(name)
    return shared


@functools.cache
def _shared_statement() -> sa.Select[tuple[int, str]]:
    theirs = sa.orm.aliased(attendance_interest)
    ours = sa.orm.aliased(attendance_interest)
    return (
        sa.select(theirs.c.attendance_id, Interest.name)
        .join(
            ours,
            sa.and_(
                ours.c.interest_id == theirs.c.interest_id,
                ours.c.attendance_id == sa.bindparam("mine", type_=sa.Integer()),
            ),
        )
        .join(Interest, Interest.id == theirs.c.interest_id)
        .where(theirs.c.attendance_id.in_(sa.bindparam("others", expanding=True)))
        .order_by(Interest.name)
    )


def relation(owner: Attendance, viewer: Attendance | None) -> Relation:
    """Return what the viewer is to the owner of a profile."""
    return card_for(owner, viewer).relation


@dataclass(frozen=True)
class CardView:
    """What one person sees of another's card: who they are to them, and what is shown."""

    relation: Relation
    connection: Connection | None
    visible: frozenset[str]
    shared: list[str]


def card_for(owner: Attendance, viewer: Attendance | None) -> CardView:
    """Return what the viewer may see of the owner's card, with one look at their connection."""
    if viewer is None or viewer.event_id != owner.event_id:
        return CardView(Relation.OUTSIDER, None, frozenset(), [])
    if viewer.id == owner.id:
        seen_as, connection = Relation.SELF, None
    else:
        connection = find_connection(owner, viewer)
        accepted = connection is not None and connection.accepted
        seen_as = Relation.CONNECTION if accepted else Relation.ATTENDEE
    return CardView(
        seen_as,
        connection,
        visible_fields(owner, seen_as),
        shared_interests(viewer, owner, seen_as),
    )


def can_see(owner: Attendance, field: str, viewer: Relation) -> bool:
    """Tell whether a viewer may see one field of the owner's profile."""
    if viewer is Relation.SELF:
        return True
    setting = getattr(owner, f"{field}_visibility")
    if viewer is Relation.CONNECTION:
        return setting in (Visibility.EVERYONE, Visibility.CONNECTIONS)
    if viewer is Relation.ATTENDEE:
        return setting == Visibility.EVERYONE
    return False


def visible_fields(owner: Attendance, viewer: Relation) -> frozenset[str]:
    """Return the names of the owner's fields the viewer may see."""
    return frozenset(field for field in PROFILE_FIELDS if can_see(owner, field, viewer))


def shared_interests(a: Attendance, b: Attendance, viewer: Relation) -> list[str]:
    """Return the interests two people share, as far as `b` lets the viewer see them."""
    if not can_see(b, "interests", viewer):
        return []
    mine = {interest.name for interest in a.interests}
    return [interest.name for interest in b.interests if interest.name in mine]


@dataclass(frozen=True)
class Suggestion:
    """Someone here I might like to meet, and what we share."""

    attendance: Attendance
    shared: list[str]


def suggestions(
    mine: Attendance, limit: int = SUGGESTIONS, only: int | None = None
) -> list[Suggestion]:
    """Return people at my event who share my interests, most shared first.

    Only people who show their interests to everyone here, not connected or asked
    either way, and not blocked either way. Three queries, however many people came.
    `only` narrows the answer to one attendance, to check that it is a suggestion.
    """
    mine_ai = sa.orm.aliased(attendance_interest)
    theirs = sa.orm.aliased(attendance_interest)
    shared = sa.func.count(theirs.c.interest_id).label("shared")
    connected = sa.select(Connection.id).where(
        either_way(
            Connection.low_attendance_id, Connection.high_attendance_id, mine.id, Attendance.id
        )
    )
    blocked = sa.select(Block.blocker_person_id).where(
        either_way(
            Block.blocker_person_id, Block.blocked_person_id, mine.person_id, Attendance.person_id
        )
    )
    ranked = db.session.execute(
        sa.select(Attendance.id, shared)
        .join(theirs, theirs.c.attendance_id == Attendance.id)
        .join(
            mine_ai,
            sa.and_(
                mine_ai.c.interest_id == theirs.c.interest_id, mine_ai.c.attendance_id == mine.id
            ),
        )
        .where(
            Attendance.event_id == mine.event_id,
            Attendance.id != mine.id,
            Attendance.person_id != mine.person_id,
            Attendance.interests_visibility == Visibility.EVERYONE.value,
            ~connected.exists(),
            ~blocked.exists(),
            Attendance.id == only if only is not None else sa.true(),
        )
        .group_by(Attendance.id)
        .order_by(shared.desc(), Attendance.id.desc())
        .limit(limit)
    ).all()
    if not ranked:
        return []
    ids = [row.id for row in ranked]
    loaded = {
        attendance.id: attendance
        for attendance in db.session.scalars(
            sa.select(Attendance)
            .where(Attendance.id.in_(ids))
            .options(selectinload(Attendance.person), selectinload(Attendance.interests))
        )
    }
    my_tags = {interest.name for interest in mine.interests}
    return [
        Suggestion(
            loaded[i],
            [interest.name for interest in loaded[i].interests if interest.name in my_tags],
        )
        for i in ids
    ]


def contact_card(mine: Attendance, connection: Connection) -> Card:
    """Return the contact details the other side of a connection shares with me."""
    other = connection.other(mine)
    shown = visible_fields(other, Relation.CONNECTION)
    return Card(
        name=other.person.name,
        email=other.person.email if "email" in shown else None,
        urls=list(other.person.links or []) if "links" in shown else [],
        note=f"Met at {mine.event.name}",
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
    connection.status = ConnectionStatus.ACCEPTED.value
    connection.accepted_at = utcnow()
    db.session.flush()
    queue_followups(connection)


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
