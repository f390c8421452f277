"""The outbox worker against a fake SendGrid, through the real sendgrid client.

Nothing is mocked: the worker claims rows in the test database, renders them with the app's
composer, sends them with SendGridMailer over HTTP to FakeSendGrid on 127.0.0.1, and records
each outcome. The tests look at what is observable: the rows, and the requests the fake got.
Runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from blueprints.emails import compose, make_mailer
from domain.checkin import CheckInResult
from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.delivery import record_events
from domain.limits import (
    LEASE,
    PAUSE_AFTER_AUTH_ERROR,
    RATE_LIMIT_JITTER_SECONDS,
    RECONCILE_AFTER,
)
from domain.mailer import Email, FileMailer, Outcome, OutcomeKind, SendGridMailer
from domain.models import Event, MessageStatus, OutboxMessage, Person, SenderState
from domain.outbox import (
    claim_due_messages,
    enqueue,
    finish,
    reap_expired_leases,
    reconcile_uncertain,
)
from domain.sending import SENDER_STATE_ID, resume_sending, sender_state
from domain.worker import STAT_OF_KIND, Worker, WorkerStats
from tests.conftest import POSTAL_ADDRESS, PUBLIC_URL, wait_until
from tests.fake_sendgrid import FakeSendGrid, Recorded, WebhookSigner, event
from tests.fake_sendgrid import Outcome as Script

CLIENT_TIMEOUT = 2  # seconds the mailer waits for the fake; a stall outlasts it
MAIL_FROM = "Rapport Follow-ups <followups@rapport.example>"
HOSTILE = "Brunch\r\nBcc: x@evil.example"
SLACK = timedelta(seconds=5)  # for comparing times taken in the test with times in the rows


# ------------------------------------------------------------------ helpers


@pytest.fixture
def mailer(sendgrid_app: Flask) -> SendGridMailer:
    """The app's own mailer (make_mailer), pointed at the fake, with a short client timeout."""
    sendgrid_app.config["MAIL_FROM"] = MAIL_FROM
    made = make_mailer(sendgrid_app)
    assert isinstance(made, SendGridMailer)
    made.client.client.timeout = CLIENT_TIMEOUT
    return made


def new_worker(app: Flask, mailer: Any, **options: Any) -> Worker:
    return Worker(
        mailer=mailer,
        compose=compose,
        context=app.app_context,
        threads=options.pop("threads", 1),
        poll_seconds=options.pop("poll_seconds", 0.05),
        **options,
    )


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """A write transaction of the test's own session, begun now rather than in an old snapshot."""
    db.session.rollback()
    with writing():
        yield
        db.session.commit()


def in_own_context(app: Flask, worker: Worker) -> bool:
    """One claim-send-record turn, in an app context (a session) of its own, as a thread has."""
    with app.app_context():
        try:
            return worker.process_one()
        finally:
            db.session.remove()


def process_one(app: Flask, worker: Worker) -> bool:
    db.session.rollback()  # the test's own session holds no transaction meanwhile
    return in_own_context(app, worker)


def run_once(app: Flask, worker: Worker) -> None:
    db.session.rollback()
    worker.run(once=True)


def row(message_id: int) -> OutboxMessage:
    """Read a message as it is now (not from an old snapshot), and end the read."""
    db.session.rollback()
    message = db.session.get_one(OutboxMessage, message_id)
    db.session.expunge(message)
    db.session.rollback()
    return message


def state() -> SenderState | None:
    db.session.rollback()
    found = db.session.get(SenderState, SENDER_STATE_ID)
    if found is not None:
        db.session.expunge(found)
    db.session.rollback()
    return found


def outbox_id_of(recorded: Recorded) -> int:
    return int(recorded.body["personalizations"][0]["custom_args"]["outbox_id"])


def sent_ids(fake: FakeSendGrid) -> list[int]:
    return [outbox_id_of(r) for r in fake.requests]


def set_columns(message_id: int, **values: Any) -> None:
    with transaction():
        db.session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
        )


