"""An event's mail as its organiser sees it: which emails, and what will really happen to each,
in the words the organiser reads on the emails page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain.db import db
from domain.event_state import EventState, event_state
from domain.events import local_time
from domain.followups import FOLLOWUP_KINDS, followup_time
from domain.limits import EMAILS_PAGE_SIZE
from domain.models import (
    Attendance,
    Connection,
    ConnectionStatus,
    Event,
    MessageStatus,
    OutboxMessage,
    Person,
)
from domain.outbox import HELD_UNCONFIRMED, can_cancel, can_retry
from domain.sending import LastResume, SendingHold, last_resume, sending_hold

# What an organiser sees of an event's mail: what its attendees get because they came. A
# sign-in link is the person's own business, whichever event's page it was asked for from.
EVENT_MAIL_KINDS = ("confirm", "digest", "connection", "nudge")

# Why an email will not go out, as the organiser reads it after "will not be sent: ".
NOT_SENT_BECAUSE = {
    "unsubscribed": "unsubscribed",
    "suppressed": "the address is on the do-not-email list",
    "bounced": "the address bounced",
    "spamreport": "marked as spam",
    "dropped": "the email service refuses the address",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "deleted": "the person deleted their data",
    "no_consent": "no consent to follow-ups",
    "cadence_off": "reminders are turned off",
    "in_touch": "they have been in touch",
    "connection_gone": "the connection was removed",
    "connection_removed": "the connection was removed",
    "blocked": "one of them blocked the other",
    "unknown_kind": "not a kind of email Rapport sends",
    "nothing_to_send": "no connections to tell about",
    "cancelled by the organiser": "cancelled by you",
    # An invitation to join an event's team.
    "revoked": "the invitation was withdrawn",
    "used": "the invitation has been used",
    "expired": "the invitation expired",
}
# The groups the page counts, in the order it shows them.
OUTLOOK_GROUPS = (
    "to send",
    "waiting for confirmation",
    "sending",
    "checking",
    "sent",
    "failed",
    "will not be sent",
)


def event_mail(event_id: int) -> sa.ColumnElement[bool]:
    """Select an event's mail to its own attendees, the only mail its organiser sees."""
    return sa.and_(
        OutboxMessage.event_id == event_id,
        OutboxMessage.kind.in_(EVENT_MAIL_KINDS),
        sa.exists().where(
            Attendance.event_id == OutboxMessage.event_id,
            Attendance.person_id == OutboxMessage.person_id,
        ),
    )


def messages_of(event_id: int, page: int = 1, size: int = EMAILS_PAGE_SIZE) -> list[OutboxMessage]:
    """Return one page of an event's emails, the most recently changed first."""
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(event_mail(event_id))
            .options(selectinload(OutboxMessage.person))
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
            .limit(size)
            .offset((max(page, 1) - 1) * size)
        )
    )


def message_of_event(event_id: int, message_id: int) -> OutboxMessage | None:
    """Return one of an event's emails, or None for any other id."""
    return db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.id == message_id, event_mail(event_id))
    ).one_or_none()


@dataclass(frozen=True)
class Outlook:
    """Where an email is headed: a group to count it in, and a sentence about it."""

    group: str
    text: str


def outlook(status: str, reason: str | None, kind: str, confirmed: bool) -> Outlook:
    """Say what will happen to an email in this state."""
    waits_for_confirmation = kind in FOLLOWUP_KINDS and not confirmed
    if status == MessageStatus.PENDING:
        if waits_for_confirmation:
            return Outlook("waiting for confirmation", "waiting for the person to confirm")
        return Outlook("to send", "will be sent")
    if status == MessageStatus.CANCELLED:
        if reason == HELD_UNCONFIRMED:
            return Outlook("waiting for confirmation", "waiting for the person to confirm")
        because = NOT_SENT_BECAUSE.get(reason or "")
        # A reason without words is never shown as its code: the organiser reads sentences.
        return Outlook(
            "will not be sent", f"will not be sent: {because}" if because else "will not be sent"
        )
    if status == MessageStatus.SENDING:
        return Outlook("sending", "sending now")
    if status == MessageStatus.UNCERTAIN:
        return Outlook("checking", "checking whether it went out")
    if status == MessageStatus.FAILED:
        return Outlook("failed", "failed: not sent (you can retry)")
    return Outlook("sent", "sent")


def outlook_of(message: OutboxMessage) -> Outlook:
    """Say what will happen to one email."""
    confirmed = message.person.email_confirmed_at is not None
    return outlook(message.status, message.cancel_reason, message.kind, confirmed)


