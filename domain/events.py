"""Events: creating, editing and rotating the poster token."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

import sqlalchemy as sa

from domain import caching
from domain.checkin import WindowState, checkin_window
from domain.db import db, utcnow
from domain.errors import DomainError
from domain.event_state import EventState, event_state, purge_due_at
from domain.followups import update_followup_settings
from domain.limits import (
    CHECKIN_CLOSES_CHOICES,
    CHECKIN_CLOSES_MINUTES_AFTER,
    CHECKIN_OPENS_CHOICES,
    CHECKIN_OPENS_MINUTES_BEFORE,
    RETENTION_CHOICES,
    RETENTION_DAYS,
)
from domain.models import (
    Attendance,
    Community,
    Connection,
    ConnectionStatus,
    Event,
    Organiser,
    TeamMember,
)
from domain.team import PERMISSIONS, ROLE_NAMES, Role, reachable_events
from domain.tokens import new_token
from domain.versions import communities_changed, events_locked, met_before_changed
from domain.words import new_event_word


class EventError(DomainError):
    """An event change was refused; `code` is stable."""


@dataclass(frozen=True)
class EventDetails:
    """What an organiser types about an event; times are wall-clock times in `timezone`."""

    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    venue: str = ""
    description: str = ""
    followup_timing: str = "next_morning"
    nudge_days: int = 7
    checkin_opens_minutes: int = CHECKIN_OPENS_MINUTES_BEFORE
    checkin_closes_minutes: int = CHECKIN_CLOSES_MINUTES_AFTER
    thank_you_note: str = ""
    retention_days: int = RETENTION_DAYS
    community_id: int | None = None  # one of the organiser's communities, or none


def is_timezone(name: str) -> bool:
    """Tell whether a name is an IANA time zone this system knows."""
    return name in known_timezones()


@functools.cache
def known_timezones() -> tuple[str, ...]:
    """Return the IANA time zone names, sorted; read from disk once per process."""
    return tuple(sorted(available_timezones()))


def create_event(organiser: Organiser, details: EventDetails) -> Event:
    """Create an event for an organiser with a fresh poster token and event word."""
    event = Event(
        organiser=organiser,
        checkin_token=new_token(),
        event_word=new_event_word(),
        created_at=utcnow(),
    )
    _apply(event, details)
    db.session.add(event)
    db.session.flush()
    _apply_followups(event, details)
    return event


def update_event(event: Event, details: EventDetails) -> None:
    """Change an event's details; waiting follow-ups move with its end and settings."""
    caching.forget_event(event.id, event.checkin_token)
    was = (event.community_id, event.name, event.starts_at, event.timezone)
    if details.community_id != event.community_id:
        events_locked(event.id, event.community_id, details.community_id)
    _apply(event, details)
    db.session.flush()
    _apply_followups(event, details)
    if event.community_id != was[0]:
        communities_changed(was[0], event.community_id, also=[event.id])
    if (event.name, event.starts_at, event.timezone) != was[1:]:
        # "First met at" names it, on the badges of the people met here, at later events.
        met_before_changed(
            *db.session.scalars(
                sa.select(Attendance.person_id).where(Attendance.event_id == event.id)
            )
        )


def _apply_followups(event: Event, details: EventDetails) -> None:
    try:
        update_followup_settings(
            event, timing=details.followup_timing, nudge_days=details.nudge_days
        )
    except ValueError as error:
        raise EventError("followup_setting") from error


def rotate_poster(event: Event) -> None:
    """Give an event a new poster token and event word; old posters stop working."""
    caching.forget_event(event.id, event.checkin_token)
    event.checkin_token = new_token()
    event.event_word = new_event_word()
    db.session.flush()


def wall_clock_now(timezone: str) -> datetime:
    """Return the wall-clock time now in a time zone, as the event form takes it (no zone)."""
    return utcnow().astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def local_time(event: Event, moment: datetime) -> datetime:
    """Return a UTC moment as wall-clock time in the event's time zone."""
    return moment.astimezone(ZoneInfo(event.timezone))


@dataclass(frozen=True)
class ListedEvent:
    """One event in an organiser's list: its state, local start, counts and purge date, the
    organiser's role there (in words) and what they may do there (action names)."""

    event: Event
    starts: datetime
    state: EventState
    attendees: int
    connections: int
    purge_on: datetime  # when its attendee data is purged, in its own time zone
    role: str = ROLE_NAMES[Role.OWNER]
    can: frozenset[str] = frozenset(action.value for action in PERMISSIONS[Role.OWNER])
    community_id: int | None = None  # the community it belongs to, if any, and its name
    community_name: str = ""


