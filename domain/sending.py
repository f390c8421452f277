"""Whether mail may go out at all: the one shared sender state, paused or throttled.

A configuration error (a bad API key, say) pauses all sending for a while; a rate limit
makes every worker wait until SendGrid's limit resets. Both hold every worker, on every
machine, because the state is one database row that the claim reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from domain import limits
from domain.db import db, insert_ignoring_conflict
from domain.errors import DomainError
from domain.mailer import PAUSING_CODES
from domain.models import (
    Event,
    MessageStatus,
    Organiser,
    OutboxMessage,
    SenderState,
    SendingResumed,
)
from domain.profile import mask_email

SENDER_STATE_ID = 1
PAUSE_REASON_MAX = 200  # SenderState.pause_reason is a String(200)


def sender_state() -> SenderState:
    """Return the one shared sender-state row, creating it on first use."""
    state = db.session.get(SenderState, SENDER_STATE_ID)
    if state is None:
        insert_ignoring_conflict(SenderState.__table__, {"id": SENDER_STATE_ID}, ["id"])
        state = db.session.get_one(SenderState, SENDER_STATE_ID)
    return state


@dataclass(frozen=True)
class SendingHold:
    """All sending waits until `until`: the service refused our key, or asked us to slow down."""

    until: datetime
    refused: bool
    since: datetime | None = None  # when the service refused our key, for a pause


def sending_hold(now: datetime) -> SendingHold | None:
    """Return until when all sending waits and why (a pause or a rate limit), or None."""
    state = db.session.get(SenderState, SENDER_STATE_ID)
    if state is None:
        return None
    paused = state.paused_until if state.paused_until and state.paused_until > now else None
    throttled = (
        state.throttled_until if state.throttled_until and state.throttled_until > now else None
    )
    if paused is None and throttled is None:
        return None
    return SendingHold(
        until=max(t for t in (paused, throttled) if t),
        refused=paused is not None,
        since=state.paused_at if paused is not None else None,
    )


def sending_held(now: sa.ColumnElement[datetime]) -> sa.ColumnElement[bool]:
    """Select whether every worker is told to wait at `now` (a pause or a rate limit)."""
    return sa.exists().where(
        SenderState.id == SENDER_STATE_ID,
        sa.or_(SenderState.paused_until > now, SenderState.throttled_until > now),
    )


def pause_sending(now: datetime, reason: str | None) -> datetime:
    """Stop all sending for a while after a configuration error; return until when."""
    state = sender_state()
    state.paused_until = now + limits.PAUSE_AFTER_AUTH_ERROR
    state.paused_at = now
    state.pause_reason = reason[:PAUSE_REASON_MAX] if reason else None
    # Written now: the claim that follows in the same transaction is a plain UPDATE, which
    # would not flush it first, and must see the pause.
    db.session.flush()
    return state.paused_until


def throttle_sending(now: datetime, until: datetime | None) -> None:
    """Make every worker wait until a rate limit resets (for a while, if it does not say)."""
    sender_state().throttled_until = until or now + limits.DEFAULT_THROTTLE
    db.session.flush()  # seen by the claim that follows, as a pause is


def last_webhook_at() -> datetime | None:
    """Return when SendGrid's webhook last told us anything, or None if it never has."""
    return db.session.scalar(
        sa.select(SenderState.last_webhook_at).where(SenderState.id == SENDER_STATE_ID)
    )


class SendingError(DomainError):
    """A change to the shared sender state was refused; `code` is stable."""


@dataclass(frozen=True)
class LastResume:
    """The latest lift of a pause: who (masked), when, and whether the service refused again."""

    by: str  # "a…@example.org"
    at: datetime
    refused_again: bool


def holds_emails_of(event: Event, now: datetime) -> bool:
    """Tell whether a pause on sending holds back any email of an event at `now`."""
    state = db.session.get(SenderState, SENDER_STATE_ID)
    if state is None or state.paused_until is None or state.paused_until <= now:
        return False
    held = sa.select(OutboxMessage.id).where(
        OutboxMessage.event_id == event.id,
        OutboxMessage.status == MessageStatus.PENDING.value,
        # Due before the pause ends: without it, it would have gone out.
        OutboxMessage.next_attempt_at <= state.paused_until,
    )
    return bool(db.session.scalar(sa.select(held.exists())))


def may_resume(
    organiser: Organiser,
    event: Event | None,
    *,
    administrator: bool,
    now: datetime,
    owners_may: bool = True,
) -> bool:
    """Tell whether someone may lift a pause: an administrator of the installation, or,
    where it names none (`owners_may`), the owner of an event whose emails it holds.

    The key is shared: where administrators look after it, only they say it is fixed (anyone
    may sign up and hold an email of their own); elsewhere no one but an owner affected does.
    """
    if administrator:
        return True
    return (
        owners_may
        and event is not None
        and event.organiser_id == organiser.id
        and holds_emails_of(event, now)
    )


def resume_sending(
    organiser: Organiser,
    event: Event | None,
    *,
    administrator: bool,
    now: datetime,
    owners_may: bool = True,
) -> SendingResumed | None:
    """Lift a pause on all sending (after fixing the API key, say) and record who did.

    Return None, changing nothing, when sending is not paused; raise SendingError when the
    organiser may not lift it (see `may_resume`).
    """
    hold = sending_hold(now)
    if hold is None or not hold.refused:
        return None
    if not may_resume(
        organiser, event, administrator=administrator, now=now, owners_may=owners_may
    ):
        raise SendingError(
            "not_allowed",
            "Only the site's administrators, or the owner of an event with emails held by "
            "the pause, can resume sending."
            if owners_may
            else "Only the site's administrators can resume sending: they look after the key.",
        )
    resumed = SendingResumed(
        resumed_at=now,
        organiser_email=organiser.email,
        organiser_id=organiser.id,
        paused_at=hold.since,
    )
    db.session.add(resumed)
    state = sender_state()
    state.paused_until = None
    state.paused_at = None
    state.pause_reason = None
    # The messages parked by the pause go at once, not when the pause would have ended.
    db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.status == MessageStatus.PENDING.value,
            OutboxMessage.last_status_code.in_(PAUSING_CODES),
            OutboxMessage.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return resumed


def last_resume() -> LastResume | None:
    """Return the latest lift of a pause, and whether the service has refused our key since."""
    resumed = db.session.scalars(
        sa.select(SendingResumed).order_by(
            SendingResumed.resumed_at.desc(), SendingResumed.id.desc()
        )
    ).first()
    if resumed is None:
        return None
    state = db.session.get(SenderState, SENDER_STATE_ID)
    paused_at = state.paused_at if state is not None else None
    return LastResume(
        by=mask_email(resumed.organiser_email),
        at=resumed.resumed_at,
        refused_again=paused_at is not None and paused_at >= resumed.resumed_at,
    )
