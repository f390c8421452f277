"""What SendGrid tells us after a send: delivery state, bounces, complaints, unsubscribes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from domain import limits
from domain.db import ID_MAX, db, insert_ignoring_conflict, utcnow
from domain.models import MessageStatus, OutboxMessage, WebhookEvent
from domain.sending import sender_state
from domain.suppression import suppress

# Events that prove SendGrid took the message (so an uncertain send did happen).
ACCEPTED_EVENTS = (
    "processed",
    "deferred",
    "delivered",
    "bounce",
    "dropped",
    "open",
    "click",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
)
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII digits only: int() would take "١٢" or " 12_3"
SUPPRESSING_EVENTS = ("dropped", "spamreport", "unsubscribe", "group_unsubscribe")
# Later states win; an event arriving out of order never moves a message backwards.
DELIVERY_RANK = {
    "processed": 1,
    "deferred": 2,
    "delivered": 3,
    "open": 4,
    "click": 4,
    "bounce": 5,
    "dropped": 5,
    "spamreport": 6,
    "unsubscribe": 6,
    "group_unsubscribe": 6,
}


def record_events(events: list[dict[str, Any]]) -> int:
    """Record a batch of webhook events, each once; return how many were new."""
    now = utcnow()
    new = 0
    for event in events:
        event_id = _text(event.get("sg_event_id"), 128)
        kind = _text(event.get("event"), 32)
        if not event_id or not kind:
            continue
        message = _message_for(event)
        inserted = insert_ignoring_conflict(
            WebhookEvent.__table__,
            {
                "sg_event_id": event_id,
                "outbox_message_id": message.id if message else None,
                "event": kind,
                "occurred_at": _moment(event.get("timestamp")),
                "received_at": now,
            },
            ["sg_event_id"],
            returning="sg_event_id",
        )
        if inserted is None:
            continue  # seen before: SendGrid delivers events more than once
        new += 1
        _apply(event, kind, message, now)
    sender_state().last_webhook_at = now
    db.session.flush()
    return new


def _apply(event: dict[str, Any], kind: str, message: OutboxMessage | None, now: datetime) -> None:
    email = _text(event.get("email"), limits.EMAIL_MAX)
    hard = kind in SUPPRESSING_EVENTS or (kind == "bounce" and event.get("type") != "blocked")
    if hard and email:
        suppress(email, kind if kind != "bounce" else "bounced")
    if message is None:
        return
    if message.status == MessageStatus.UNCERTAIN and kind in ACCEPTED_EVENTS:
        message.status = MessageStatus.SENT.value
        message.sent_at = message.sent_at or now
    rank = DELIVERY_RANK.get(kind)
    current = DELIVERY_RANK.get(message.delivery_state or "", 0)
    if rank is not None and rank >= current:
        message.delivery_state = kind
        message.delivery_updated_at = now


def _message_for(event: dict[str, Any]) -> OutboxMessage | None:
    """Find our row: by the outbox id we sent in custom_args, else by SendGrid's message id."""
    outbox_id = event.get("outbox_id")
    if outbox_id is None and isinstance(event.get("unique_args"), dict):
        outbox_id = event["unique_args"].get("outbox_id")
    number = _row_id(outbox_id)
    if number is not None:
        return db.session.get(OutboxMessage, number)
    provider = _text(event.get("sg_message_id"), 200).split(".")[0][:100]
    if provider:
        return db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.provider_message_id == provider).limit(1)
        ).first()
    return None


def _row_id(value: Any) -> int | None:
    """Return an id sent back to us as a number or digits, or None if it could be no row's."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    # bool is an int to Python; a float, a list or an out-of-range number is nobody's id.
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ID_MAX:
        return value
    return None


def is_fresh(timestamp: str, now: datetime | None = None) -> bool:
    """Tell whether a webhook post's signing time (Unix seconds) is close enough to now."""
    if not _DIGITS.fullmatch(timestamp):
        return False
    signed = datetime.fromtimestamp(int(timestamp), UTC)
    return abs((now or utcnow()) - signed) <= limits.WEBHOOK_TIMESTAMP_TOLERANCE


def _text(value: Any, limit: int) -> str:
    """Return a field of an event as printable text of bounded length."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""  # lists and objects are no event's text, however deep they nest
    return "".join(c for c in str(value) if c.isprintable())[:limit]


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
