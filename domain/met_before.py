"""Met before: two people who connected at an earlier event, found again when they meet.

Nothing is copied from one event to the next: it is read from the two people's accepted
connections at earlier events, so a removed connection, a block or a deleted person takes
it away everywhere at once. Each question is one statement however many events came
before (the connection and attendance indexes carry it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.connections import either_way
from domain.db import UTCDateTime, db
from domain.models import (
    Attendance,
    Block,
    Connection,
    ConnectionStatus,
    Event,
    Person,
)
from domain.visibility import Relation, shared_interest_names, visible_fields


@dataclass(frozen=True)
class FirstMeeting:
    """Where and when two people first connected."""

    event_name: str
    on: datetime  # the event's start, in its own time zone

    def since(self, now: datetime | None = None) -> str:
        """Return "Sunday Brunch in March" (with the year when it is not `now`'s)."""
        return f"{self.event_name} in {self._month(now)}"

    def at(self, now: datetime | None = None) -> str:
        """Return "Sunday Brunch, March" (with the year when it is not `now`'s)."""
        return f"{self.event_name}, {self._month(now)}"

    def _month(self, now: datetime | None) -> str:
        same_year = now is not None and now.year == self.on.year
        return self.on.strftime("%B") if same_year else self.on.strftime("%B %Y")


@dataclass(frozen=True)
class MetBefore:
    """Someone here I connected with at an earlier event, as my badge shows them."""

    attendance_id: int  # theirs, at this event
    person_id: int
    name: str
    first: FirstMeeting
    since: str  # "Sunday Brunch in March"
    shared: list[str] = field(default_factory=list)  # interests we share that they show me
    email: str | None = None
    links: list[str] = field(default_factory=list)
    note: str = ""  # my latest note about them


def met_before_here(mine: Attendance, only: int | None = None) -> list[MetBefore]:
    """Return the people at my event I connected with at an earlier one, first met first.

    `only` narrows the answer to one attendance at my event (the badge I just scanned).
    """
    event = mine.event
    rows = db.session.execute(
        _here_statement(),
        {
            "me": mine.person_id,
            "event": event.id,
            "starts": event.starts_at,
            "mine": mine.id,
            "only": only,
        },
    ).all()
    found: dict[int, _Found] = {}
    for connection, me_then, them_then, then, person, them_now in rows:
        seen = found.get(person.id)
        if seen is None:
            first = FirstMeeting(then.name, _local(then, then.starts_at))
            seen = found[person.id] = _Found(person, them_now, them_then, connection, first)
        # Their details as they last chose to share them with me, and my latest note.
        seen.then, seen.connection = them_then, connection
        seen.note = connection.note_of(me_then) or seen.note
    if not found:
        return []
    now = _local(event, event.starts_at)
    shared = shared_interest_names(mine, [seen.now for seen in found.values()])
    return [seen.shown(now, shared[seen.now.id]) for seen in found.values()]


def _local(event: Event, moment: datetime) -> datetime:
    # As events.local_time, which this module can't import: check-in imports this one.
    return moment.astimezone(ZoneInfo(event.timezone))


@dataclass
class _Found:
    """What the rows say of one person, gathered oldest connection first."""

    person: Person
    now: Attendance
    then: Attendance
    connection: Connection
    first: FirstMeeting
    note: str = ""

    def shown(self, now: datetime, shared: list[str]) -> MetBefore:
        details = visible_fields(self.then, Relation.CONNECTION, self.connection)
        interests_shown = "interests" in visible_fields(self.now, Relation.CONNECTION)
        return MetBefore(
            attendance_id=self.now.id,
            person_id=self.person.id,
            name=self.person.name,
            first=self.first,
            since=self.first.since(now),
            shared=shared if interests_shown else [],
            email=self.person.email if "email" in details else None,
            links=list(self.person.links or []) if "links" in details else [],
            note=self.note,
        )


def met_here_before(event: Event, person_id: int) -> list[int]:
    """Return the attendances at an event of the people a person connected with at an
    earlier event: whose "met before" lists change when that person arrives."""
    return list(
        db.session.scalars(
            _arrival_statement(),
            {"me": person_id, "event": event.id, "starts": event.starts_at},
        )
    )


def first_meetings(mine: Attendance, others: list[Attendance]) -> dict[int, FirstMeeting]:
    """Return, by person id, where I first connected with each of `others` before this event."""
    if not others:
        return {}
    rows = db.session.execute(
        _earlier_statement(),
        {
            "me": mine.person_id,
            "event": mine.event_id,
            "starts": mine.event.starts_at,
            "people": sorted({other.person_id for other in others}),
        },
    ).all()
    found: dict[int, FirstMeeting] = {}
    for person_id, name, starts_at, timezone in rows:
        if person_id not in found:
            found[person_id] = FirstMeeting(name, starts_at.astimezone(ZoneInfo(timezone)))
    return found


def _shared_alias(entity: type[Any], name: str) -> Any:
    """Return an alias of `entity` named `name`, safe to share between threads."""
    alias = sa.orm.aliased(entity, name=name)
    # An alias makes its columns, and the index that finds its column for a table's, the
    # first time they are asked for, without a lock: threads asking at once can each make
    # their own, or read a half-made index, and a statement built so cannot read its own
    # rows (NoSuchColumnError, for as long as the process lives). Make both now, at
    # import, before any request thread can see the alias.
    selectable = sa.inspect(alias).selectable
    for column in sa.inspect(entity).columns:
        selectable.corresponding_column(column)
    return alias


# My attendance then, theirs then, and the event then, as every statement here names them.
_ME_THEN = _shared_alias(Attendance, "me_then")
_THEM_THEN = _shared_alias(Attendance, "them_then")
_THEN = _shared_alias(Event, "then")
_THEM_NOW = _shared_alias(Attendance, "them_now")


def _earlier_connections(*columns: Any) -> sa.Select[Any]:
    """Select `columns` of my accepted connections at events that started before this one,
    oldest first, never with someone either of us blocked."""
    their_side = sa.case(
        (Connection.low_attendance_id == _ME_THEN.id, Connection.high_attendance_id),
        else_=Connection.low_attendance_id,
    )
    me = sa.bindparam("me", type_=sa.Integer())
    blocked = sa.select(Block.blocker_person_id).where(
        either_way(Block.blocker_person_id, Block.blocked_person_id, me, _THEM_THEN.person_id)
    )
    return (
        sa.select(*columns)
        .select_from(Connection)
        .join(
            _ME_THEN,
            sa.or_(
                Connection.low_attendance_id == _ME_THEN.id,
                Connection.high_attendance_id == _ME_THEN.id,
            ),
        )
        .join(_THEM_THEN, _THEM_THEN.id == their_side)
        .join(_THEN, _THEN.id == Connection.event_id)
        .where(
            _ME_THEN.person_id == me,
            _THEM_THEN.person_id != me,
            Connection.status == ConnectionStatus.ACCEPTED.value,
            Connection.event_id != sa.bindparam("event", type_=sa.Integer()),
            _THEN.starts_at < sa.bindparam("starts", type_=UTCDateTime()),
            ~blocked.exists(),
        )
        .order_by(_THEN.starts_at, Connection.id)
    )


@functools.cache
def _here_statement() -> sa.Select[Any]:
    mine = sa.bindparam("mine", type_=sa.Integer())
    only = sa.bindparam("only", type_=sa.Integer())
    tonight = sa.orm.aliased(Connection, name="tonight")
    connected_tonight = sa.select(tonight.id).where(
        tonight.status == ConnectionStatus.ACCEPTED.value,
        either_way(tonight.low_attendance_id, tonight.high_attendance_id, mine, _THEM_NOW.id),
    )
    return (
        _earlier_connections(Connection, _ME_THEN, _THEM_THEN, _THEN, Person, _THEM_NOW)
        .join(Person, Person.id == _THEM_THEN.person_id)
        .join(
            _THEM_NOW,
            sa.and_(
                _THEM_NOW.person_id == _THEM_THEN.person_id,
                _THEM_NOW.event_id == sa.bindparam("event", type_=sa.Integer()),
            ),
        )
        .where(
            sa.or_(only.is_(None), _THEM_NOW.id == only),
            # Connected again tonight: they are among my connections here already.
            ~connected_tonight.exists(),
        )
    )


@functools.cache
def _earlier_statement() -> sa.Select[Any]:
    return _earlier_connections(
        _THEM_THEN.person_id, _THEN.name, _THEN.starts_at, _THEN.timezone
    ).where(_THEM_THEN.person_id.in_(sa.bindparam("people", expanding=True)))


@functools.cache
def _arrival_statement() -> sa.Select[Any]:
    return (
        _earlier_connections(_THEM_NOW.id)
        .join(
            _THEM_NOW,
            sa.and_(
                _THEM_NOW.person_id == _THEM_THEN.person_id,
                _THEM_NOW.event_id == sa.bindparam("event", type_=sa.Integer()),
            ),
        )
        .order_by(None)
        .distinct()
    )
