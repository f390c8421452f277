"""Communities: an organiser's recurring series of events, their members and regulars.

A first-timer at an event is someone who came to no earlier event of its community; a
regular has come before. Both are read from attendances, one statement per question
whatever the number of past events (indexed on the event's community and the person).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.db import db, utcnow
from domain.errors import DomainError
from domain.events import local_time
from domain.limits import DESCRIPTION_MAX, NAME_MAX
from domain.models import Attendance, Community, Event, Organiser, Person
from domain.profile import has_control_characters
from domain.versions import communities_changed, events_locked


class CommunityError(DomainError):
    """A community change was refused; `code` is stable, the message is for people."""


def create_community(organiser: Organiser, name: str, description: str = "") -> Community:
    """Start a community for an organiser's recurring events."""
    community = Community(organiser_id=organiser.id, created_at=utcnow())
    _apply(community, name, description)
    db.session.add(community)
    db.session.flush()
    return community


def update_community(community: Community, name: str, description: str = "") -> None:
    """Change a community's name and description."""
    _apply(community, name, description)
    db.session.flush()


def _apply(community: Community, name: str, description: str) -> None:
    name, description = name.strip(), description.strip()
    if not name:
        raise CommunityError("name_missing", "Give the community a name.")
    if len(name) > NAME_MAX or has_control_characters(name):
        raise CommunityError("name_invalid", f"Keep the name to one line of {NAME_MAX} characters.")
    if len(description) > DESCRIPTION_MAX or has_control_characters(
        description, allow_newlines=True
    ):
        raise CommunityError(
            "description_invalid", f"Keep the description to {DESCRIPTION_MAX} characters."
        )
    community.name, community.description = name, description


def communities_of(organiser: Organiser) -> list[Community]:
    """Return an organiser's communities, by name."""
    return list(
        db.session.scalars(
            sa.select(Community)
            .where(Community.organiser_id == organiser.id)
            .order_by(Community.name, Community.id)
        )
    )


def community_of(organiser: Organiser, community_id: int) -> Community | None:
    """Return one of the organiser's communities, or None for anyone else's."""
    return db.session.scalars(
        sa.select(Community).where(
            Community.id == community_id, Community.organiser_id == organiser.id
        )
    ).one_or_none()


def attach_event(community: Community, event: Event) -> None:
    """Make an event part of a community; it may have belonged to another of the organiser's."""
    if event.organiser_id != community.organiser_id:
        raise CommunityError("not_yours", "That event is not one of yours.")
    was = event.community_id
    events_locked(event.id, was, community.id)
    event.community_id = community.id
    db.session.flush()
    _everyone_changed(event, was, community.id)


def detach_event(community: Community, event: Event) -> None:
    """Take an event out of a community; its people and connections stay as they are."""
    if event.community_id == community.id:
        events_locked(event.id, community.id)
        event.community_id = None
        db.session.flush()
        _everyone_changed(event, community.id)


def _everyone_changed(event: Event, *community_ids: int | None) -> None:
    """Move on every page of an event and of the events in the communities it left or
    joined: their newcomers, regulars and first-time marks are counted afresh."""
    communities_changed(*community_ids, also=[event.id])


def attachable_events(community: Community) -> list[Event]:
    """Return the organiser's events that are not in this community, latest first."""
    return list(
        db.session.scalars(
            sa.select(Event)
            .where(
                Event.organiser_id == community.organiser_id,
                sa.or_(Event.community_id.is_(None), Event.community_id != community.id),
            )
            .order_by(Event.starts_at.desc(), Event.id.desc())
        )
    )


# ---------------------------------------------------------------- what the organiser sees


@dataclass(frozen=True)
class CommunityEvent:
    """One event of a community, with how many came and how many were new."""

    event_id: int
    name: str
    starts: datetime  # in the event's time zone
    attendance: int
    first_timers: int


@dataclass(frozen=True)
class Member:
    """Someone who came to at least one of a community's events."""

    name: str
    attended: int


@dataclass(frozen=True)
class Overview:
    """A community's page: its events, and its members within their choices."""

    events: list[CommunityEvent]
    members: list[Member]  # by attendance, most first
    unnamed: int  # members who show no one their profile: counted, never named


