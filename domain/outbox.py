"""The outbox: email as rows, claimed by workers, sent once, its state always visible.

States: pending -> sending -> sent | failed | cancelled | uncertain (see DESIGN.md).
A worker claims due rows in one short transaction (FOR UPDATE SKIP LOCKED on
PostgreSQL; one conditional UPDATE ... RETURNING under BEGIN IMMEDIATE on SQLite), sends
with no transaction open, and records the outcome with a fenced UPDATE that only
succeeds while it still holds the lease. A lease that runs out means the outcome is
unknown: the reaper marks the row uncertain, and the reconciler either finds SendGrid's
webhook event for it (sent) or sends it again (at least once).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from domain.db import UTCDateTime, db, insert_ignoring_conflict, utcnow, writing
from domain.errors import DomainError
from domain.mailer import Email, Mailer, Outcome
from domain.models import (
    Attendance,
    Connection,
    Event,
    MessageStatus,
    OutboxMessage,
    Person,
    SenderState,
    Suppression,
    WebhookEvent,
)
from domain.profile import normalise_email
from domain.tokens import hash_token

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
RECONCILE_AFTER = timedelta(minutes=15)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
PAUSE_AFTER_AUTH_ERROR = timedelta(minutes=5)
DEFAULT_THROTTLE = timedelta(seconds=30)
ACTIVE = (MessageStatus.PENDING.value, MessageStatus.UNCERTAIN.value)
# The cancel reason of a follow-up held until its person confirms their address: it still
# waits, and confirming puts it back as it was.
HELD_UNCONFIRMED = "unconfirmed"
SENDER_STATE_ID = 1
PAUSING_CODES = (401, 403, 404, 405, 406)
RATE_LIMIT_JITTER_SECONDS = 2.0


class Skip(DomainError):
    """Raised by a composer: this message must not be sent; `code` (or `reason`) says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rendered:
    """A message ready to send, and what must be saved before it goes (its links' hashes)."""

    email: Email
    save: Callable[[], None] | None = None


# Renders a claimed message without writing anything, or raises Skip.
Composer = Callable[[OutboxMessage], Rendered]


# ---------------------------------------------------------------- writing rows


def enqueue(
    *,
    kind: str,
    dedupe_key: str,
    person: Person,
    send_after: datetime,
    event: Event | None = None,
    connection: Connection | None = None,
) -> OutboxMessage | None:
    """Add a message unless one with the same dedupe key exists; return it if new."""
    now = utcnow()
    message_id = insert_ignoring_conflict(
        OutboxMessage.__table__,
        {
            "dedupe_key": dedupe_key,
            "kind": kind,
            "person_id": person.id,
            "event_id": event.id if event else None,
            "connection_id": connection.id if connection else None,
            "to_email": person.email,
            "status": MessageStatus.PENDING.value,
            "send_after": send_after,
            "next_attempt_at": send_after,
            "attempts": 0,
            "max_attempts": 8,
            "created_at": now,
            "updated_at": now,
        },
        ["dedupe_key"],
    )
    return db.session.get(OutboxMessage, message_id) if message_id else None


