"""The outbox: email as rows, claimed by workers, sent once, its state always visible.

States: pending -> sending -> sent | failed | cancelled | uncertain (see DESIGN.md).
A worker (domain/worker.py) claims due rows in one short transaction (FOR UPDATE SKIP
LOCKED on PostgreSQL; one conditional UPDATE ... RETURNING under BEGIN IMMEDIATE on
SQLite), sends with no transaction open, and records the outcome with a fenced UPDATE that
only succeeds while it still holds the lease. A lease that runs out means the outcome is
unknown: the reaper marks the row uncertain, and the reconciler either finds SendGrid's
webhook event for it (sent) or sends it again (at least once).
"""

from __future__ import annotations

import functools
import logging
import random
from datetime import datetime, timedelta

import sqlalchemy as sa

from domain import limits
from domain.db import UTCDateTime, db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.mailer import Outcome, OutcomeKind
from domain.models import (
    Connection,
    Event,
    Invitation,
    MessageStatus,
    OutboxMessage,
    Person,
    WebhookEvent,
)
from domain.sending import last_webhook_at, pause_sending, sending_held, throttle_sending
from domain.tokens import hash_token

log = logging.getLogger(__name__)

ACTIVE = (MessageStatus.PENDING.value, MessageStatus.UNCERTAIN.value)
# The cancel reason of a follow-up held until its person confirms their address: it still
# waits, and confirming puts it back as it was.
HELD_UNCONFIRMED = "unconfirmed"


# ---------------------------------------------------------------- writing rows


class Skip(DomainError):
    """Raised by a composer: this message must not be sent; its `code` says why."""


def enqueue(
    *,
    kind: str,
    dedupe_key: str,
    send_after: datetime,
    person: Person | None = None,
    event: Event | None = None,
    connection: Connection | None = None,
    invitation: Invitation | None = None,
    to_email: str | None = None,
) -> OutboxMessage | None:
    """Add a message unless one with the same dedupe key exists; return it if new.

    It goes to the person's address, or for an invitation (which has no person) to `to_email`.
    """
    address = person.email if person is not None else to_email
    assert address, "a message needs a person or an address"
    message_id = enqueue_row(
        kind=kind,
        dedupe_key=dedupe_key,
        person_id=person.id if person is not None else None,
        to_email=address,
        send_after=send_after,
        event_id=event.id if event else None,
        connection_id=connection.id if connection else None,
        invitation_id=invitation.id if invitation else None,
    )
    return db.session.get(OutboxMessage, message_id) if message_id else None


def enqueue_row(
    *,
    kind: str,
    dedupe_key: str,
    person_id: int | None,
    to_email: str,
    send_after: datetime,
    event_id: int | None = None,
    connection_id: int | None = None,
    invitation_id: int | None = None,
) -> int | None:
    """Add a message in one statement unless its dedupe key exists; return its id if new."""
    now = utcnow()
    message_id: int | None = insert_ignoring_conflict(
        OutboxMessage.__table__,
        {
            "dedupe_key": dedupe_key,
            "kind": kind,
            "person_id": person_id,
            "event_id": event_id,
            "connection_id": connection_id,
            "invitation_id": invitation_id,
            "to_email": to_email,
            "status": MessageStatus.PENDING.value,
            "send_after": send_after,
            "next_attempt_at": send_after,
            "attempts": 0,
            "max_attempts": limits.MAX_ATTEMPTS,
            "created_at": now,
            "updated_at": now,
        },
        ["dedupe_key"],
    )
    return message_id


def cancel_waiting(condition: sa.ColumnElement[bool], reason: str) -> None:
    """Cancel the messages matching a condition that have not gone out (or may not have).

    A message held for confirmation is waiting too: it now will not be sent, for this
    reason, and confirming no longer brings it back.
    """
    now = utcnow()
    held = sa.and_(
        OutboxMessage.status == MessageStatus.CANCELLED.value,
        OutboxMessage.cancel_reason == HELD_UNCONFIRMED,
    )
    db.session.execute(
        sa.update(OutboxMessage)
        .where(condition, sa.or_(OutboxMessage.status.in_(ACTIVE), held))
        .values(
            status=MessageStatus.CANCELLED.value,
            cancelled_at=now,
            cancel_reason=reason,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def set_link_token(message_id: int, token: str) -> None:
    """Store the hash of the token a sent message's links carry."""
    db.session.execute(
        _link_token_statement(), {"message_id": message_id, "token_hash": hash_token(token)}
    )


@functools.cache
def _link_token_statement() -> sa.Update:
    table = OutboxMessage.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("message_id", type_=sa.Integer()))
        .values(link_token_hash=sa.bindparam("token_hash", type_=sa.String()))
    )


