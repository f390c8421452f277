"""Ending an event: what ending it now would set off, said before the organiser confirms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from domain.db import db
from domain.events import local_time
from domain.followups import followup_time
from domain.models import Event, MessageStatus, OutboxMessage, Person
from domain.outbox import HELD_UNCONFIRMED


@dataclass(frozen=True)
class EndingPreview:
    """What ending an event now means: who gets a digest, and when, in the event's zone."""

    people: int  # confirmed people whose digest waits for the end
    unconfirmed: int  # people whose digest waits, besides, for them to confirm
    due: datetime  # when the digests go, in the event's time zone
    when: str  # "now", "at 09:00 tomorrow", ...


def ending_preview(event: Event, now: datetime) -> EndingPreview:
    """Say who would get a follow-up digest, and when, if the event ended at `now`."""
    waiting = sa.or_(
        OutboxMessage.status == MessageStatus.PENDING.value,
        sa.and_(
            OutboxMessage.status == MessageStatus.CANCELLED.value,
            OutboxMessage.cancel_reason == HELD_UNCONFIRMED,
        ),
    )
    rows = db.session.execute(
        sa.select(Person.email_confirmed_at.is_not(None), sa.func.count())
        .select_from(OutboxMessage)
        .join(Person, Person.id == OutboxMessage.person_id)
        .where(OutboxMessage.event_id == event.id, OutboxMessage.kind == "digest", waiting)
        .group_by(Person.email_confirmed_at.is_not(None))
    )
    counts = {bool(confirmed): number for confirmed, number in rows}
    due = followup_time(event, ends_at=now)
    return EndingPreview(
        people=counts.get(True, 0),
        unconfirmed=counts.get(False, 0),
        due=local_time(event, due),
        when=when_in_words(local_time(event, due), local_time(event, now)),
    )


def when_in_words(due: datetime, now: datetime) -> str:
    """Say when a moment comes, from `now` (both in the same zone): "now", "at 09:00 tomorrow"."""
    if due <= now:
        return "now"
    days = (due.date() - now.date()).days
    at = due.strftime("%H:%M")
    if days == 0:
        return f"at {at} today"
    if days == 1:
        return f"at {at} tomorrow"
    return f"at {at} on {due.strftime('%a %d %b')}"
