"""Suggestions: people at my event I might like to meet, by the interests we share."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import sqlalchemy as sa

from domain.communities import came_before
from domain.connections import either_way, find_connection
from domain.db import db
from domain.limits import SUGGESTION_CANDIDATES, SUGGESTIONS
from domain.models import (
    Attendance,
    Block,
    Connection,
    Interest,
    Person,
    Visibility,
    attendance_interest,
)
from domain.visibility import Relation, my_interest_keys, shown_to


@dataclass(frozen=True)
class Suggestion:
    """Someone here I might like to meet, what we share, and what they tell everyone here.

    `about` is their "about" line when they show it to everyone at the event, else "".
    """

    attendance_id: int
    name: str
    about: str
    shared: list[str]


def suggestions(
    mine: Attendance,
    limit: int = SUGGESTIONS,
    only: int | None = None,
    *,
    newcomers: bool = False,
) -> list[Suggestion]:
    """Return people at my event who share my interests, most shared first.

    Only people who show their interests to everyone here, not connected or asked
    either way, and not blocked either way, among the latest SUGGESTION_CANDIDATES
    arrivals who show them: three queries whose cost does not grow with the crowd.
    `only` narrows the answer to one attendance, to check that it is a suggestion;
    `newcomers` to first-timers at the event's community ("New here tonight").
    """
    ranked = db.session.execute(
        _ranked_statement(only is not None, newcomers),
        {
            "mine": mine.id,
            "person": mine.person_id,
            "event": mine.event_id,
            "only": only,
            "limit": limit,
            "candidates": SUGGESTION_CANDIDATES,
        },
    ).all()
    if not ranked:
        return []
    ids = [row.id for row in ranked]
    people: dict[int, Suggestion] = {}
    for row in db.session.execute(_people_statement(), {"ids": ids, "mine": mine.id}):
        person = people.get(row.id)
        if person is None:
            about = (row.about or "") if shown_to(row.about_visibility, Relation.ATTENDEE) else ""
            person = people[row.id] = Suggestion(row.id, row.name, about, [])
        if row.shared is not None:
            person.shared.append(row.shared)
    # Ranked in one statement, read in another: someone deleted between them is left out.
    return [people[i] for i in ids if i in people]


@functools.cache
def _ranked_statement(narrowed: bool, newcomers: bool) -> sa.Select[tuple[int, int]]:
    """Rank the latest arrivals by the interests they share with mine, built once a process:
    building and keying a statement this size costs more than running it."""
    mine = sa.bindparam("mine", type_=sa.Integer())
    person = sa.bindparam("person", type_=sa.Integer())
    event = sa.bindparam("event", type_=sa.Integer())
    only = sa.bindparam("only", type_=sa.Integer())
    mine_ai = sa.orm.aliased(attendance_interest)
    theirs = sa.orm.aliased(attendance_interest)
    my_interest = sa.orm.aliased(Interest)
    their_interest = sa.orm.aliased(Interest)
    # Interests match on their key: "Marathons" here meets "marathon" there.
    shared = sa.func.count(sa.distinct(their_interest.key)).label("shared")
    connected = sa.select(Connection.id).where(
        either_way(Connection.low_attendance_id, Connection.high_attendance_id, mine, Attendance.id)
    )
    blocked = sa.select(Block.blocker_person_id).where(
        either_way(Block.blocker_person_id, Block.blocked_person_id, person, Attendance.person_id)
    )
    # The latest arrivals who show their interests, found by walking an index: whatever
    # the size of the crowd, the ranking below looks at this many people at most.
    latest = (
        sa.select(Attendance.id)
        .where(
            Attendance.event_id == event,
            Attendance.interests_visibility == Visibility.EVERYONE.value,
            # One person asked about is looked at however long ago they came.
            Attendance.id == only if narrowed else sa.true(),
        )
        .order_by(Attendance.checked_in_at.desc())
        .limit(sa.bindparam("candidates", type_=sa.Integer()))
        .subquery()
    )
    return (
        sa.select(Attendance.id, shared)
        .select_from(latest)
        .join(Attendance, Attendance.id == latest.c.id)
        .join(theirs, theirs.c.attendance_id == Attendance.id)
        .join(their_interest, their_interest.id == theirs.c.interest_id)
        .join(my_interest, my_interest.key == their_interest.key)
        .join(
            mine_ai,
            sa.and_(mine_ai.c.interest_id == my_interest.id, mine_ai.c.attendance_id == mine),
        )
        .where(
            Attendance.event_id == event,
            Attendance.id != mine,
            Attendance.person_id != person,
            Attendance.interests_visibility == Visibility.EVERYONE.value,
            ~connected.exists(),
            ~blocked.exists(),
            Attendance.id == only if narrowed else sa.true(),
            ~came_before(Attendance) if newcomers else sa.true(),
        )
        .group_by(Attendance.id)
        .order_by(shared.desc(), Attendance.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


@functools.cache
def _people_statement() -> sa.Select[tuple[int, str, str, str, str | None]]:
    """The ranked people's names and "about", with the interests they share with mine
    (named as they typed them), a row per interest shared, in one statement: no ORM
    objects are made for people who are only listed."""
    theirs = sa.orm.aliased(attendance_interest)
    return (
        sa.select(
            Attendance.id,
            Person.name,
            Person.about,
            Attendance.about_visibility,
            Interest.name.label("shared"),
        )
        .join(Person, Person.id == Attendance.person_id)
        .outerjoin(theirs, theirs.c.attendance_id == Attendance.id)
        .outerjoin(
            Interest,
            sa.and_(
                Interest.id == theirs.c.interest_id,
                Interest.key.in_(my_interest_keys(sa.bindparam("mine", type_=sa.Integer()))),
            ),
        )
        .where(Attendance.id.in_(sa.bindparam("ids", expanding=True)))
        .order_by(Attendance.id, Interest.key, Interest.name)
    )


def suggested(mine: Attendance, attendance_id: int) -> Attendance | None:
    """Return the attendance if it is one of my suggestions right now, else None.

    Someone already linked with me here (a request either way) is no longer a suggestion,
    but the list on my phone may be a refresh old: they are returned too, so tapping
    "Connect" on someone who has just asked me accepts their request.
    """
    found = suggestions(mine, only=attendance_id)
    other = db.session.get(Attendance, attendance_id)
    if any(s.attendance_id == attendance_id for s in found):
        return other
    if other is None or other.event_id != mine.event_id or other.id == mine.id:
        return None
    return other if find_connection(mine, other) is not None else None