# ---------------------------------------------------------------- claiming and finishing


def claim_due_messages(
    owner: str, limit: int, now: datetime | None = None, lease: timedelta = limits.LEASE
) -> list[int]:
    """Claim up to `limit` due messages for this worker; call inside a write transaction."""
    now = now or utcnow()
    statement = _claim_statement(db.session.get_bind().dialect.name)
    parameters = {"now": now, "limit": limit, "owner": owner, "expires": now + lease}
    return list(db.session.execute(statement, parameters).scalars())


@functools.cache
def _claim_statement(dialect: str) -> sa.Update:
    """Build the claim once: workers run it for every message."""
    table = OutboxMessage.__table__
    now = sa.bindparam("now", type_=UTCDateTime())
    due = (
        sa.select(table.c.id)
        .where(
            table.c.status == MessageStatus.PENDING.value,
            table.c.next_attempt_at <= now,
            # Nothing is due while every worker is told to wait (a pause or a rate limit).
            ~sending_held(now),
        )
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (
        sa.update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING.value,
            attempts=table.c.attempts + 1,
            lease_owner=sa.bindparam("owner", type_=sa.String()),
            lease_expires_at=sa.bindparam("expires", type_=UTCDateTime()),
            updated_at=now,
        )
        .returning(table.c.id)
    )


def finish(
    message_id: int,
    owner: str,
    outcome: Outcome,
    now: datetime | None = None,
    settle_after: timedelta = limits.RECONCILE_AFTER,
) -> bool:
    """Record a send's outcome, only if this worker still holds the lease; tell if it did.

    An uncertain send is settled `settle_after` later, as a reaped one is.
    """
    now = now or utcnow()
    if outcome.kind == OutcomeKind.SENT:
        parameters = {
            "message_id": message_id,
            "owner": owner,
            "now": now,
            "code": outcome.status_code,
            "provider_id": outcome.provider_id,
        }
        return db.session.execute(_sent_statement(), parameters).rowcount == 1
    table = OutboxMessage.__table__
    values: dict[str, object] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": now,
    }
    message = None
    if outcome.kind == OutcomeKind.FAILED:
        values.update(status=MessageStatus.FAILED.value)
    elif outcome.kind == OutcomeKind.UNCERTAIN:
        values.update(status=MessageStatus.UNCERTAIN.value, next_attempt_at=now + settle_after)
    elif outcome.kind == OutcomeKind.CANCELLED:
        values.update(
            status=MessageStatus.CANCELLED.value,
            cancelled_at=now,
            cancel_reason=outcome.error,
            last_error=None,
        )
    else:  # retry, rate limited or pause: back to pending, or failed after its last attempt
        message = db.session.get(OutboxMessage, message_id)
        if message is None:
            return False
        values.update(_try_again(message, outcome, now))
    changed = db.session.execute(
        sa.update(table)
        .where(
            table.c.id == message_id,
            table.c.status == MessageStatus.SENDING.value,
            table.c.lease_owner == owner,
        )
        .values(**values)
    ).rowcount
    if message is not None:
        db.session.expire(message)
    return changed == 1


def _try_again(message: OutboxMessage, outcome: Outcome, now: datetime) -> dict[str, object]:
    """Return the values that put a message back to wait for its next attempt."""
    attempts = message.attempts - (0 if outcome.counts_as_attempt else 1)
    values: dict[str, object] = {"attempts": attempts}
    if outcome.kind == OutcomeKind.PAUSE:
        # The message waits out the pause with every other.
        paused_until = pause_sending(now, outcome.error)
        values.update(status=MessageStatus.PENDING.value, next_attempt_at=paused_until)
        return values
    if attempts >= message.max_attempts:
        values.update(status=MessageStatus.FAILED.value)
    elif outcome.retry_at:
        # After a rate limit, workers wake spread over a moment, not all at once.
        spread = timedelta(seconds=random.uniform(0, limits.RATE_LIMIT_JITTER_SECONDS))  # noqa: S311
        values.update(status=MessageStatus.PENDING.value, next_attempt_at=outcome.retry_at + spread)
    else:
        values.update(status=MessageStatus.PENDING.value, next_attempt_at=now + backoff(attempts))
    if outcome.kind == OutcomeKind.RATE_LIMITED:
        throttle_sending(now, outcome.retry_at)
    return values