def email_hash(email: str) -> str:
    """Return the hash under which an address is suppressed."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def is_suppressed(email: str) -> bool:
    """Tell whether an address must never be emailed."""
    return db.session.get(Suppression, email_hash(email)) is not None


def suppress(email: str, reason: str) -> None:
    """Never email an address again, and cancel what is waiting for it, in this transaction."""
    insert_ignoring_conflict(
        Suppression.__table__,
        {"email_hash": email_hash(email), "reason": reason, "created_at": utcnow()},
        ["email_hash"],
        returning="email_hash",
    )
    cancel_waiting(OutboxMessage.to_email == normalise_email(email), reason)


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


# ---------------------------------------------------------------- the sender's shared state


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


def sender_state() -> SenderState:
    """Return the one shared sender-state row, creating it on first use."""
    state = db.session.get(SenderState, SENDER_STATE_ID)
    if state is None:
        insert_ignoring_conflict(SenderState.__table__, {"id": SENDER_STATE_ID}, ["id"])
        state = db.session.get_one(SenderState, SENDER_STATE_ID)
    return state


def sending_blocked_until(now: datetime) -> datetime | None:
    """Return until when all sending waits (a pause or a rate limit), or None."""
    state = db.session.get(SenderState, SENDER_STATE_ID)
    if state is None:
        return None
    later = [t for t in (state.paused_until, state.throttled_until) if t is not None and t > now]
    return max(later) if later else None


# ---------------------------------------------------------------- claiming and finishing


def claim_due_messages(
    owner: str, limit: int, now: datetime | None = None, lease: timedelta = LEASE
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
    # Nothing is due while every worker is told to wait (a pause or a rate limit).
    held = sa.exists().where(
        SenderState.id == SENDER_STATE_ID,
        sa.or_(SenderState.paused_until > now, SenderState.throttled_until > now),
    )
    due = (
        sa.select(table.c.id)
        .where(table.c.status == MessageStatus.PENDING.value, table.c.next_attempt_at <= now, ~held)
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


def finish(message_id: int, owner: str, outcome: Outcome, now: datetime | None = None) -> bool:
    """Record a send's outcome, only if this worker still holds the lease; tell if it did."""
    now = now or utcnow()
    table = OutboxMessage.__table__
    values: dict[str, object] = {
        "lease_owner": None,
        "lease_expires_at": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": now,
    }
    if outcome.kind == "sent":
        changed = db.session.execute(
            _sent_statement(),
            {
                "message_id": message_id,
                "owner": owner,
                "now": now,
                "code": outcome.status_code,
                "provider_id": outcome.provider_id,
            },
        ).rowcount
        return changed == 1
    message = None
    if outcome.kind == "sent":
        values.update(
            status=MessageStatus.SENT.value, sent_at=now, provider_message_id=outcome.provider_id
        )
    elif outcome.kind == "failed":
        values.update(status=MessageStatus.FAILED.value)
    elif outcome.kind == "uncertain":
        values.update(status=MessageStatus.UNCERTAIN.value, next_attempt_at=now + RECONCILE_AFTER)
    elif outcome.kind == "cancelled":
        values.update(
            status=MessageStatus.CANCELLED.value, cancelled_at=now, cancel_reason=outcome.error
        )
        values["last_error"] = None
    else:  # retry or pause: back to pending
        message = db.session.get(OutboxMessage, message_id)
        if message is None:
            return False
        attempts = message.attempts - (0 if outcome.counts_as_attempt else 1)
        values["attempts"] = attempts
        if outcome.kind == "retry" and attempts >= message.max_attempts:
            values.update(status=MessageStatus.FAILED.value)
        else:
            # After a rate limit, workers wake spread over a moment, not all at once.
            spread = timedelta(seconds=random.uniform(0, RATE_LIMIT_JITTER_SECONDS))  # noqa: S311
            values.update(
                status=MessageStatus.PENDING.value,
                next_attempt_at=outcome.retry_at + spread
                if outcome.retry_at
                else now + backoff(attempts),
            )
        if outcome.kind == "pause":
            state = sender_state()
            state.paused_until = now + PAUSE_AFTER_AUTH_ERROR
            state.pause_reason = outcome.error[:200] if outcome.error else None  # String(200)
            values["next_attempt_at"] = state.paused_until
        elif outcome.status_code == 429:
            state = sender_state()
            state.throttled_until = outcome.retry_at or now + DEFAULT_THROTTLE
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
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts, 0))
    return timedelta(seconds=random.uniform(1, ceiling))  # noqa: S311 - jitter, not a secret


