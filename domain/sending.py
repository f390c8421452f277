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
from domain.db import db, insert_ignoring_conflict, utcnow
from domain.mailer import PAUSING_CODES
from domain.models import MessageStatus, OutboxMessage, SenderState

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
    return state.paused_until


def throttle_sending(now: datetime, until: datetime | None) -> None:
    """Make every worker wait until a rate limit resets (for a while, if it does not say)."""
    sender_state().throttled_until = until or now + limits.DEFAULT_THROTTLE


def last_webhook_at() -> datetime | None:
    """Return when SendGrid's webhook last told us anything, or None if it never has."""
    return db.session.scalar(
        sa.select(SenderState.last_webhook_at).where(SenderState.id == SENDER_STATE_ID)
    )


def resume_sending() -> None:
    """Lift a pause on all sending (after fixing the API key, say)."""
    state = sender_state()
    state.paused_until = None
    state.paused_at = None
    state.pause_reason = None
    # The messages parked by the pause go at once, not when the pause would have ended.
    now = utcnow()
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
