"""Outbox worker processes, as operators run them, sharing one database and one fake SendGrid.

`flask --app app outbox worker` runs in processes of its own against a database built by the
real migrations: a SQLite file by default, PostgreSQL when TEST_DATABASE_URL is set. The fake
SendGrid runs in this process, so every request every worker made can be counted by the
outbox id it carried.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

import app as app_module
from app import create_app
from domain.db import db, utcnow, writing
from domain.models import MessageStatus, OutboxMessage, Person
from tests.conftest import POSTAL_ADDRESS, PUBLIC_URL, wait_until
from tests.fake_sendgrid import FakeSendGrid

ROOT = Path(app_module.__file__).resolve().parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SECRET_KEY = "test-secret-" + "x" * 32
WAIT = 60  # seconds: the most any subprocess or wait may take here
KINDS = ("confirm", "signin")  # rendered from the person alone: a link to confirm or sign in
SENT_LINE = re.compile(r"outbox: sent (\d+),")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """An empty database migrated with `flask db upgrade`, as an operator builds it."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'outbox.sqlite'}"
    if url.startswith("postgresql"):
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        finally:
            engine.dispose()
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return url


@pytest.fixture
def database_app(database_url: str) -> Iterator[Flask]:
    """This process's view of the workers' database: to queue messages and read the rows."""
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": database_url})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def environment(database_url: str, fake: FakeSendGrid | None = None) -> dict[str, str]:
    """The environment a deployed Rapport reads its settings from, and nothing else of ours."""
    env = {
        key: value for key, value in os.environ.items() if key not in app_module.ENVIRONMENT_KEYS
    }
    env.update(SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url, PUBLIC_URL=PUBLIC_URL)
    if fake is not None:
        env.update(
            SENDGRID_API_KEY=fake.api_key,
            SENDGRID_API_HOST=fake.url,
            MAIL_POSTAL_ADDRESS=POSTAL_ADDRESS,
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
    return env


class WorkerProcess:
    """One `flask --app app outbox worker` process, its output in a file."""

    def __init__(self, database_url: str, fake: FakeSendGrid, log: Path, *options: str) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "outbox", "worker", *options],
                cwd=ROOT,
                env=environment(database_url, fake),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self) -> int:
        """Wait for a --once worker to exit cleanly; return how many it says it sent."""
        try:
            code = self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the worker did not finish within {WAIT}s:\n{self.output()}")
        text = self.output()
        assert code == 0, text
        assert "Traceback" not in text, text
        sent = SENT_LINE.search(text)
        assert sent, text
        return int(sent.group(1))

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no handler runs, nothing is finished or recorded
        self.process.wait(WAIT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)