def reap_expired_leases(
    now: datetime | None = None, settle_after: timedelta = RECONCILE_AFTER
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


WEBHOOK_RETRY_WINDOW = timedelta(hours=24)  # how long SendGrid keeps retrying a webhook post


def reconcile_uncertain(
    now: datetime | None = None,
    *,
    webhook_expected: bool = False,
    settle_after: timedelta = RECONCILE_AFTER,
) -> tuple[int, int]:
    """Settle uncertain messages that are due: (confirmed sent, put back to send again).

    A webhook event naming the message proves SendGrid took it. Without one, the message
    is sent again (at least once, rarely twice), unless a webhook is expected and has not
    been heard from since the message became uncertain: then its silence proves nothing,
    and the message waits, for at most as long as SendGrid retries a webhook post.
    """
    now = now or utcnow()
    confirmed = requeued = 0
    last_heard = db.session.scalar(
        sa.select(SenderState.last_webhook_at).where(SenderState.id == SENDER_STATE_ID)
    )
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
        elif webhook_expected and unheard and now - message.updated_at < WEBHOOK_RETRY_WINDOW:
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


# ---------------------------------------------------------------- the worker


@functools.cache
def _message_statement() -> sa.Select[tuple[OutboxMessage]]:
    """Build once the query that loads a claimed message with its person and event."""
    return (
        sa.select(OutboxMessage)
        .where(OutboxMessage.id == sa.bindparam("id", type_=sa.Integer()))
        .options(joinedload(OutboxMessage.person), joinedload(OutboxMessage.event))
    )


@dataclass(frozen=True)
class Sent:
    """A message handed to the mailer, and what the mailer said."""

    message_id: int
    outcome: Outcome


@dataclass
class WorkerStats:
    """What one worker run did."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    uncertain: int = 0
    cancelled: int = 0
    paused: int = 0
    lost_lease: int = 0


def worker_name() -> str:
    """Return a lease owner name unique to this worker process."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


class Worker:
    """Send due messages with a few threads until stopped (or, with once, until none are due).

    `context` opens whatever each thread needs to reach the database (the Flask app
    context); `compose` renders a claimed message or raises Skip.
    """

    def __init__(
        self,
        *,
        mailer: Mailer,
        compose: Composer,
        context: Callable[[], contextlib.AbstractContextManager[object]],
        threads: int = 4,
        poll_seconds: float = 1.0,
        housekeeping_seconds: float = 30.0,
        lease: timedelta = LEASE,
        settle_after: timedelta = RECONCILE_AFTER,
        webhook_expected: bool = False,
    ) -> None:
        self.mailer = mailer
        self.compose = compose
        self.context = context
        self.threads = threads
        self.poll_seconds = poll_seconds
        self.housekeeping_seconds = housekeeping_seconds
        self.lease = lease
        self.settle_after = settle_after
        self.webhook_expected = webhook_expected
        self.owner = worker_name()
        self.stop = threading.Event()
        self.stats = WorkerStats()
        self._lock = threading.Lock()

    def run(self, *, once: bool = False) -> WorkerStats:
        """Run until stop is set, or with once until nothing is due; return what was done."""
        self.housekeeping()
        threads = [
            threading.Thread(target=self._loop, args=(once,), name=f"outbox-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            if self.stop.wait(self.housekeeping_seconds if not once else 0.2):
                break
            if not once:
                self.housekeeping()
        for thread in threads:
            thread.join()
        return self.stats

    def housekeeping(self) -> None:
        """Reap expired leases and settle uncertain messages."""
        with self.context(), writing():
            try:
                reaped = reap_expired_leases(settle_after=self.settle_after)
                confirmed, requeued = reconcile_uncertain(
                    webhook_expected=self.webhook_expected, settle_after=self.settle_after
                )
                db.session.commit()
            finally:
                db.session.remove()
        if reaped or confirmed or requeued:
            log.info(
                "outbox: %d leases expired, %d confirmed, %d to resend", reaped, confirmed, requeued
            )

    def _loop(self, once: bool) -> None:
        with self.context():
            done: Sent | None = None
            try:
                while not self.stop.is_set():
                    try:
                        done, found = self._step(done)
                    except (
                        Exception
                    ):  # one bad message or a lost connection must not end the worker
                        log.exception("outbox: worker step failed; carrying on")
                        db.session.rollback()
                        if done is not None:
                            self._record(done)
                        done, found = None, False
                    if not found:
                        if once:
                            break
                        self.stop.wait(self.poll_seconds)
                if done is not None:
                    self._record(done)
            finally:
                db.session.remove()

    def process_one(self) -> bool:
        """Claim, render, send and record one message; tell whether there was one."""
        done, found = self._step(None)
        if done is not None:
            self._record(done)
        return found

    def _step(self, done: Sent | None) -> tuple[Sent | None, bool]:
        """Record the last send, claim and render the next, in one short transaction; send it.

        Return what was sent (recorded with the next claim) and whether a message was due.
        """
        rendered = instead = None
        with writing():
            kept = finish(done.message_id, self.owner, done.outcome) if done else None
            claimed = claim_due_messages(self.owner, 1, utcnow(), self.lease)
            if claimed:
                rendered, instead = self._render(claimed[0])
                if instead is not None:
                    finish(claimed[0], self.owner, instead)
                elif rendered is not None and rendered.save is not None:
                    rendered.save()
            db.session.commit()
        if done is not None:
            self._count(done.outcome.kind if kept else "lost_lease")
        if not claimed:
            return None, False
        if rendered is None:
            self._count(instead.kind if instead else "failed")
            return None, True
        outcome = self.mailer.send(rendered.email)  # no transaction is open during the call
        return Sent(claimed[0], outcome), True

    def _record(self, done: Sent) -> None:
        """Record one send's outcome in a transaction of its own."""
        try:
            with writing():
                kept = finish(done.message_id, self.owner, done.outcome)
                db.session.commit()
        except Exception:
            log.exception(
                "outbox: could not record message %s; its lease will expire", done.message_id
            )
            db.session.rollback()
            return
        self._count(done.outcome.kind if kept else "lost_lease")

    def _render(self, message_id: int) -> tuple[Rendered | None, Outcome | None]:
        """Render a claimed message; or say why it is not sent (cancelled, or failed)."""
        message = db.session.scalars(_message_statement(), {"id": message_id}).one()
        try:
            rendered = self.compose(message)
        except Skip as skip:
            return None, Outcome("cancelled", error=skip.reason)
        except Exception as error:  # a rendering bug must not stall the queue
            log.exception("outbox: could not render message %s", message_id)
            return None, Outcome("failed", error=f"could not render: {type(error).__name__}")
        email = rendered.email
        args = {**email.custom_args, "outbox_id": str(message.id)}
        email = Email(email.to, email.subject, email.text, email.html, email.headers, args)
        return Rendered(email, rendered.save), None

    def _count(self, kind: str) -> None:
        name = {"retry": "retried", "pause": "paused"}.get(kind, kind)
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)


# ---------------------------------------------------------------- what the organiser sees and does


# What an organiser sees of an event's mail: what its attendees get because they came. A
# sign-in link is the person's own business, whichever event's page it was asked for from.
EVENT_MAIL_KINDS = ("confirm", "digest", "connection", "nudge")


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


class OutboxError(DomainError):
    """A change to a message was refused; `code` is stable."""


def cancel_message(message: OutboxMessage) -> None:
    """Cancel a message that has not gone out."""
    if message.status != MessageStatus.PENDING:
        raise OutboxError("not_pending")
    now = utcnow()
    message.status = MessageStatus.CANCELLED.value
    message.cancelled_at = now
    message.cancel_reason = "cancelled by the organiser"
    message.updated_at = now
    db.session.flush()


def retry_message(message: OutboxMessage) -> None:
    """Try a failed message again, now, with a fresh set of attempts."""
    if message.status != MessageStatus.FAILED:
        raise OutboxError("not_failed")
    now = utcnow()
    message.status = MessageStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = now
    message.updated_at = now
    db.session.flush()


def resume_sending() -> None:
    """Lift a pause on all sending (after fixing the API key, say)."""
    state = sender_state()
    state.paused_until = None
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