def near(moment: datetime | None, expected: datetime, slack: timedelta = SLACK) -> bool:
    return moment is not None and abs(moment - expected) <= slack


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def due_message(
    app: Flask,
    make_event: Callable[..., Event],
    make_attendee: Callable[..., CheckInResult],
) -> Callable[..., int]:
    """Queue a sign-in email due now for a new attendee; return its id."""
    events: list[Event] = []

    def make(kind: str = "signin") -> int:
        if not events:
            events.append(make_event())
        event_ = events[0]
        person = make_attendee(event_).attendance.person
        with transaction():
            message = enqueue(
                kind=kind,
                dedupe_key=f"{kind}:{person.id}",
                person=person,
                event=event_,
                send_after=utcnow(),
            )
            assert message is not None
            return message.id

    return make


# ------------------------------------------------------------------ make_mailer


@pytest.mark.parametrize(
    "host",
    [
        "https://api.sendgrid.com",
        "https://api.eu.sendgrid.com",
        "http://127.0.0.1.evil.example:8080",
        "http://localhost@evil.example",
        "http://10.0.0.1:8080",
    ],
)
def test_make_mailer_refuses_a_host_that_is_not_loopback_under_test(app: Flask, host: str) -> None:
    app.config.update(SENDGRID_API_KEY="SG.test-key", SENDGRID_API_HOST=host)
    with pytest.raises(RuntimeError, match="SENDGRID_API_HOST"):
        make_mailer(app)


