"""What follow-up email a change causes, and when it falls due.

Every function here only adds outbox rows in the caller's transaction: the email goes out
if and only if the change that caused it is committed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain import caching, limits
from domain.db import db, utcnow
from domain.limits import CONFIRMATION_EVERY, SIGN_IN_EVERY
from domain.models import (
    Attendance,
    Connection,
    ConnectionStatus,
    Event,
    MessageStatus,
    OutboxMessage,
    Person,
)
from domain.outbox import HELD_UNCONFIRMED, cancel_waiting, enqueue, enqueue_row
from domain.profile import mask_email

FOLLOWUP_TIMINGS = ("next_morning", "at_end")
NUDGE_CHOICES = (0, 7, 14, 30)
MORNING = time(9, 0)
# Kinds that follow up a relationship: only for confirmed, consenting, unsuppressed people.
FOLLOWUP_KINDS = ("digest", "connection", "nudge")


def followup_time(event: Event, ends_at: datetime | None = None) -> datetime:
    """Return when an event's digest falls due, as an aware UTC time.

    "The morning after" is the first 09:00, in the event's time zone, that comes a night's
    rest after the end: the same day for a party that ends at 02:00, the next for a dinner.
    `ends_at` asks what it would be if the event ended then instead.
    """
    ends_at = ends_at or event.ends_at
    if event.followup_timing == "at_end":
        return ends_at
    zone = ZoneInfo(event.timezone)
    ended = ends_at.astimezone(zone)
    morning = datetime.combine(ended.date(), MORNING, tzinfo=zone)
    if morning - ended < limits.MORNING_AFTER_REST:
        morning = datetime.combine(ended.date() + timedelta(days=1), MORNING, tzinfo=zone)
    return morning.astimezone(ZoneInfo("UTC"))


def request_confirmation(person: Person, event: Event | None) -> OutboxMessage | None:
    """Queue the email that asks a person to confirm their address, at most once a day.

    An address never confirmed gets a few in all, however long someone keeps asking.
    """
    now = utcnow()
    asked = (
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.person_id == person.id, OutboxMessage.kind == "confirm")
    )
    if db.session.scalar(asked.where(OutboxMessage.created_at > now - CONFIRMATION_EVERY)):
        return None
    if (
        person.email_confirmed_at is None
        and db.session.scalar(asked) >= limits.CONFIRMATIONS_UNCONFIRMED
    ):
        return None
    return enqueue(
        kind="confirm",
        dedupe_key=_confirmation_key(person.id, now),
        person=person,
        event=event,
        send_after=now,
    )


@dataclass(frozen=True)
class PendingConfirmation:
    """A person who asked for follow-ups but has not confirmed their address yet."""

    masked_email: str  # "a…@example.org"
    sent: bool  # whether a confirmation mail has been queued for them


def pending_confirmation(mine: Attendance) -> PendingConfirmation | None:
    """Return what a badge says about the confirmation its follow-ups wait for, if any."""
    person = mine.person
    if mine.followup_consent_at is None or person.email_confirmed_at is not None:
        return None
    sent = db.session.scalar(_confirmations_sent_statement(), {"person": person.id})
    return PendingConfirmation(mask_email(person.email), bool(sent))


@functools.cache
def _confirmations_sent_statement() -> sa.Select[tuple[int]]:
    # Built once: every badge page waiting for a confirmation runs it.
    return (
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(
            OutboxMessage.person_id == sa.bindparam("person", type_=sa.Integer()),
            OutboxMessage.kind == "confirm",
        )
    )


def resend_confirmation(mine: Attendance) -> bool:
    """Queue the confirmation mail again, within its limits; tell whether it was queued."""
    if pending_confirmation(mine) is None:
        return False
    return request_confirmation(mine.person, mine.event) is not None


def confirm_new_address(person_id: int, email: str, event_id: int | None) -> None:
    """Queue the first confirmation email of someone new, who has never been asked."""
    now = utcnow()
    enqueue_row(
        kind="confirm",
        dedupe_key=_confirmation_key(person_id, now),
        person_id=person_id,
        to_email=email,
        event_id=event_id,
        send_after=now,
    )


def _confirmation_key(person_id: int, now: datetime) -> str:
    bucket = int(now.timestamp() // CONFIRMATION_EVERY.total_seconds())
    return f"confirm:{person_id}:{bucket}"


def request_sign_in(person: Person, event: Event | None) -> OutboxMessage | None:
    """Queue a sign-in link, unless the person's inbox has had its share of them."""
    # One request for a person at a time, so the counts below can't be raced past (SQLite
    # already runs one write transaction at a time).
    db.session.execute(sa.select(Person.id).where(Person.id == person.id).with_for_update())
    now = utcnow()
    links = (
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.person_id == person.id, OutboxMessage.kind == "signin")
    )
    if person.email_confirmed_at is None:
        # Anyone can type an address into a form: until it is proved, it gets one link.
        if db.session.scalar(links) >= limits.SIGN_IN_LINKS_UNCONFIRMED:
            return None
    elif (
        db.session.scalar(links.where(OutboxMessage.created_at > now - limits.SIGN_IN_CAP_WINDOW))
        >= limits.SIGN_IN_LINKS_PER_DAY
    ):
        return None
    asked_again = links.where(
        OutboxMessage.event_id == (event.id if event else None),
        OutboxMessage.created_at > now - SIGN_IN_EVERY,
    )
    if db.session.scalar(asked_again):
        return None  # the link sent a moment ago is on its way
    return enqueue(
        kind="signin",
        dedupe_key=f"signin:{person.id}:{int(now.timestamp() * 1_000_000)}",
        person=person,
        event=event,
        send_after=now,
    )