def outlook_counts(event_id: int) -> dict[str, int]:
    """Return how many of an event's emails are headed each way."""
    counts = dict.fromkeys(OUTLOOK_GROUPS, 0)
    rows = db.session.execute(
        sa.select(
            OutboxMessage.status,
            OutboxMessage.cancel_reason,
            OutboxMessage.kind,
            Person.email_confirmed_at.is_not(None),
            sa.func.count(),
        )
        .join(Person, Person.id == OutboxMessage.person_id)
        .where(event_mail(event_id))
        .group_by(
            OutboxMessage.status,
            OutboxMessage.cancel_reason,
            OutboxMessage.kind,
            Person.email_confirmed_at.is_not(None),
        )
    )
    for status, reason, kind, confirmed, number in rows:
        counts[outlook(status, reason, kind, bool(confirmed)).group] += number
    return counts


@dataclass(frozen=True)
class MessageLine:
    """One email as a row of the emails page, in plain values."""

    id: int
    to: str
    kind: str
    outlook: Outlook
    delivery_state: str | None
    attempts: int
    due: datetime | None  # when it is next tried, in the event's zone; None once it went
    sent: datetime | None  # when it went, in the event's zone
    last_error: str
    can_cancel: bool
    can_retry: bool


@dataclass(frozen=True)
class EmailsPage:
    """Everything the emails page shows of an event's mail, one page of messages at a time."""

    counts: dict[str, int]
    messages: list[MessageLine]
    page: int
    pages: int
    total: int
    first: int  # the position of the first message listed, from 1
    digests_due: datetime  # in the event's time zone
    digests_waiting: bool
    ended: bool
    live: bool  # started and not ended: it can be ended now
    previewable: list[tuple[int, str]]  # (attendance id, name) of each digest recipient
    hold: SendingHold | None
    resumed: LastResume | None  # the latest lift of a pause, by anyone


def emails_page(event: Event, now: datetime, page: int = 1) -> EmailsPage:
    """Return what the organiser's emails page shows of an event at `now`."""
    counts = outlook_counts(event.id)
    total = sum(counts.values())
    pages = max(1, -(-total // EMAILS_PAGE_SIZE))
    page = min(max(page, 1), pages)
    due = followup_time(event)
    return EmailsPage(
        counts=counts,
        messages=[_line(event, message) for message in messages_of(event.id, page)],
        page=page,
        pages=pages,
        total=total,
        first=(page - 1) * EMAILS_PAGE_SIZE + 1,
        digests_due=local_time(event, due),
        digests_waiting=due > now,
        ended=event_state(event, now) is EventState.ENDED,
        live=event_state(event, now) is EventState.LIVE,
        previewable=digest_recipients(event),
        hold=sending_hold(now),
        resumed=last_resume(),
    )


def _line(event: Event, message: OutboxMessage) -> MessageLine:
    unsent = message.status in (MessageStatus.PENDING, MessageStatus.SENDING)
    return MessageLine(
        id=message.id,
        to=message.person.name,
        kind=message.kind,
        outlook=outlook_of(message),
        delivery_state=message.delivery_state,
        attempts=message.attempts,
        due=local_time(event, message.next_attempt_at) if unsent else None,
        sent=local_time(event, message.sent_at) if message.sent_at else None,
        last_error=message.last_error or "",
        can_cancel=can_cancel(message),
        can_retry=can_retry(message),
    )


def _digest_recipient() -> sa.ColumnElement[bool]:
    """Select attendances that get a digest: they asked for follow-ups and met someone."""
    accepted = sa.exists().where(
        Connection.status == ConnectionStatus.ACCEPTED.value,
        sa.or_(
            Connection.low_attendance_id == Attendance.id,
            Connection.high_attendance_id == Attendance.id,
        ),
    )
    return sa.and_(Attendance.followup_consent_at.is_not(None), accepted)


def digest_recipients(event: Event) -> list[tuple[int, str]]:
    """Return (attendance id, name) of each attendee who gets a digest, by name."""
    rows = db.session.execute(
        sa.select(Attendance.id, Person.name)
        .join(Person, Person.id == Attendance.person_id)
        .where(Attendance.event_id == event.id, _digest_recipient())
        .order_by(Person.name, Attendance.id)
    )
    return [(attendance_id, name) for attendance_id, name in rows]


def digest_recipient(event: Event, attendance_id: int) -> Attendance | None:
    """Return an attendee of the event who gets a digest, or None for anyone else."""
    return db.session.scalars(
        sa.select(Attendance).where(
            Attendance.id == attendance_id, Attendance.event_id == event.id, _digest_recipient()
        )
    ).one_or_none()
