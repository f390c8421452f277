"""Suggestions: people at my event I might like to meet, by the interests we share."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain.communities import came_before
from domain.connections import either_way
from domain.db import db
from domain.limits import SUGGESTION_CANDIDATES, SUGGESTIONS
from domain.models import (
    Attendance,
    Block,
    Connection,
    Interest,
    Visibility,
    attendance_interest,
)


@dataclass(frozen=True)
class Suggestion:
    """Someone here I might like to meet, and what we share."""

    attendance: Attendance
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
    mine_ai = sa.orm.aliased(attendance_interest)
    theirs = sa.orm.aliased(attendance_interest)
    my_interest = sa.orm.aliased(Interest)
    their_interest = sa.orm.aliased(Interest)
    # Interests match on their key: "Marathons" here meets "marathon" there.
    shared = sa.func.count(sa.distinct(their_interest.key)).label("shared")
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
    # The latest arrivals who show their interests, found by walking an index: whatever
    # the size of the crowd, the ranking below looks at this many people at most.
    latest = (
        sa.select(Attendance.id)
        .where(
            Attendance.event_id == mine.event_id,
            Attendance.interests_visibility == Visibility.EVERYONE.value,
            # One person asked about is looked at however long ago they came.
            Attendance.id == only if only is not None else sa.true(),
        )
        .order_by(Attendance.checked_in_at.desc())
        .limit(SUGGESTION_CANDIDATES)
        .subquery()
    )
    ranked = db.session.execute(
        sa.select(Attendance.id, shared)
        .select_from(latest)
        .join(Attendance, Attendance.id == latest.c.id)
        .join(theirs, theirs.c.attendance_id == Attendance.id)
        .join(their_interest, their_interest.id == theirs.c.interest_id)
        .join(my_interest, my_interest.key == their_interest.key)
        .join(
            mine_ai,
            sa.and_(mine_ai.c.interest_id == my_interest.id, mine_ai.c.attendance_id == mine.id),
        )
        .where(
            Attendance.event_id == mine.event_id,
            Attendance.id != mine.id,
            Attendance.person_id != mine.person_id,
            Attendance.interests_visibility == Visibility.EVERYONE.value,
            ~connected.exists(),
            ~blocked.exists(),
            Attendance.id == only if only is not None else sa.true(),
            ~came_before(Attendance) if newcomers else sa.true(),
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
    my_keys = {interest.key for interest in mine.interests}
    return [
        Suggestion(
            loaded[i],
            [interest.name for interest in loaded[i].interests if interest.key in my_keys],
        )
        for i in ids
    ]


def suggested(mine: Attendance, attendance_id: int) -> Attendance | None:
    """Return the attendance if it is one of my suggestions right now, else None."""
    found = suggestions(mine, only=attendance_id)
    return next((s.attendance for s in found if s.attendance.id == attendance_id), None)