@pytest.fixture
def start_worker(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str, fake_sendgrid: FakeSendGrid
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*options: str) -> WorkerProcess:
        worker = WorkerProcess(
            database_url, fake_sendgrid, tmp_path / f"worker-{len(started)}.log", *options
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def queue_sign_in_emails(count: int) -> list[int]:
    """Queue `count` emails due now, to as many new people, in bulk; return their ids."""
    now = utcnow()
    tag = os.urandom(4).hex()
    with writing():
        db.session.execute(
            sa.insert(Person),
            [
                {"email": f"p{n}-{tag}@example.org", "name": f"Person {n}", "links": []}
                for n in range(count)
            ],
        )
        people = db.session.execute(
            sa.select(Person.id, Person.email).where(Person.email.like(f"%-{tag}@example.org"))
        ).all()
        db.session.execute(
            sa.insert(OutboxMessage),
            [
                {
                    "dedupe_key": f"{KINDS[n % 2]}:{person_id}:{tag}",
                    "kind": KINDS[n % 2],
                    "person_id": person_id,
                    "to_email": email,
                    "status": MessageStatus.PENDING.value,
                    "send_after": now,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for n, (person_id, email) in enumerate(people)
            ],
        )
        db.session.commit()
    ids = list(db.session.scalars(sa.select(OutboxMessage.id).order_by(OutboxMessage.id)))
    db.session.rollback()
    assert len(ids) == count
    return ids


def requests_per_message(fake: FakeSendGrid) -> Counter[int]:
    return Counter(
        int(r.body["personalizations"][0]["custom_args"]["outbox_id"]) for r in fake.requests
    )


def statuses() -> Counter[str]:
    db.session.rollback()
    counted = Counter(
        dict(
            db.session.execute(
                sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
            ).all()
        )
    )
    db.session.rollback()
    return counted


def test_two_worker_processes_send_each_of_2000_messages_once(
    database_app: Flask, fake_sendgrid: FakeSendGrid, start_worker: Callable[..., WorkerProcess]
) -> None:
    ids = queue_sign_in_emails(2000)
    started = time.monotonic()

    workers = [start_worker("--once", "--threads", "4") for _ in range(2)]
    sent = [worker.finish() for worker in workers]

    elapsed = time.monotonic() - started
    per_message = requests_per_message(fake_sendgrid)
    assert set(per_message) == set(ids)
    assert [n for n in per_message.values() if n != 1] == []
    assert len(fake_sendgrid.all_requests) == 2000
    assert statuses() == {"sent": 2000}
    assert sum(sent) == 2000
    assert all(n > 0 for n in sent), sent  # both processes took part
    # Each row names the one request that carried it.
    provider_ids = dict(
        db.session.execute(sa.select(OutboxMessage.id, OutboxMessage.provider_message_id)).all()
    )
    db.session.rollback()
    for recorded in fake_sendgrid.requests:
        outbox_id = int(recorded.body["personalizations"][0]["custom_args"]["outbox_id"])
        assert provider_ids[outbox_id] == recorded.message_id
    print(f"2 processes x 4 threads: 2000 messages in {elapsed:.1f}s, split {sent}")


def test_killed_workers_lose_nothing_and_send_at_most_one_twice_each(
    database_app: Flask, fake_sendgrid: FakeSendGrid, start_worker: Callable[..., WorkerProcess]
) -> None:
    ids = queue_sign_in_emails(400)
    fake_sendgrid.delay = 0.05
    lease = 2  # seconds; a killed worker's messages are reaped this soon after
    in_flight: set[int] = set()
    kills = 2

    for _ in range(kills):
        # Settling at once: a worker that starts after the previous one's lease ran out reaps
        # that worker's message and must send it again, not leave it for a quarter of an hour.
        worker = start_worker(
            "--threads", "1", "--poll", "0.1", "--lease", str(lease), "--settle-after", "0"
        )
        fake_sendgrid.wait_for(len(fake_sendgrid.requests) + 40, timeout=WAIT)
        worker.kill()
        db.session.rollback()
        left = db.session.scalars(
            sa.select(OutboxMessage.id).where(OutboxMessage.status == MessageStatus.SENDING)
        ).all()
        db.session.rollback()
        assert len(left) <= 1 + len(in_flight)  # one thread: at most one message in hand
        in_flight.update(left)

    # Once the dead workers' leases have run out, a new worker reaps, reconciles and sends.
    def leases_ran_out() -> bool:
        running = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == MessageStatus.SENDING)
            # a second past expiry, so the next worker's clock is past it too
            .where(OutboxMessage.lease_expires_at >= utcnow() - timedelta(seconds=1))
        )
        db.session.rollback()
        return running == 0

    wait_until(leases_ran_out, timeout=lease + 10)
    start_worker("--once", "--threads", "4", "--settle-after", "0").finish()

    per_message = requests_per_message(fake_sendgrid)
    assert set(per_message) == set(ids)  # nothing lost
    assert statuses() == {"sent": 400}
    twice = {outbox_id for outbox_id, n in per_message.items() if n > 1}
    assert max(per_message.values()) <= 2
    assert len(twice) <= kills
    assert twice <= in_flight  # only a message in hand at a kill can go out twice
    print(f"{kills} kills: in hand {sorted(in_flight)}, sent twice {sorted(twice)}")