def queue_followups(connection: Connection, only: Attendance | None = None) -> None:
    """Queue what an accepted connection means for the follow-ups of each side who asked.

    Only people who ticked "email me a follow-up" get rows at all; `only` limits this to
    one side (when that person ticks the box later).
    """
    event = connection.low.event
    due = followup_time(event)
    for mine in (connection.low, connection.high):
        if mine.followup_consent_at is None or (only is not None and mine.id != only.id):
            continue
        digest = db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.dedupe_key == f"digest:{mine.id}")
        ).one_or_none()
        if digest is None:
            enqueue(
                kind="digest",
                dedupe_key=f"digest:{mine.id}",
                person=mine.person,
                event=event,
                send_after=due,
            )
        elif not _digest_still_to_come(digest):
            # The digest has gone: this connection gets a short email of its own.
            enqueue(
                kind="connection",
                dedupe_key=f"connection:{connection.id}:{mine.id}",
                person=mine.person,
                event=event,
                connection=connection,
                send_after=max(due, utcnow()),
            )
        if event.nudge_days:
            enqueue(
                kind="nudge",
                dedupe_key=f"nudge:{connection.id}:{mine.id}",
                person=mine.person,
                event=event,
                connection=connection,
                send_after=due + timedelta(days=event.nudge_days),
            )


def queue_digests(attendance_ids: list[int]) -> None:
    """Queue the digest of each of these attendances that asked for follow-ups, unless it is
    queued or gone already.

    For people who meet again: two people who connected at an earlier event make no new
    connection, yet the digest names each of them to the other (domain/digest.py).
    """
    consenting = db.session.scalars(
        sa.select(Attendance).where(
            Attendance.id.in_(attendance_ids), Attendance.followup_consent_at.is_not(None)
        )
    )
    for mine in consenting:
        enqueue(
            kind="digest",
            dedupe_key=f"digest:{mine.id}",
            person=mine.person,
            event=mine.event,
            send_after=followup_time(mine.event),
        )


def _digest_still_to_come(digest: OutboxMessage) -> bool:
    """Tell whether a digest will yet be written, and so will list every accepted connection.

    A digest held until its person confirms is one still to come, not one sent.
    """
    return digest.status == MessageStatus.PENDING or (
        digest.status == MessageStatus.CANCELLED and digest.cancel_reason == HELD_UNCONFIRMED
    )


def reschedule(event: Event) -> None:
    """Move an event's waiting follow-ups to its current follow-up time and cadence."""
    due = followup_time(event)
    now = utcnow()
    waiting = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.event_id == event.id,
            OutboxMessage.kind.in_(FOLLOWUP_KINDS),
            OutboxMessage.status == MessageStatus.PENDING,
        )
    )
    for message in waiting:
        if message.kind == "nudge":
            if not event.nudge_days:
                cancel(message, "cadence_off")
                continue
            when = due + timedelta(days=event.nudge_days)
        elif message.kind == "connection":
            when = max(due, now)
        else:
            when = due
        message.send_after = when
        if message.attempts == 0:
            message.next_attempt_at = when
    db.session.flush()