@functools.cache
def _sent_statement() -> sa.Update:
    """Build the fenced "sent" update once: it runs for every message."""
    table = OutboxMessage.__table__
    now = sa.bindparam("now", type_=UTCDateTime())
    return (
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("message_id", type_=sa.Integer()),
            table.c.status == MessageStatus.SENDING.value,
            table.c.lease_owner == sa.bindparam("owner", type_=sa.String()),
        )
        .values(
            status=MessageStatus.SENT.value,
            sent_at=now,
            provider_message_id=sa.bindparam("provider_id", type_=sa.String()),
            lease_owner=None,
            lease_expires_at=None,
            last_status_code=sa.bindparam("code", type_=sa.Integer()),
            last_error=None,
            updated_at=now,
        )
    )


def backoff(attempts: int) -> timedelta:
    """Return a retry delay: exponential with full jitter."""
    ceiling = min(limits.BACKOFF_CAP_SECONDS, limits.BACKOFF_BASE_SECONDS * 2 ** max(attempts, 0))
    return timedelta(seconds=random.uniform(1, ceiling))  # noqa: S311 - jitter, not a secret


def reap_expired_leases(
    now: datetime | None = None, settle_after: timedelta = limits.RECONCILE_AFTER
) -> int:
    """Mark messages whose worker vanished mid-send as uncertain; return how many.

    They are settled `settle_after` later, giving SendGrid's webhook time to tell us
    whether the request got through.
    """
    now = now or utcnow()
    table = OutboxMessage.__table__
    return db.session.execute(
        sa.update(table)
        .where(table.c.status == MessageStatus.SENDING.value, table.c.lease_expires_at < now)
        .values(
            status=MessageStatus.UNCERTAIN.value,
            lease_owner=None,
            lease_expires_at=None,
            last_error="lease expired: the worker stopped mid-send",
            next_attempt_at=now + settle_after,
            updated_at=now,
        )
    ).rowcount


def reconcile_uncertain(
    now: datetime | None = None,
    *,
    webhook_expected: bool = False,
    settle_after: timedelta = limits.RECONCILE_AFTER,
) -> tuple[int, int]:
    """Settle uncertain messages that are due: (confirmed sent, put back to send again).

    A webhook event naming the message proves SendGrid took it. Without one, the message
    is sent again (at least once, rarely twice), unless a webhook is expected and has not
    been heard from since the message became uncertain: then its silence proves nothing,
    and the message waits, for at most as long as SendGrid retries a webhook post.
    """
    now = now or utcnow()
    confirmed = requeued = 0
    last_heard = last_webhook_at()
    due = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.status == MessageStatus.UNCERTAIN.value,
            OutboxMessage.next_attempt_at <= now,
        )
    ).all()
    reported = set(
        db.session.scalars(
            sa.select(WebhookEvent.outbox_message_id).where(
                WebhookEvent.outbox_message_id.in_([message.id for message in due])
            )
        )
    )
    for message in due:
        seen = message.id in reported
        unheard = last_heard is None or last_heard < message.updated_at
        if seen:
            message.status = MessageStatus.SENT.value
            message.sent_at = message.sent_at or now
            confirmed += 1
        elif (
            webhook_expected and unheard and now - message.updated_at < limits.WEBHOOK_RETRY_WINDOW
        ):
            message.next_attempt_at = now + settle_after
            log.warning("outbox: message %s stays uncertain: no webhook events lately", message.id)
            continue
        else:
            message.status = MessageStatus.PENDING.value
            message.next_attempt_at = now
            requeued += 1
        message.updated_at = now
    db.session.flush()
    return confirmed, requeued


# ---------------------------------------------------------------- what the organiser does


class OutboxError(DomainError):
    """A change to a message was refused; `code` is stable."""


def can_cancel(message: OutboxMessage) -> bool:
    """Tell whether an organiser may still cancel a message: it has not gone out."""
    return message.status == MessageStatus.PENDING


def can_retry(message: OutboxMessage) -> bool:
    """Tell whether an organiser may try a message again: it failed for good."""
    return message.status == MessageStatus.FAILED


def cancel_message(message: OutboxMessage) -> None:
    """Cancel a message that has not gone out."""
    if not can_cancel(message):
        raise OutboxError("not_pending")
    now = utcnow()
    message.status = MessageStatus.CANCELLED.value
    message.cancelled_at = now
    message.cancel_reason = "cancelled by the organiser"
    message.updated_at = now
    db.session.flush()


def retry_message(message: OutboxMessage) -> None:
    """Try a failed message again, now, with a fresh set of attempts."""
    if not can_retry(message):
        raise OutboxError("not_failed")
    now = utcnow()
    message.status = MessageStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = now
    message.updated_at = now
    db.session.flush()
