"""How fast one outbox worker drains a backlog of digests into a SendGrid that takes 50 ms a call.

    .venv/bin/python bench/outbox_drain.py [--threads 8] [--messages 5000] [--delay 0.05]
                                           [--database-url URL] [--processes 1]

Queues `--messages` digests due now (each to a confirmed, consenting attendee with one accepted
connection) in a fresh database (a temporary SQLite file by default; PostgreSQL with
--database-url, whose public schema is dropped first), then runs one
`flask --app app outbox worker --once --threads T` process against a FakeSendGrid that adds
`--delay` seconds to every answer. With T threads each waiting `delay` per call, no worker can
beat T / delay messages per second: that is the ideal the result is compared with
(P x T / delay with --processes P).

Two baselines are measured in the same run, so the ratio can be read against this machine:

* HTTP only: T threads in a process of their own sending the same kind of email through
  SendGridMailer to the same fake (no database, no rendering): what the client, the fake
  and the machine allow;
* no delay: the same worker draining `--baseline-messages` digests from a zero-delay fake:
  the database and rendering cost per message, the ceiling when SendGrid answers at once.

Exits 1 if the worker did not get all messages accepted within `--limit` seconds (60).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from domain.db import db, utcnow, writing  # noqa: E402
from domain.events import EventDetails, create_event  # noqa: E402
from domain.mailer import Email, SendGridMailer  # noqa: E402
from domain.models import Attendance, Connection, OutboxMessage, Person  # noqa: E402
from domain.organisers import create_organiser  # noqa: E402
from tests.fake_sendgrid import FakeSendGrid  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
PUBLIC_URL = "https://rapport.example"
MAIL_FROM = "Rapport <hello@rapport.example>"
LOCAL = "127.0.0.1,localhost"


# ------------------------------------------------------------------ the backlog


def fresh_database(url: str) -> None:
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            db.drop_all()
        db.create_all()
        db.session.remove()
        db.engine.dispose()


def queue_digests(url: str, count: int) -> None:
    """Queue `count` digests due now: pairs of attendees, connected, each owed a digest."""
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url, "PUBLIC_URL": PUBLIC_URL})
    now = utcnow()
    with app.app_context(), writing():
        organiser = create_organiser("organiser@rapport.example", "correct horse battery")
        start = now.replace(tzinfo=None, microsecond=0) - timedelta(hours=3)
        event = create_event(
            organiser,
            EventDetails(
                name="Benchmark evening",
                starts_at=start,
                ends_at=start + timedelta(hours=2),
                timezone="UTC",
                venue="Here",
                description="",
            ),
        )
        db.session.execute(
            sa.insert(Person),
            [
                {
                    "email": f"p{n}@example.org",
                    "name": f"Person {n}",
                    "about": "Likes queues",
                    "links": [f"https://example.org/p{n}"],
                    "email_confirmed_at": now,
                }
                for n in range(count)
            ],
        )
        people = db.session.execute(sa.select(Person.id, Person.email).order_by(Person.id)).all()
        db.session.execute(
            sa.insert(Attendance),
            [
                {
                    "event_id": event.id,
                    "person_id": person_id,
                    "badge_token_hash": hashlib.sha256(f"badge{person_id}".encode()).hexdigest(),
                    "checked_in_at": now,
                    "profile_consent_at": now,
                    "followup_consent_at": now,
                }
                for person_id, _ in people
            ],
        )
        attendances = dict(db.session.execute(sa.select(Attendance.person_id, Attendance.id)).all())
        ordered = [attendances[person_id] for person_id, _ in people]
        db.session.execute(
            sa.insert(Connection),
            [
                {
                    "event_id": event.id,
                    "low_attendance_id": low,
                    "high_attendance_id": high,
                    "requested_by_id": low,
                    "status": "accepted",
                    "low_note": "Talked about retries",
                    "created_at": now,
                    "accepted_at": now,
                }
                for low, high in zip(ordered[0::2], ordered[1::2], strict=False)
            ],
        )
        db.session.execute(
            sa.insert(OutboxMessage),
            [
                {
                    "dedupe_key": f"digest:{attendances[person_id]}",
                    "kind": "digest",
                    "person_id": person_id,
                    "event_id": event.id,
                    "to_email": email,
                    "status": "pending",
                    "send_after": now,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for person_id, email in people
            ],
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def sent_count(url: str) -> dict[str, int]:
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        try:
            return dict(
                db.session.execute(
                    sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
                ).all()
            )
        finally:
            db.session.remove()
            db.engine.dispose()


# ------------------------------------------------------------------ running a worker


@dataclass
class Drain:
    messages: int
    accepted: int
    elapsed: float  # from starting the process until the last message was accepted
    steady: float  # from the first request received until the last accepted
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed else 0.0

    @property
    def steady_rate(self) -> float:
        return (self.accepted - 1) / self.steady if self.steady else 0.0


def drain(
    url: str, count: int, threads: int, delay: float, limit: float, processes: int = 1
) -> Drain:
    """Queue `count` digests and time worker processes (one by default) sending them all."""
    fresh_database(url)
    queue_digests(url, count)
    with FakeSendGrid(delay=delay) as fake, tempfile.TemporaryFile("w+") as errors:
        env = {
            **os.environ,
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "PUBLIC_URL": PUBLIC_URL,
            "MAIL_FROM": MAIL_FROM,
            "SENDGRID_API_KEY": fake.api_key,
            "SENDGRID_API_HOST": fake.url,
            "NO_PROXY": LOCAL,
            "no_proxy": LOCAL,
        }
        command = [sys.executable, "-m", "flask", "--app", "app", "outbox", "worker", "--once"]
        started = time.monotonic()
        workers = [
            subprocess.Popen(
                [*command, "--threads", str(threads)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            for _ in range(processes)
        ]
        try:
            with contextlib.suppress(TimeoutError):
                fake.wait_for(count, timeout=limit)
            elapsed = time.monotonic() - started
            accepted = len(fake.requests)
            first = fake.all_requests[0].received_at if fake.all_requests else 0.0
            last = max((r.received_at for r in fake.requests), default=first)
            for worker in workers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.wait(limit)
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait(10)
        errors.seek(0)
        text = errors.read()
        if any(worker.returncode != 0 for worker in workers) or "Traceback" in text:
            print(text, file=sys.stderr)
    return Drain(count, accepted, elapsed, last - first, sent_count(url))


# ------------------------------------------------------------------ the HTTP-only baseline


def sample_email(n: int) -> Email:
    """About the size of a digest with one person in it."""
    text = f"Hi Person {n},\n\n" + "Here's who you connected with at Benchmark evening.\n" * 12
    html = "<html><body>" + "<p>Here's who you connected with.</p>" * 30 + "</body></html>"
    headers = {
        "List-Unsubscribe": f"<{PUBLIC_URL}/u/{'t' * 43}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return Email(
        f"p{n}@example.org", "The people you met", text, html, headers, {"outbox_id": str(n)}
    )


def http_client(url: str, key: str, count: int, threads: int) -> None:
    """Run in a process of its own: send `count` emails with `threads` threads, print seconds."""
    mailer = SendGridMailer(key, MAIL_FROM, host=url)
    numbers = iter(range(count))
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            outcome = mailer.send(sample_email(n))
            if outcome.kind != "sent":
                failures.append(f"{outcome.kind}: {outcome.error}")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    print(f"{time.monotonic() - started:.6f} {len(failures)}")


def http_baseline(count: int, threads: int, delay: float) -> tuple[float, int]:
    with FakeSendGrid(delay=delay) as fake:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--http-client",
                fake.url,
                fake.api_key,
                "--messages",
                str(count),
                "--threads",
                str(threads),
            ],
            env={**os.environ, "NO_PROXY": LOCAL, "no_proxy": LOCAL},
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        seconds, failures = done.stdout.split()
        return float(seconds), int(failures)


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes (the ideal scales with them)"
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--baseline-messages", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--http-client", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.http_client:
        http_client(*args.http_client, args.messages, args.threads)
        return 0

    senders = args.processes * args.threads
    ideal = senders / args.delay if args.delay else float("inf")
    workers = (
        f"one worker, {args.threads} threads"
        if args.processes == 1
        else f"{args.processes} worker processes, {args.threads} threads each"
    )
    print(f"{workers}, fake SendGrid adding {args.delay * 1000:.0f} ms")
    print(f"ideal: {senders} / {args.delay} s = {ideal:.0f} messages/s")

    seconds, failures = http_baseline(args.baseline_messages, senders, args.delay)
    http_rate = args.baseline_messages / seconds
    print(
        f"baseline, HTTP only ({senders} client threads, no database): "
        f"{args.baseline_messages} in {seconds:.2f} s = {http_rate:.0f}/s "
        f"({http_rate / ideal:.0%} of ideal){f', {failures} FAILED' if failures else ''}"
    )

    with tempfile.TemporaryDirectory() as directory:
        if args.database_url:
            url = base_url = args.database_url
        else:
            url = f"sqlite:///{Path(directory) / 'drain.sqlite'}"
            base_url = f"sqlite:///{Path(directory) / 'baseline.sqlite'}"
        print(f"database: {sa.make_url(url).get_backend_name()}")

        zero = drain(
            base_url, args.baseline_messages, args.threads, 0.0, args.limit, args.processes
        )
        print(
            f"baseline, no delay: {zero.accepted}/{zero.messages} in {zero.elapsed:.2f} s = "
            f"{zero.rate:.0f}/s (steady {zero.steady_rate:.0f}/s after start-up)"
        )

        result = drain(url, args.messages, args.threads, args.delay, args.limit, args.processes)
    print(
        f"drain: {result.accepted}/{result.messages} accepted in {result.elapsed:.2f} s "
        f"(process start included) = {result.rate:.0f} messages/s"
    )
    print(f"       steady state {result.steady_rate:.0f} messages/s after start-up")
    print(f"       rows: {result.statuses}")
    print(
        f"ratio to ideal: {result.rate / ideal:.0%} overall, {result.steady_rate / ideal:.0%} "
        f"steady; to the HTTP-only baseline: {result.steady_rate / http_rate:.0%}"
    )
    if result.accepted < result.messages or result.elapsed > args.limit:
        print(f"FAIL: not all {result.messages} accepted within {args.limit:.0f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