@pytest.mark.parametrize("host", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"])
def test_make_mailer_accepts_a_loopback_host_under_test(app: Flask, host: str) -> None:
    app.config.update(
        SENDGRID_API_KEY="SG.test-key", SENDGRID_API_HOST=host, MAIL_POSTAL_ADDRESS=POSTAL_ADDRESS
    )
    assert isinstance(make_mailer(app), SendGridMailer)


def test_make_mailer_without_a_key_writes_files(app: Flask) -> None:
    app.config.update(SENDGRID_API_KEY=None, SENDGRID_API_HOST="https://api.sendgrid.com")
    assert isinstance(make_mailer(app), FileMailer)


# ------------------------------------------------------------------ the retry matrix


def test_accepted_is_sent_with_the_message_id(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    before = utcnow()

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    [recorded] = fake_sendgrid.requests
    assert recorded.status == 202
    assert outbox_id_of(recorded) == message_id
    message = row(message_id)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == recorded.message_id
    assert message.last_status_code == 202
    assert message.last_error is None
    assert message.attempts == 1
    assert message.lease_owner is None and message.lease_expires_at is None
    assert near(message.sent_at, before)
    # Sent means done: nothing is due any more.
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1


def test_rate_limited_waits_for_the_reset_without_using_an_attempt(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    limited, other = due_message(), due_message()
    fake_sendgrid.script(Script(429, reset=1))
    worker = new_worker(sendgrid_app, mailer)
    before = time.time()

    assert process_one(sendgrid_app, worker)

    after = time.time()
    message = row(limited)
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 0  # refunded
    assert message.last_status_code == 429
    assert message.last_error is not None and message.last_error.startswith("429")
    # X-RateLimit-Reset is whole seconds: ceil(the fake's clock + 1).
    # The message waits for the reset plus a little jitter, so workers don't wake together.
    reset = message.next_attempt_at.timestamp()
    assert before + 1 <= reset <= after + 2 + RATE_LIMIT_JITTER_SECONDS
    throttle = state()
    assert throttle is not None and throttle.throttled_until is not None
    spread = (message.next_attempt_at - throttle.throttled_until).total_seconds()
    assert 0 <= spread <= RATE_LIMIT_JITTER_SECONDS

    # Every worker holds back until the reset: the other due message is not even claimed.
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert row(other).status == MessageStatus.PENDING
    assert row(other).attempts == 0
    assert len(fake_sendgrid.all_requests) == 1

    # Once the reset (and the limited message's jitter) has passed, the worker sends both.
    wait_until(
        lambda: process_one(sendgrid_app, worker) and len(sent_ids(fake_sendgrid)) == 2,
        timeout=reset - time.time() + 10,
    )
    assert sorted(sent_ids(fake_sendgrid)) == sorted([limited, other])
    assert row(limited).status == MessageStatus.SENT
    assert row(limited).attempts == 1


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_error_retries_later_and_uses_an_attempt(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    code: int,
) -> None:
    message_id = due_message()
    fake_sendgrid.script(code)
    before = utcnow()

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    message = row(message_id)
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 1
    assert message.last_status_code == code
    assert message.last_error is not None and message.last_error.startswith(str(code))
    # Exponential backoff with jitter: 1 s to 30 * 2**1 s after the first attempt.
    assert before + timedelta(seconds=1) <= message.next_attempt_at
    assert message.next_attempt_at <= utcnow() + timedelta(seconds=60)
    assert message.lease_owner is None
    assert fake_sendgrid.requests == []
    # Not due yet: the worker leaves it alone.
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1


def test_server_errors_fail_the_message_after_max_attempts(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    set_columns(message_id, max_attempts=3)
    worker = new_worker(sendgrid_app, mailer)

    for attempt in (1, 2):
        fake_sendgrid.script(500)
        assert process_one(sendgrid_app, worker)
        message = row(message_id)
        assert (message.status, message.attempts) == (MessageStatus.PENDING, attempt)
        set_columns(message_id, next_attempt_at=utcnow())  # the backoff has passed

    fake_sendgrid.script(500)
    assert process_one(sendgrid_app, worker)

    message = row(message_id)
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 3
    assert message.last_status_code == 500
    assert message.last_error is not None and message.last_error.startswith("500")
    assert len(fake_sendgrid.all_requests) == 3
    assert fake_sendgrid.requests == []
    assert not process_one(sendgrid_app, worker)


@pytest.mark.parametrize("code", [400, 413])
def test_invalid_payload_fails_at_once(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    code: int,
) -> None:
    message_id = due_message()
    fake_sendgrid.script(code)

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    message = row(message_id)
    assert message.status == MessageStatus.FAILED
    assert message.attempts == 1
    assert message.last_status_code == code
    assert message.last_error is not None and message.last_error.startswith(f"{code} ")
    assert message.lease_owner is None
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1


@pytest.mark.parametrize("code", [401, 403])
def test_auth_error_pauses_all_sending_and_keeps_the_message(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    code: int,
) -> None:
    refused, other = due_message(), due_message()
    fake_sendgrid.script(code)
    before = utcnow()

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    message = row(refused)
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 0  # refunded
    assert message.last_status_code == code
    pause = state()
    assert pause is not None
    assert near(pause.paused_until, before + PAUSE_AFTER_AUTH_ERROR)
    assert pause.pause_reason is not None and pause.pause_reason.startswith(str(code))
    assert message.next_attempt_at == pause.paused_until

    # Paused for everyone: a due message is neither claimed nor sent, by any worker.
    for _ in range(2):
        assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1
    assert row(other).status == MessageStatus.PENDING
    assert row(other).attempts == 0

    # The event's owner fixes the key and resumes: due messages go out again.
    with transaction():
        event = db.session.get_one(OutboxMessage, refused).event
        assert resume_sending(event.organiser, event, administrator=False, now=utcnow())
    run_once(sendgrid_app, new_worker(sendgrid_app, mailer))
    # The refused message was parked until the pause's end; resuming sends it at once too.
    assert sorted(sent_ids(fake_sendgrid)) == sorted([refused, other])
    assert row(other).status == MessageStatus.SENT
    assert row(refused).status == MessageStatus.SENT


def test_an_uncertain_send_is_settled_when_the_worker_says(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    mailer.client.client.timeout = 1
    fake_sendgrid.script(Script("stall", seconds=10))
    settle = timedelta(minutes=2)
    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer, settle_after=settle))
    message = row(message_id)
    assert message.status == MessageStatus.UNCERTAIN
    assert near(message.next_attempt_at, utcnow() + settle)


def test_stall_past_the_client_timeout_is_uncertain(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    mailer.client.client.timeout = 1
    fake_sendgrid.script(Script("stall", seconds=10))
    started = time.monotonic()

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    assert time.monotonic() - started < 5
    message = row(message_id)
    assert message.status == MessageStatus.UNCERTAIN
    assert message.attempts == 1
    assert message.last_error is not None and "TimeoutError" in message.last_error
    assert near(message.next_attempt_at, utcnow() + RECONCILE_AFTER)
    assert message.lease_owner is None
    assert fake_sendgrid.requests == []
    assert len(fake_sendgrid.all_requests) == 1
    # Uncertain is not pending: no worker sends it again before it is reconciled.
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1


def test_dropped_connection_after_acceptance_is_uncertain(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    fake_sendgrid.script("drop")

    assert process_one(sendgrid_app, new_worker(sendgrid_app, mailer))

    message = row(message_id)
    assert message.status == MessageStatus.UNCERTAIN
    assert message.attempts == 1
    assert message.last_error is not None and "RemoteDisconnected" in message.last_error
    assert message.provider_message_id is None  # the answer never came
    assert near(message.next_attempt_at, utcnow() + RECONCILE_AFTER)
    # SendGrid did take it: only reconciliation can tell.
    assert sent_ids(fake_sendgrid) == [message_id]
    assert not process_one(sendgrid_app, new_worker(sendgrid_app, mailer))
    assert len(fake_sendgrid.all_requests) == 1


def test_connection_refused_retries_later(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, due_message: Any
) -> None:
    message_id = due_message()
    sendgrid_app.config["SENDGRID_API_HOST"] = f"http://127.0.0.1:{closed_port()}"
    refused_mailer = make_mailer(sendgrid_app)
    before = utcnow()

    assert process_one(sendgrid_app, new_worker(sendgrid_app, refused_mailer))

    message = row(message_id)
    assert message.status == MessageStatus.PENDING
    assert message.attempts == 1
    assert message.last_status_code is None
    assert message.last_error is not None and message.last_error.startswith("connection failed")
    assert before + timedelta(seconds=1) <= message.next_attempt_at
    assert fake_sendgrid.all_requests == []


# ------------------------------------------------------------------ a worker that died mid-send


def claim_as_dead_worker(message_id: int, owner: str = "dead-host:1:0") -> datetime:
    """Claim a message as a worker that then vanished, so long ago that its lease ran out and
    any wait for SendGrid's webhook has passed too; return when the lease had run out."""
    claimed_at = utcnow() - LEASE - RECONCILE_AFTER - timedelta(minutes=1)
    set_columns(message_id, next_attempt_at=claimed_at - timedelta(seconds=1))
    with transaction():
        assert claim_due_messages(owner, 1, claimed_at) == [message_id]
    message = row(message_id)
    assert message.status == MessageStatus.SENDING
    assert message.lease_owner == owner
    assert message.lease_expires_at is not None
    return message.lease_expires_at + timedelta(seconds=1)


def send_as_dead_worker(
    app: Flask, mailer: SendGridMailer, fake: FakeSendGrid, message_id: int
) -> Recorded:
    """Render and send a claimed message, then "die" before recording the outcome."""
    with app.app_context(), writing():
        rendered = compose(db.session.get_one(OutboxMessage, message_id))
        assert rendered.save is not None
        rendered.save()
        email = rendered.email
        db.session.commit()
        db.session.remove()
    email = dataclasses.replace(email, custom_args={"outbox_id": str(message_id)})
    outcome = mailer.send(email)
    assert outcome.kind == "sent"
    [recorded] = [r for r in fake.requests if r.message_id == outcome.provider_id]
    return recorded


def reap_and_reconcile(expired_at: datetime) -> tuple[int, tuple[int, int]]:
    """Reap leases as the reaper did once they had run out, then reconcile as of now."""
    with transaction():
        reaped = reap_expired_leases(expired_at)
        settled = reconcile_uncertain(expired_at + RECONCILE_AFTER)
    return reaped, settled


@pytest.mark.parametrize("via", ["record_events", "signed_webhook"])
def test_lost_lease_with_a_webhook_event_is_confirmed_and_not_sent_again(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    via: str,
) -> None:
    message_id = due_message()
    expired_at = claim_as_dead_worker(message_id)
    recorded = send_as_dead_worker(sendgrid_app, mailer, fake_sendgrid, message_id)
    email = recorded.body["personalizations"][0]["to"][0]["email"]
    processed = event("processed", str(message_id), email, message_id=recorded.message_id)

    # SendGrid's event arrives while the row still says a worker is sending it.
    if via == "record_events":
        with transaction():
            assert record_events([processed]) == 1
    else:
        signer = WebhookSigner()
        sendgrid_app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = signer.public_key
        body, headers = signer.batch([processed])
        db.session.rollback()
        response = sendgrid_app.test_client().post(
            "/webhooks/sendgrid",
            data=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 204
    assert row(message_id).status == MessageStatus.SENDING

    reaped, settled = reap_and_reconcile(expired_at)

    assert reaped == 1
    assert settled == (1, 0)
    message = row(message_id)
    assert message.status == MessageStatus.SENT
    assert message.sent_at is not None
    assert message.delivery_state == "processed"

    run_once(sendgrid_app, new_worker(sendgrid_app, mailer, threads=2))
    assert len(fake_sendgrid.all_requests) == 1  # the dead worker's, and no second one
    assert row(message_id).status == MessageStatus.SENT


@pytest.mark.parametrize("died", ["before_sending", "after_sending"])
def test_lost_lease_without_a_webhook_event_is_sent_again_once(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    died: str,
) -> None:
    message_id = due_message()
    expired_at = claim_as_dead_worker(message_id)
    if died == "after_sending":
        send_as_dead_worker(sendgrid_app, mailer, fake_sendgrid, message_id)
    before = len(fake_sendgrid.requests)

    with transaction():
        assert reap_expired_leases(expired_at) == 1
    message = row(message_id)
    assert message.status == MessageStatus.UNCERTAIN
    assert message.lease_owner is None
    assert message.last_error is not None and "lease expired" in message.last_error
    with transaction():
        assert reconcile_uncertain(expired_at) == (0, 0)  # not yet: the webhook may still speak
        assert reconcile_uncertain(expired_at + RECONCILE_AFTER) == (0, 1)
    assert row(message_id).status == MessageStatus.PENDING

    run_once(sendgrid_app, new_worker(sendgrid_app, mailer, threads=2))

    assert len(fake_sendgrid.requests) == before + 1
    assert sent_ids(fake_sendgrid)[-1] == message_id
    message = row(message_id)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id == fake_sendgrid.requests[-1].message_id
    assert message.attempts == 2
    run_once(sendgrid_app, new_worker(sendgrid_app, mailer, threads=2))
    assert len(fake_sendgrid.all_requests) == before + 1


# ------------------------------------------------------------------ fencing


def test_finish_by_a_worker_whose_lease_was_taken_over_changes_nothing(
    app: Flask, due_message: Any
) -> None:
    message_id = due_message()
    expired_at = claim_as_dead_worker(message_id, owner="slow-host:1:a")
    assert reap_and_reconcile(expired_at) == (1, (0, 1))
    with transaction():
        assert claim_due_messages("new-host:2:b", 1) == [message_id]

    with transaction():
        kept = finish(message_id, "slow-host:1:a", Outcome("sent", 202, provider_id="stale"))

    assert kept is False
    message = row(message_id)
    assert message.status == MessageStatus.SENDING
    assert message.lease_owner == "new-host:2:b"
    assert message.provider_message_id is None
    assert message.attempts == 2

    with transaction():
        assert finish(message_id, "new-host:2:b", Outcome("sent", 202, provider_id="fresh"))
    with transaction():
        assert not finish(message_id, "slow-host:1:a", Outcome("failed", 400, error="late"))
    message = row(message_id)
    assert (message.status, message.provider_message_id) == (MessageStatus.SENT, "fresh")
    assert message.last_error is None


def test_worker_that_loses_its_lease_mid_send_records_nothing(
    sendgrid_app: Flask, fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, due_message: Any
) -> None:
    message_id = due_message()
    fake_sendgrid.delay = 1.0
    slow = new_worker(sendgrid_app, mailer)
    db.session.rollback()
    thread = threading.Thread(target=in_own_context, args=(sendgrid_app, slow), daemon=True)
    thread.start()
    try:
        fake_sendgrid.wait_for_received(1, timeout=10)
        # Meanwhile, time runs out on the lease and another worker takes the message over.
        expired = utcnow() + LEASE + timedelta(seconds=1)
        settled = expired + RECONCILE_AFTER
        with transaction():
            assert reap_expired_leases(expired) == 1
            assert reconcile_uncertain(settled) == (0, 1)
            assert claim_due_messages("new-host:2:b", 1, settled) == [message_id]
    finally:
        thread.join(10)
    assert not thread.is_alive()

    assert slow.stats.lost_lease == 1
    assert slow.stats.sent == 0
    message = row(message_id)
    assert message.status == MessageStatus.SENDING
    assert message.lease_owner == "new-host:2:b"
    assert message.provider_message_id is None
    assert len(fake_sendgrid.requests) == 1


# ------------------------------------------------------------------ what goes over the wire


@pytest.fixture
def hostile_followups(
    app: Flask,
    make_event: Callable[..., Event],
    make_attendee: Callable[..., CheckInResult],
) -> dict[str, int]:
    """Two confirmed, consenting people who connected at an event whose name, and whose own
    names, hold a header injection; every message about them due now. Returns kind -> id."""
    event_ = make_event()
    ada = make_attendee(event_, email="ada@example.org", want_followups=True).attendance
    bob = make_attendee(event_, email="bob@example.org", want_followups=True).attendance
    with transaction():
        for attendance in (ada, bob):
            attendance.person.email_confirmed_at = utcnow()
        request_connection(ada, bob)
        connection = request_connection(bob, ada)
        assert connection.accepted
        enqueue(
            kind="connection",
            dedupe_key=f"connection:{connection.id}:{ada.id}",
            person=ada.person,
            event=event_,
            connection=connection,
            send_after=utcnow(),
        )
    # Straight into the rows, past every form's validation.
    with transaction():
        db.session.execute(sa.update(Event).where(Event.id == event_.id).values(name=HOSTILE))
        db.session.execute(
            sa.update(Person)
            .where(Person.id.in_([ada.person_id, bob.person_id]))
            .values(name=HOSTILE)
        )
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.event_id == event_.id)
            .values(next_attempt_at=utcnow())
        )
    rows = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.person_id == ada.person_id)
    ).all()
    kinds = {message.kind: message.id for message in rows}
    assert set(kinds) == {"confirm", "digest", "nudge", "connection"}
    return kinds


def test_every_request_is_one_clean_message_to_one_person(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    hostile_followups: dict[str, int],
) -> None:
    run_once(sendgrid_app, new_worker(sendgrid_app, mailer, threads=2))

    by_id = {outbox_id_of(r): r for r in fake_sendgrid.requests}
    assert len(by_id) == len(fake_sendgrid.requests) == len(fake_sendgrid.all_requests) == 7
    assert set(hostile_followups.values()) <= set(by_id)
    for message_id, recorded in by_id.items():
        message = row(message_id)
        assert message.status == MessageStatus.SENT, (message.kind, message.last_error)
        body = recorded.body
        [personalization] = body["personalizations"]
        assert personalization["to"] == [{"email": message.to_email}]
        assert not {"cc", "bcc"} & (set(personalization) | set(body))
        assert body["from"] == {"email": "followups@rapport.example", "name": "Rapport Follow-ups"}
        subject = personalization.get("subject") or body.get("subject")
        assert subject and "\r" not in subject and "\n" not in subject
        args = personalization["custom_args"]
        assert args["outbox_id"] == str(message_id)
        assert all(isinstance(value, str) for value in args.values())
        assert not body.get("custom_args")
        tracking = body["tracking_settings"]
        assert tracking["subscription_tracking"] == {"enable": False}
        assert tracking["click_tracking"]["enable"] is False
        assert tracking["open_tracking"]["enable"] is False
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        headers = personalization.get("headers", {})
        for value in headers.values():
            assert "\r" not in value and "\n" not in value
        if message.kind in ("digest", "connection", "nudge"):
            unsubscribe = headers["List-Unsubscribe"]
            assert unsubscribe.startswith(f"<{PUBLIC_URL}/u/") and unsubscribe.endswith(">")
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert unsubscribe[1:-1] in body["content"][0]["value"]
        else:
            assert "List-Unsubscribe" not in headers

    subjects = {
        row(i).kind: by_id[i].body["personalizations"][0]["subject"]
        for i in hostile_followups.values()
    }
    assert subjects["digest"] == "The people you met at Brunch Bcc: x@evil.example"


def test_uncertain_waits_while_an_expected_webhook_is_silent(due_message: Any) -> None:
    message_id = due_message()
    expired_at = claim_as_dead_worker(message_id)
    with transaction():
        assert reap_expired_leases(expired_at) == 1
    settled = expired_at + RECONCILE_AFTER
    # The webhook is set up but nothing has been heard since: its silence proves nothing.
    with transaction():
        assert reconcile_uncertain(settled, webhook_expected=True) == (0, 0)
    assert row(message_id).status == MessageStatus.UNCERTAIN
    assert near(row(message_id).next_attempt_at, settled + RECONCILE_AFTER)
    # Once the webhook has reported anything newer, no event for this message means resend.
    with transaction():
        sender_state().last_webhook_at = settled + timedelta(minutes=1)
    later = settled + 2 * RECONCILE_AFTER
    with transaction():
        assert reconcile_uncertain(later, webhook_expected=True) == (0, 1)
    assert row(message_id).status == MessageStatus.PENDING


def test_a_silent_webhook_holds_an_uncertain_message_a_day_at_most(due_message: Any) -> None:
    message_id = due_message()
    expired_at = claim_as_dead_worker(message_id)
    with transaction():
        reap_expired_leases(expired_at)
    a_day_later = expired_at + timedelta(hours=24, minutes=1)
    with transaction():
        assert reconcile_uncertain(a_day_later, webhook_expected=True) == (0, 1)
    assert row(message_id).status == MessageStatus.PENDING


# ------------------------------------------------------------------ outcome kinds


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (202, OutcomeKind.SENT),
        (429, OutcomeKind.RATE_LIMITED),
        (500, OutcomeKind.RETRY),
        (503, OutcomeKind.RETRY),
        (400, OutcomeKind.FAILED),
        (413, OutcomeKind.FAILED),
        (422, OutcomeKind.FAILED),
        (401, OutcomeKind.PAUSE),
        (403, OutcomeKind.PAUSE),
        (404, OutcomeKind.PAUSE),
        ("drop", OutcomeKind.UNCERTAIN),
    ],
)
def test_each_sendgrid_answer_is_one_outcome_kind(
    fake_sendgrid: FakeSendGrid, mailer: SendGridMailer, answer: int | str, kind: OutcomeKind
) -> None:
    fake_sendgrid.script(answer)
    email = Email("ana@example.org", "Hello", "Hi", "<p>Hi</p>", {}, {"outbox_id": "1"})

    outcome = mailer.send(email)

    assert outcome.kind is kind
    # A rate limit or a pause says nothing about the message: it keeps its attempts.
    assert outcome.counts_as_attempt == (kind not in (OutcomeKind.RATE_LIMITED, OutcomeKind.PAUSE))


def test_a_worker_counts_every_outcome_kind() -> None:
    counts = {field.name for field in dataclasses.fields(WorkerStats)}

    assert set(STAT_OF_KIND) == set(OutcomeKind)
    assert set(STAT_OF_KIND.values()) <= counts


def test_a_database_busy_at_housekeeping_does_not_end_the_worker(
    sendgrid_app: Flask,
    fake_sendgrid: FakeSendGrid,
    mailer: SendGridMailer,
    due_message: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Housekeeping meets a database locked past its wait (another program writing): the
    worker says so, still sends what is due, and housekeeps again next round."""
    message_id = due_message()
    calls: list[str] = []

    def locked(**_: Any) -> int:
        calls.append("reap")
        raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, _busy())

    monkeypatch.setattr("domain.worker.reap_expired_leases", locked)
    db.session.commit()
    worker = new_worker(sendgrid_app, mailer)
    with caplog.at_level("WARNING", logger="domain.worker"):
        stats = worker.run(once=True)
    assert calls == ["reap"]
    assert "housekeeping waits for the database" in caplog.text
    assert stats.sent == 1 and row(message_id).status == MessageStatus.SENT


def _busy() -> sqlite3.OperationalError:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    return busy