def set_followup_consent(mine: Attendance, wanted: bool) -> None:
    """Record whether a person wants follow-ups from this event, and queue or cancel them."""
    if wanted and mine.followup_consent_at is None:
        mine.followup_consent_at = utcnow()
        # What unticking cancelled before it was ever tried comes back as it was: one
        # digest, not a mail per connection. A message tried already may have gone out.
        _revive(
            sa.and_(
                OutboxMessage.person_id == mine.person_id,
                OutboxMessage.event_id == mine.event_id,
                OutboxMessage.kind.in_(FOLLOWUP_KINDS),
                OutboxMessage.attempts == 0,
            ),
            "no_consent",
        )
        db.session.flush()
        accepted = db.session.scalars(
            sa.select(Connection).where(
                Connection.status == ConnectionStatus.ACCEPTED.value,
                sa.or_(
                    Connection.low_attendance_id == mine.id,
                    Connection.high_attendance_id == mine.id,
                ),
            )
        )
        for connection in accepted:
            queue_followups(connection, only=mine)
        if mine.person.email_confirmed_at is None:
            request_confirmation(mine.person, mine.event)
    elif not wanted and mine.followup_consent_at is not None:
        mine.followup_consent_at = None
        cancel_waiting(
            sa.and_(
                OutboxMessage.person_id == mine.person_id,
                OutboxMessage.event_id == mine.event_id,
                OutboxMessage.kind.in_(FOLLOWUP_KINDS),
            ),
            "no_consent",
        )
    db.session.flush()


def end_event(event: Event) -> None:
    """End an event now: its follow-ups fall due by its settings, counted from now.

    An event that has already ended keeps its end.
    """
    caching.forget_event(event.id, event.checkin_token)
    now = utcnow()
    if event.ends_at <= now:
        return
    if event.starts_at > now:
        event.starts_at = now
    event.ends_at = now
    reschedule(event)


def update_followup_settings(event: Event, *, timing: str, nudge_days: int) -> None:
    """Change when an event's follow-ups go out, moving the ones waiting."""
    if timing not in FOLLOWUP_TIMINGS or nudge_days not in NUDGE_CHOICES:
        raise ValueError("unknown follow-up setting")
    event.followup_timing = timing
    event.nudge_days = nudge_days
    reschedule(event)


def cancel_about_connection(connection: Connection, reason: str) -> None:
    """Cancel the waiting emails that are about one connection."""
    cancel_waiting(OutboxMessage.connection_id == connection.id, reason)


def mark_in_touch(connection: Connection) -> None:
    """Record that a pair has been in touch, and stop the nudges about them."""
    if connection.in_touch_at is None:
        connection.in_touch_at = utcnow()
    cancel_waiting(
        sa.and_(OutboxMessage.connection_id == connection.id, OutboxMessage.kind == "nudge"),
        "in_touch",
    )


def revive_after_confirmation(person: Person) -> None:
    """Put back the follow-ups that were held because the address was not confirmed yet."""
    _revive(OutboxMessage.person_id == person.id, HELD_UNCONFIRMED)


def _revive(condition: sa.ColumnElement[bool], reason: str) -> None:
    """Put back the messages matching a condition that were cancelled, unsent, for a reason
    that no longer holds: the follow-ups to come are the ones queued first, not new ones."""
    now = utcnow()
    db.session.execute(
        sa.update(OutboxMessage)
        .where(
            condition,
            OutboxMessage.status == MessageStatus.CANCELLED,
            OutboxMessage.cancel_reason == reason,
        )
        .values(
            status=MessageStatus.PENDING.value,
            cancel_reason=None,
            cancelled_at=None,
            next_attempt_at=sa.case(
                (OutboxMessage.send_after > now, OutboxMessage.send_after), else_=now
            ),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def cancel(message: OutboxMessage, reason: str) -> None:
    """Cancel one waiting message."""
    message.status = MessageStatus.CANCELLED.value
    message.cancelled_at = utcnow()
    message.cancel_reason = reason


def attendance_of(message: OutboxMessage) -> Attendance | None:
    """Return the recipient's attendance at the message's event."""
    if message.event_id is None:
        return None
    parameters = {"event_id": message.event_id, "person_id": message.person_id}
    return db.session.scalars(_attendance_statement(), parameters).one_or_none()


@functools.cache
def _attendance_statement() -> sa.Select[tuple[Attendance]]:
    return sa.select(Attendance).where(
        Attendance.event_id == sa.bindparam("event_id", type_=sa.Integer()),
        Attendance.person_id == sa.bindparam("person_id", type_=sa.Integer()),
    )
