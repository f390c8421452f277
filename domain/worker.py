"""The outbox worker: a few threads that claim, render, send and record due messages.

Each thread records the last send and claims the next in one short transaction, then
sends with no transaction open. Housekeeping (reaping expired leases, settling uncertain
messages, purging events whose retention ran out) runs on the main thread between waits.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from domain.db import database_unavailable, db, utcnow, writing
from domain.limits import LEASE, RECONCILE_AFTER
from domain.mailer import Email, Mailer, Outcome, OutcomeKind
from domain.models import OutboxMessage
from domain.outbox import (
    Skip,
    claim_due_messages,
    finish,
    reap_expired_leases,
    reconcile_uncertain,
)
from domain.retention import purge_due

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """A message ready to send, and what must be saved before it goes (its links' hashes)."""

    email: Email
    save: Callable[[], None] | None = None


# Renders a claimed message without writing anything, or raises Skip.
Composer = Callable[[OutboxMessage], Rendered]


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


# The WorkerStats count each outcome adds to; a rate limit is counted as a retry.
STAT_OF_KIND = {
    OutcomeKind.SENT: "sent",
    OutcomeKind.RETRY: "retried",
    OutcomeKind.RATE_LIMITED: "retried",
    OutcomeKind.FAILED: "failed",
    OutcomeKind.UNCERTAIN: "uncertain",
    OutcomeKind.PAUSE: "paused",
    OutcomeKind.CANCELLED: "cancelled",
}
LOST_LEASE = "lost_lease"


@functools.cache
def _message_statement() -> sa.Select[tuple[OutboxMessage]]:
    """Build once the query that loads a claimed message with its person and event."""
    return (
        sa.select(OutboxMessage)
        .where(OutboxMessage.id == sa.bindparam("id", type_=sa.Integer()))
        .options(joinedload(OutboxMessage.person), joinedload(OutboxMessage.event))
    )


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

    def stop_on_signals(self, announce: Callable[[str], None]) -> None:
        """Finish the messages in hand and stop on SIGTERM or SIGINT, saying so."""

        def stop(signum: int, _frame: object) -> None:
            announce(f"outbox: {signal.Signals(signum).name}: finishing the messages in hand")
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def run(self, *, once: bool = False) -> WorkerStats:
        """Run until stop is set, or with once until nothing is due; return what was done."""
        self._housekeeping_or_later()
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
                self._housekeeping_or_later()
        for thread in threads:
            thread.join()
        return self.stats

    def _housekeeping_or_later(self) -> None:
        # A database busy or out of reach for a while must not end the worker: the sending
        # threads carry on, and housekeeping tries again next round.
        try:
            self.housekeeping()
        except Exception as error:
            if database_unavailable(error):
                log.warning("outbox: housekeeping waits for the database: %s", error)
            else:
                log.exception("outbox: housekeeping failed; trying again next round")

    def housekeeping(self) -> None:
        """Reap expired leases, settle uncertain messages and purge events past retention."""
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
        with self.context(), writing():
            try:
                purged = purge_due(utcnow())
                db.session.commit()
            finally:
                db.session.remove()
        if purged.events:
            log.info("retention: purged %s", purged)

    def _loop(self, once: bool) -> None:
        with self.context():
            done: Sent | None = None
            try:
                while not self.stop.is_set():
                    try:
                        done, found = self._step(done)
                    except Exception:  # one bad message or a lost connection must not end it
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
        rendered: Rendered | Outcome | None = None
        with writing():
            kept = (
                finish(done.message_id, self.owner, done.outcome, settle_after=self.settle_after)
                if done
                else None
            )
            claimed = claim_due_messages(self.owner, 1, utcnow(), self.lease)
            if claimed:
                rendered = self._render(claimed[0])
                if isinstance(rendered, Outcome):
                    finish(claimed[0], self.owner, rendered)
                elif rendered.save is not None:
                    rendered.save()
            db.session.commit()
        if done is not None:
            self._count(STAT_OF_KIND[done.outcome.kind] if kept else LOST_LEASE)
        if not claimed:
            return None, False
        if isinstance(rendered, Outcome):
            self._count(STAT_OF_KIND[rendered.kind])
            return None, True
        assert rendered is not None  # a claimed message is rendered or given an outcome
        outcome = self.mailer.send(rendered.email)  # no transaction is open during the call
        return Sent(claimed[0], outcome), True

    def _record(self, done: Sent) -> None:
        """Record one send's outcome in a transaction of its own."""
        try:
            with writing():
                kept = finish(
                    done.message_id, self.owner, done.outcome, settle_after=self.settle_after
                )
                db.session.commit()
        except Exception:
            log.exception(
                "outbox: could not record message %s; its lease will expire", done.message_id
            )
            db.session.rollback()
            return
        self._count(STAT_OF_KIND[done.outcome.kind] if kept else LOST_LEASE)

    def _render(self, message_id: int) -> Rendered | Outcome:
        """Render a claimed message; or say why it is not sent (cancelled, or failed)."""
        message = db.session.scalars(_message_statement(), {"id": message_id}).one()
        try:
            rendered = self.compose(message)
        except Skip as skip:
            return Outcome(OutcomeKind.CANCELLED, error=skip.code)
        except Exception as error:  # a rendering bug must not stall the queue
            log.exception("outbox: could not render message %s", message_id)
            return Outcome(OutcomeKind.FAILED, error=f"could not render: {type(error).__name__}")
        # The webhook names the message by this id, so its events find their row.
        args = {**rendered.email.custom_args, "outbox_id": str(message.id)}
        return Rendered(replace(rendered.email, custom_args=args), rendered.save)

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