def overview(community: Community) -> Overview:
    """Return a community's events with attendance, and its members with their counts.

    A member whose latest check-in in the community shows their profile to no one is
    counted but not named.
    """
    rows = db.session.execute(
        sa.select(
            Attendance.person_id,
            Person.name,
            Attendance.profile_consent_at.is_not(None),
            Event.id,
        )
        .join(Event, Event.id == Attendance.event_id)
        .join(Person, Person.id == Attendance.person_id)
        .where(Event.community_id == community.id)
        .order_by(Event.starts_at, Event.id)
    ).all()
    attended: dict[int, int] = {}
    shown: dict[int, tuple[str, bool]] = {}
    seen_before: set[int] = set()
    per_event: dict[int, list[int]] = {}
    for person_id, name, shows_profile, event_id in rows:
        attended[person_id] = attended.get(person_id, 0) + 1
        shown[person_id] = (name, bool(shows_profile))  # the latest check-in decides
        counts = per_event.setdefault(event_id, [0, 0])
        counts[0] += 1
        if person_id not in seen_before:
            counts[1] += 1
            seen_before.add(person_id)
    events = [
        CommunityEvent(
            event.id,
            event.name,
            local_time(event, event.starts_at),
            *per_event.get(event.id, [0, 0]),
        )
        for event in sorted(community.events, key=lambda e: (e.starts_at, e.id), reverse=True)
    ]
    named = [
        Member(name, attended[person_id])
        for person_id, (name, shows_profile) in shown.items()
        if shows_profile
    ]
    named.sort(key=lambda member: (-member.attended, member.name.casefold()))
    return Overview(events, named, len(shown) - len(named))


# ---------------------------------------------------------------- first-timers and regulars


def came_before(attendance: Any) -> sa.Exists:
    """Return the condition that an attendance's person came to an earlier event of its
    event's community (never true outside a community)."""
    this = sa.orm.aliased(Event)
    past = sa.orm.aliased(Attendance)
    past_event = sa.orm.aliased(Event)
    return (
        sa.select(past.id)
        .join(past_event, past_event.id == past.event_id)
        .join(this, this.id == attendance.event_id)
        .where(
            past.person_id == attendance.person_id,
            past.event_id != attendance.event_id,
            past_event.community_id == this.community_id,
            past_event.starts_at < this.starts_at,
        )
        .exists()
    )


def is_regular(attendance: Attendance) -> bool:
    """Tell whether a person came to an earlier event of this event's community."""
    return bool(
        db.session.scalar(sa.select(came_before(Attendance)).where(Attendance.id == attendance.id))
    )


@dataclass(frozen=True)
class Standing:
    """First-timers and regulars at one event of a community."""

    visits: dict[int, int]  # attendance id -> events of the community attended, this one too
    first_timers: int
    returning: int

    @property
    def return_rate(self) -> int:
        """Return the share of people here who came before, in whole per cent."""
        total = self.first_timers + self.returning
        return round(100 * self.returning / total) if total else 0


def standing(event: Event) -> Standing | None:
    """Return how many community events each person here has come to, or None outside one."""
    if event.community_id is None:
        return None
    past = sa.orm.aliased(Attendance)
    past_event = sa.orm.aliased(Event)
    rows = db.session.execute(
        sa.select(Attendance.id, sa.func.count(past.id))
        .join(past, past.person_id == Attendance.person_id)
        .join(past_event, past_event.id == past.event_id)
        .where(
            Attendance.event_id == event.id,
            past_event.community_id == event.community_id,
            sa.or_(past_event.id == event.id, past_event.starts_at < event.starts_at),
        )
        .group_by(Attendance.id)
    ).all()
    visits = {attendance_id: count for attendance_id, count in rows}
    first_timers = sum(1 for count in visits.values() if count == 1)
    return Standing(visits, first_timers, len(visits) - first_timers)


def upcoming_event(community: Community) -> Event | None:
    """Return the community's next event: the first of its events yet to start."""
    return _first_event_from(community.id, utcnow())


def next_event(event: Event) -> Event | None:
    """Return the community's next event after this one: the first to start after it ends
    that has yet to start. The organiser sets it by adding that event to the community."""
    if event.community_id is None:
        return None
    return _first_event_from(event.community_id, max(event.ends_at, utcnow()))


def _first_event_from(community_id: int, moment: datetime) -> Event | None:
    return db.session.scalars(
        sa.select(Event)
        .where(Event.community_id == community_id, Event.starts_at > moment)
        .order_by(Event.starts_at, Event.id)
        .limit(1)
    ).first()