def listed_events(organiser: Organiser, now: datetime) -> list[ListedEvent]:
    """Return the events an organiser owns or helps run, newest first, with their counts and
    the organiser's role, in one query."""
    attendees = (
        sa.select(Attendance.event_id, sa.func.count().label("number"))
        .group_by(Attendance.event_id)
        .subquery()
    )
    connections = (
        sa.select(Connection.event_id, sa.func.count().label("number"))
        .where(Connection.status == ConnectionStatus.ACCEPTED.value)
        .group_by(Connection.event_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            Event,
            sa.func.coalesce(attendees.c.number, 0),
            sa.func.coalesce(connections.c.number, 0),
            TeamMember.role,
            Community.name,
        )
        .outerjoin(attendees, attendees.c.event_id == Event.id)
        .outerjoin(connections, connections.c.event_id == Event.id)
        .outerjoin(
            TeamMember,
            sa.and_(TeamMember.event_id == Event.id, TeamMember.organiser_id == organiser.id),
        )
        .outerjoin(Community, Community.id == Event.community_id)
        .where(reachable_events(organiser))
        .order_by(Event.starts_at.desc(), Event.id.desc())
    )
    listed = []
    for event, people, pairs, member_role, community in rows:
        role = Role.OWNER if event.organiser_id == organiser.id else Role(member_role)
        listed.append(
            ListedEvent(
                event=event,
                starts=local_time(event, event.starts_at),
                state=event_state(event, now),
                attendees=people,
                connections=pairs,
                purge_on=local_time(event, purge_due_at(event)),
                role=ROLE_NAMES[role],
                can=frozenset(action.value for action in PERMISSIONS[role]),
                # A community is its owner's: only they are shown it (and may open it).
                community_id=event.community_id if role == Role.OWNER else None,
                community_name=(community or "") if role == Role.OWNER else "",
            )
        )
    return listed


@dataclass(frozen=True)
class EventOverview:
    """What the event page says of an event: its state, times in its zone, and retention."""

    state: EventState
    checkin: WindowState
    starts: datetime
    ends: datetime
    checkin_opens: datetime
    checkin_closes: datetime
    purge_on: datetime
    purged_at: datetime | None


def event_overview(event: Event, now: datetime) -> EventOverview:
    """Return where an event stands at `now`, with its times in its own time zone."""
    window = checkin_window(event)
    return EventOverview(
        state=event_state(event, now),
        checkin=window.state(now),
        starts=local_time(event, event.starts_at),
        ends=local_time(event, event.ends_at),
        checkin_opens=local_time(event, window.opens_at),
        checkin_closes=local_time(event, window.closes_at),
        purge_on=local_time(event, purge_due_at(event)),
        purged_at=local_time(event, event.purged_at) if event.purged_at else None,
    )


def default_timezone(organiser: Organiser) -> str:
    """Return the time zone a new event starts with: that of the organiser's latest event."""
    latest = db.session.scalar(
        sa.select(Event.timezone)
        .where(Event.organiser_id == organiser.id)
        .order_by(Event.created_at.desc(), Event.id.desc())
        .limit(1)
    )
    return latest if latest and is_timezone(latest) else "UTC"


def event_of(organiser: Organiser, event_id: int) -> Event | None:
    """Return an event the organiser owns, or None for any other id.

    For what only an owner does with their events (their communities); pages of an event go
    through domain/team.py, which lets its team in by role.
    """
    return db.session.scalars(
        sa.select(Event).where(Event.id == event_id, Event.organiser_id == organiser.id)
    ).one_or_none()


def events_of(organiser: Organiser) -> list[Event]:
    """Return an organiser's events, the most recent first."""
    return list(
        db.session.scalars(
            sa.select(Event)
            .where(Event.organiser_id == organiser.id)
            .order_by(Event.starts_at.desc(), Event.id.desc())
        )
    )


def _apply(event: Event, details: EventDetails) -> None:
    if not is_timezone(details.timezone):
        raise EventError("unknown_timezone")
    zone = ZoneInfo(details.timezone)
    starts_at = details.starts_at.replace(tzinfo=zone)
    ends_at = details.ends_at.replace(tzinfo=zone)
    if ends_at <= starts_at:
        raise EventError("ends_before_start")
    if (
        details.checkin_opens_minutes not in CHECKIN_OPENS_CHOICES
        or details.checkin_closes_minutes not in CHECKIN_CLOSES_CHOICES
    ):
        raise EventError("checkin_window")
    if details.retention_days not in RETENTION_CHOICES:
        raise EventError("retention")
    if details.community_id is not None and not _owns_community(
        event.organiser, details.community_id
    ):
        raise EventError("unknown_community")
    event.community_id = details.community_id
    event.name = details.name.strip()
    event.starts_at = starts_at
    event.ends_at = ends_at
    event.timezone = details.timezone
    event.venue = details.venue.strip()
    event.description = details.description.strip()
    event.checkin_opens_minutes = details.checkin_opens_minutes
    event.checkin_closes_minutes = details.checkin_closes_minutes
    event.thank_you_note = details.thank_you_note.strip()
    event.retention_days = details.retention_days


def _owns_community(organiser: Organiser, community_id: int) -> bool:
    # Asked while a new event is being built, before it is in the session.
    with db.session.no_autoflush:
        owned = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Community)
            .where(Community.id == community_id, Community.organiser_id == organiser.id)
        )
    return owned == 1
