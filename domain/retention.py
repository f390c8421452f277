"""Retention: an event's attendee data is purged a set number of days after it ends.

What a person kept by confirming their email stays theirs: their attendance (their profile
at the event, with its interests) and their accepted connections with other people who
confirmed, notes included. Everything else the event holds about people goes: the
attendances of people who never confirmed (and those people, where nothing else is left
of them), connection requests never accepted, and the event's emails and email links.

Deleting an event (its owner's choice) purges it by the same rules, then removes the rest
of the event: every check-in and connection made there, its team and invitations. A person's
own confirmed profile, and what they keep from other events, stay theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from domain import caching
from domain.db import db, rows_locked
from domain.event_state import purge_due_at
from domain.limits import RETENTION_CHOICES
from domain.models import (
    Attendance,
    Connection,
    ConnectionStatus,
    EmailLink,
    Event,
    EventInterest,
    Invitation,
    MessageStatus,
    OutboxMessage,
    Person,
    TeamMember,
    attendance_interest,
)
from domain.versions import (
    attendances_locked,
    attendees_changed,
    communities_changed,
    events_locked,
    met_before_changed,
    met_before_of,
)


@dataclass(frozen=True)
class PurgeCounts:
    """Rows a purge removed, and what it kept for the people who own it."""

    events: int = 0
    attendances: int = 0
    connections: int = 0
    interests: int = 0  # an attendance's link to an interest; the interest names stay
    emails: int = 0
    email_links: int = 0
    people: int = 0
    kept_attendances: int = 0
    kept_connections: int = 0

    def __add__(self, other: PurgeCounts) -> PurgeCounts:
        return PurgeCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


def events_due_for_purge(now: datetime) -> list[Event]:
    """Return the events whose attendee data is due to be purged at `now`, oldest end first."""
    soonest = now - timedelta(days=min(RETENTION_CHOICES))
    candidates = db.session.scalars(
        sa.select(Event)
        .where(Event.purged_at.is_(None), Event.ends_at <= soonest)
        .order_by(Event.ends_at, Event.id)
    )
    return [event for event in candidates if purge_due_at(event) <= now]


def purge_event(event: Event, now: datetime) -> PurgeCounts:
    """Purge an event's attendee data, keeping what people confirmed; return the counts."""
    _take_for_removal(event, counts=False)
    attendances = sa.select(Attendance.id).where(Attendance.event_id == event.id)
    kept = attendances.join(Person, Person.id == Attendance.person_id).where(
        Person.email_confirmed_at.is_not(None)
    )
    gone = attendances.where(Attendance.id.not_in(kept))
    gone_people = list(
        db.session.scalars(
            sa.select(Attendance.person_id)
            .where(Attendance.event_id == event.id)
            .where(Attendance.id.in_(gone))
        )
    )
    # The people who lose a connection here no longer show as met before where they meet.
    met_before_changed(
        *db.session.scalars(
            sa.select(Attendance.person_id).where(
                Attendance.event_id == event.id,
                sa.or_(Attendance.id.in_(gone), Attendance.id.in_(_partners_of(gone))),
            )
        )
    )
    emails = _delete(sa.delete(OutboxMessage).where(OutboxMessage.event_id == event.id))
    email_links = _delete(sa.delete(EmailLink).where(EmailLink.event_id == event.id))
    connections = _delete(
        sa.delete(Connection).where(
            Connection.event_id == event.id,
            sa.or_(
                Connection.status != ConnectionStatus.ACCEPTED.value,
                Connection.low_attendance_id.in_(gone),
                Connection.high_attendance_id.in_(gone),
            ),
        )
    )
    interests = _delete(
        sa.delete(attendance_interest).where(attendance_interest.c.attendance_id.in_(gone))
    )
    removed = _delete(sa.delete(Attendance).where(Attendance.id.in_(gone)))
    # A person who never confirmed and has nothing left anywhere goes too.
    people = _delete(
        sa.delete(Person).where(
            Person.id.in_(gone_people),
            Person.email_confirmed_at.is_(None),
            ~sa.exists().where(Attendance.person_id == Person.id),
        )
    )
    event.purged_at = now
    attendees_changed(event.id)  # the attendee page's counts move on
    db.session.flush()
    return PurgeCounts(
        events=1,
        attendances=removed,
        connections=connections,
        interests=interests,
        emails=emails,
        email_links=email_links,
        people=people,
        kept_attendances=_count(attendances),
        kept_connections=_count(sa.select(Connection.id).where(Connection.event_id == event.id)),
    )


def purge_due(now: datetime) -> PurgeCounts:
    """Purge every event whose retention has run out; return what was removed in all."""
    total = PurgeCounts()
    for event in events_due_for_purge(now):
        total += purge_event(event, now)
    return total


