"""Helpers for the follow-up email tests: a mailbox the outbox worker sends into, and the
small steps (check in, read a link out of an email, let time pass) the tests share."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from blueprints.emails import SUBJECTS, compose, make_mailer
from domain.checkin import CheckInResult
from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.followups import end_event, update_followup_settings
from domain.mailer import Email, Outcome
from domain.models import Event, MessageStatus, OutboxMessage, Person
from domain.worker import Worker, WorkerStats
from tests.conftest import PUBLIC_URL

# Each kind's subject starts its own way ("Confirm your email", "The people you met at", ...).
SUBJECT_STARTS = {kind: subject.split("{event}")[0] for kind, subject in SUBJECTS.items()}


def run_worker_once(app: Flask, mailer: Any = None) -> WorkerStats:
    """Send everything due now in one pass of the outbox worker, as its process would, through
    `mailer` or else the app's own (the real sendgrid client where SendGrid is set up)."""
    db.session.commit()  # the worker reads in its own session: it sees what is committed
    worker = Worker(
        mailer=mailer or make_mailer(app),
        compose=compose,
        context=app.app_context,
        threads=1,
        poll_seconds=0,
    )
    stats = worker.run(once=True)
    db.session.rollback()  # read what the worker wrote, not an old snapshot
    return stats


class Mailbox:
    """A mailer that keeps every email it is given; `deliver` runs the outbox worker into it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.emails: list[Email] = []
        self._lock = threading.Lock()

    def send(self, email: Email) -> Outcome:
        with self._lock:
            self.emails.append(email)
            number = len(self.emails)
        return Outcome("sent", status_code=202, provider_id=f"fake{number}")

    def deliver(self) -> WorkerStats:
        """Send everything due now, as the worker process would; return what it did."""
        return run_worker_once(self.app, self)

    def sent(self, to: str | None = None, kind: str | None = None) -> list[Email]:
        """Return the emails sent so far, to one address and of one kind if given."""
        return [
            email
            for email in self.emails
            if (to is None or email.to == to) and (kind is None or kind_of(email) == kind)
        ]

    def one(self, to: str, kind: str) -> Email:
        """Return the only email of a kind sent to an address."""
        found = self.sent(to, kind)
        assert len(found) == 1, [e.subject for e in self.sent(to)]
        return found[0]


def kind_of(email: Email) -> str:
    """Tell an email's kind from its subject."""
    kinds = [kind for kind, start in SUBJECT_STARTS.items() if email.subject.startswith(start)]
    assert len(kinds) == 1, email.subject
    return kinds[0]


def link_in(email: Email, prefix: str, part: str = "") -> str:
    """Return the path of the first link in an email's text that starts with prefix ("/m/")
    and holds part ("/in-touch/")."""
    paths = re.findall(rf"{re.escape(PUBLIC_URL)}({re.escape(prefix)}[\w\-/.]+)", email.text)
    found = [path for path in paths if part in path]
    assert found, f"no {prefix}...{part} link in: {email.text}"
    return found[0]


def messages(**where: Any) -> list[OutboxMessage]:
    """Return the outbox rows matching column values, oldest first."""
    return list(
        db.session.scalars(sa.select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id))
    )


def states(**where: Any) -> list[tuple[str, str | None]]:
    """Return (status, cancel reason) of the matching outbox rows, oldest first."""
    return [(message.status, message.cancel_reason) for message in messages(**where)]


def make_due(*conditions: sa.ColumnElement[bool]) -> int:
    """Let time pass for waiting messages: those matching fall due now; return how many."""
    past = utcnow() - timedelta(seconds=1)
    with writing():
        changed = db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.status == MessageStatus.PENDING.value, *conditions)
            .values(send_after=past, next_attempt_at=past)
        ).rowcount
        db.session.commit()
    return changed


def check_in(
    client: FlaskClient,
    event: Event,
    name: str,
    email: str,
    *,
    followups: bool = True,
    interests: str = "",
    share: bool = True,
) -> str:
    """Check in from a phone through the poster's form; return the badge token it gets."""
    data = {"name": name, "email": email, "interests": interests}
    if share:
        data["share_profile"] = "y"
    if followups:
        data["want_followups"] = "y"
    response = client.post(f"/e/{event.checkin_token}", data=data)
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/b/([\w-]{43})", response.location)
    assert match, response.location
    return match.group(1)


def use_email_link(client: FlaskClient, email: Email) -> Any:
    """Open the /m/ link of a confirm or sign-in email and press its button."""
    path = link_in(email, "/m/")
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path)


def clean_headers(email: Email) -> bool:
    """Tell whether no header value of an email (the subject included) could start a new one."""
    values = [email.subject, email.to, *email.headers.values(), *email.custom_args.values()]
    return not any(ch in value for value in values for ch in "\r\n\x00")


def person(address: str) -> Person:
    """Return the person with an address."""
    return db.session.scalars(sa.select(Person).where(Person.email == address)).one()


def confirm_directly(*results: CheckInResult) -> None:
    """Mark addresses confirmed without the link (the link has tests of its own)."""
    with writing():
        for result in results:
            result.attendance.person.email_confirmed_at = utcnow()
        db.session.commit()


def end_now(event: Event) -> None:
    """End an event now, as the organiser's button does."""
    with writing():
        end_event(db.session.get_one(Event, event.id))
        db.session.commit()


def meet(make_event: Callable[..., Event], make_attendee: Callable[..., CheckInResult]) -> Any:
    """Ana and Ben, confirmed and wanting follow-ups, connected (each with a private note) at
    an event whose digest goes out when it ends, a week before the nudge."""
    event = make_event(name="Bread and running")
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=7)
        db.session.commit()
    ana = make_attendee(
        event, "Ana", "ana@example.org", interests=["sourdough", "marathons"], want_followups=True
    )
    ben = make_attendee(
        event, "Ben", "ben@example.org", interests=["sourdough", "chess"], want_followups=True
    )
    confirm_directly(ana, ben)
    with writing():
        request_connection(ben.attendance, ana.attendance, "swap starters in May")
        connection = request_connection(ana.attendance, ben.attendance, "lends a dutch oven")
        db.session.commit()
    return SimpleNamespace(event=event, ana=ana, ben=ben, connection=connection)
