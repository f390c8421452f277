"""An event's mail as its organiser sees it: which emails, and what will really happen to each,
in the words the organiser reads on the emails page."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from domain.db import db
from domain.followups import FOLLOWUP_KINDS
from domain.models import Attendance, MessageStatus, OutboxMessage, Person
from domain.outbox import HELD_UNCONFIRMED

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


def messages_of(event_id: int, limit: int = 500) -> list[OutboxMessage]:
    """Return an event's emails, the most recently changed first."""
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(event_mail(event_id))
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
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


def outlooks_of(messages: list[OutboxMessage]) -> list[tuple[OutboxMessage, Outlook]]:
    """Pair each email with what will happen to it."""
    return [(message, outlook_of(message)) for message in messages]


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