@dataclass(frozen=True)
class DeletionPreview:
    """What deleting an event removes, and what stays with the people who own it."""

    attendances: int
    connections: int
    waiting_emails: int  # not sent yet: they never will be
    team: int  # co-organisers and door staff, and invitations still open
    keeping_profiles: int  # people here who confirmed their address: their profile stays


def deletion_preview(event: Event) -> DeletionPreview:
    """Count what deleting an event would remove, for the page that asks first."""
    confirmed = (
        sa.select(Attendance.id)
        .join(Person, Person.id == Attendance.person_id)
        .where(Attendance.event_id == event.id, Person.email_confirmed_at.is_not(None))
    )
    return DeletionPreview(
        attendances=_count(sa.select(Attendance.id).where(Attendance.event_id == event.id)),
        connections=_count(sa.select(Connection.id).where(Connection.event_id == event.id)),
        waiting_emails=_count(
            sa.select(OutboxMessage.id).where(
                _messages_of(event),
                OutboxMessage.status.in_(_UNSENT),
            )
        ),
        team=_count(sa.select(TeamMember.id).where(TeamMember.event_id == event.id))
        + _count(
            sa.select(Invitation.id).where(
                Invitation.event_id == event.id,
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
        ),
        keeping_profiles=_count(confirmed),
    )


def delete_event(event: Event, now: datetime) -> PurgeCounts:
    """Delete an event for good: purge it as retention would, then remove the rest of it.

    Its emails go with it, sent or not, so a message still waiting never goes out; the
    poster stops working at once. People who confirmed keep their profile and what they
    keep from other events; the event's community carries on without it.
    """
    community_id = event.community_id
    _take_for_removal(event, counts=True)
    here = list(
        db.session.scalars(sa.select(Attendance.person_id).where(Attendance.event_id == event.id))
    )
    # The badges this moves on, in several statements below, are taken first, by id: those
    # showing people here as met before, and those at the community's other events.
    badges = [met_before_of(*here)]
    if community_id is not None:
        badges.append(
            sa.select(Attendance.id)
            .join(Event, Event.id == Attendance.event_id)
            .where(Event.community_id == community_id, Event.id != event.id)
        )
    attendances_locked(sa.union(*badges))
    # Everyone here loses the connections made here: their "met before" lists move on.
    met_before_changed(*here)
    purged = purge_event(event, now)
    # Invitations' emails carry no event of their own.
    emails = _delete(sa.delete(OutboxMessage).where(_messages_of(event)))
    caching.forget_event(event.id, event.checkin_token)
    attendances = _count(sa.select(Attendance.id).where(Attendance.event_id == event.id))
    connections = _count(sa.select(Connection.id).where(Connection.event_id == event.id))
    # The database removes the rest with the event: check-ins, connections, team, invitations.
    db.session.delete(event)
    db.session.flush()
    communities_changed(community_id)  # first-timers and regulars there are counted afresh
    return replace(
        purged,
        attendances=purged.attendances + attendances,
        connections=purged.connections + connections,
        emails=purged.emails + emails,
        kept_attendances=0,
        kept_connections=0,
    )


def _take_for_removal(event: Event, *, counts: bool) -> None:
    """Lock the rows that removing an event's data changes, before changing any, in the
    lock order of domain/versions.py: its interest counts (when it goes for good), its
    connections, then its own row with (when it goes for good) the other events of its
    community. A check-in or a change there meanwhile waits for the removal (and then finds
    the event gone), or the removal waits for it; neither deadlocks."""
    if counts:
        rows_locked(EventInterest.key, EventInterest.event_id == event.id)
    rows_locked(Connection.id, Connection.event_id == event.id)
    events_locked(event.id, event.community_id if counts else None, removal=True)


_UNSENT = (MessageStatus.PENDING.value, MessageStatus.SENDING.value, MessageStatus.UNCERTAIN.value)


def _messages_of(event: Event) -> sa.ColumnElement[bool]:
    """The condition that an email belongs to an event, invitations to its team included."""
    return sa.or_(
        OutboxMessage.event_id == event.id,
        OutboxMessage.invitation_id.in_(
            sa.select(Invitation.id).where(Invitation.event_id == event.id)
        ),
    )


def _delete(statement: sa.Delete) -> int:
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _count(select: sa.Select[tuple[int]]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(select.subquery())) or 0


def _partners_of(attendances: sa.Select[tuple[int]]) -> sa.CompoundSelect:
    """The attendances connected with any of `attendances`."""
    return sa.union(
        sa.select(Connection.high_attendance_id).where(
            Connection.low_attendance_id.in_(attendances)
        ),
        sa.select(Connection.low_attendance_id).where(
            Connection.high_attendance_id.in_(attendances)
        ),
    )
