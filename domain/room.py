"""An event's room as plain data: who came, what each shows the organiser, and who met whom.

The pictures of the room and the connection-health figures are drawn from this, read in
a few queries however many people came.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from domain.db import db
from domain.models import (
    Attendance,
    Block,
    Connection,
    ConnectionStatus,
    Event,
    Interest,
    Person,
    Visibility,
    attendance_interest,
)


@dataclass(frozen=True)
class Guest:
    """One attendee as the organiser's pictures see them."""

    id: int  # the attendance
    person_id: int
    name: str
    arrived: datetime  # aware UTC
    named: bool  # ticked "show my profile": their name may label a picture
    interests: tuple[str, ...]  # the interests they show everyone at the event


@dataclass(frozen=True)
class Room:
    """Everyone at an event, their accepted connections, and who blocked whom."""

    guests: list[Guest]
    pairs: list[tuple[int, int]]  # accepted connections, as (attendance, attendance)
    blocked: set[frozenset[int]] = field(default_factory=set)  # pairs of person ids


def room_of(event: Event) -> Room:
    """Read an event's room: attendees, the interests they show, connections and blocks."""
    rows = db.session.execute(
        sa.select(
            Attendance.id,
            Attendance.person_id,
            Person.name,
            Attendance.checked_in_at,
            Attendance.profile_consent_at.is_not(None),
        )
        .join(Person, Person.id == Attendance.person_id)
        .where(Attendance.event_id == event.id)
        .order_by(Attendance.checked_in_at, Attendance.id)
    ).all()
    shown: dict[int, list[str]] = {}
    # Interests match on their key ("Marathons" and "marathon" are one): each key is named
    # as most people here typed it.
    typed = db.session.execute(
        sa.select(attendance_interest.c.attendance_id, Interest.key, Interest.name)
        .join(Interest, Interest.id == attendance_interest.c.interest_id)
        .join(Attendance, Attendance.id == attendance_interest.c.attendance_id)
        .where(
            Attendance.event_id == event.id,
            # The organiser sees only what a person shows everyone at the event.
            Attendance.interests_visibility == Visibility.EVERYONE.value,
        )
    ).all()
    spellings = Counter((key, name) for _attendance, key, name in typed)
    named_as: dict[str, str] = {}
    for (key, name), _uses in sorted(spellings.items(), key=lambda i: (-i[1], i[0][1])):
        named_as.setdefault(key, name)
    for attendance_id, key, _name in sorted(typed, key=lambda row: named_as[row[1]]):
        names = shown.setdefault(attendance_id, [])
        if named_as[key] not in names:
            names.append(named_as[key])
    guests = [
        Guest(id, person_id, name, arrived, bool(named), tuple(shown.get(id, ())))
        for id, person_id, name, arrived, named in rows
    ]
    pairs = [
        (low, high)
        for low, high in db.session.execute(
            sa.select(Connection.low_attendance_id, Connection.high_attendance_id)
            .where(
                Connection.event_id == event.id,
                Connection.status == ConnectionStatus.ACCEPTED.value,
            )
            .order_by(Connection.id)
        )
    ]
    here = sa.select(Attendance.person_id).where(Attendance.event_id == event.id)
    blocked = {
        frozenset(pair)
        for pair in db.session.execute(
            sa.select(Block.blocker_person_id, Block.blocked_person_id).where(
                Block.blocker_person_id.in_(here), Block.blocked_person_id.in_(here)
            )
        )
    }
    return Room(guests, pairs, blocked)
