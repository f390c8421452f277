"""The `flask` commands: organiser accounts and the demo event."""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta

import click
from flask import Blueprint, current_app
from flask.cli import AppGroup

from blueprints.emails import compose, make_mailer
from blueprints.urls import poster_url
from domain.checkin import WindowState, checkin_window
from domain.db import db, utcnow, writing
from domain.events import EventDetails, create_event, events_of, update_event
from domain.limits import LEASE, PASSWORD_MIN, RECONCILE_AFTER
from domain.organisers import (
    OrganiserError,
    create_organiser,
    find_organiser,
    set_password,
)
from domain.qr import qr_text
from domain.retention import PurgeCounts, events_due_for_purge, purge_event
from domain.worker import Worker

bp = Blueprint("cli", __name__, cli_group=None)
organiser_cli = AppGroup("organiser", help="Manage organiser accounts.")
outbox_cli = AppGroup("outbox", help="Send the follow-up emails.")
retention_cli = AppGroup("retention", help="Delete attendee data past its events' retention.")
bp.cli.add_command(organiser_cli)
bp.cli.add_command(outbox_cli)
bp.cli.add_command(retention_cli)

DEMO_EMAIL = "demo@rapport.example"


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@organiser_cli.command("create")
@click.argument("email")
@click.option("--name", default="", help="The organiser's name.")
def create_organiser_command(email: str, name: str) -> None:
    """Create an organiser; the password comes from a prompt, or stdin when piped."""
    password = _read_password()
    with writing():
        try:
            organiser = create_organiser(email, password, name)
        except OrganiserError as error:
            db.session.rollback()
            raise click.ClickException(_organiser_message(error)) from error
        db.session.commit()
    click.echo(f"Created organiser {organiser.email}.")


@organiser_cli.command("set-password")
@click.argument("email")
def set_password_command(email: str) -> None:
    """Set an organiser's password; from a prompt, or stdin when piped."""
    password = _read_password()
    with writing():
        organiser = find_organiser(email)
        if organiser is None:
            raise click.ClickException(f"No organiser with the email {email}.")
        try:
            set_password(organiser, password)
        except OrganiserError as error:
            db.session.rollback()
            raise click.ClickException(_organiser_message(error)) from error
        db.session.commit()
    click.echo(f"Password changed for {organiser.email}.")


@bp.cli.command("demo")
def demo_command() -> None:
    """Seed a demo organiser and an event happening now (once), and print how to reach it."""
    with writing():
        organiser = find_organiser(DEMO_EMAIL)
        password = None
        if organiser is None:
            password = secrets.token_urlsafe(12)
            organiser = create_organiser(DEMO_EMAIL, password, "Demo organiser")
            create_event(organiser, _demo_details())
            db.session.commit()
        event = events_of(organiser)[0]
        if checkin_window(event).state(utcnow()) is not WindowState.OPEN:
            # A demo seeded on another day would greet `make run` with a closed poster.
            update_event(event, _demo_details())
            db.session.commit()
        url = poster_url(event)

    base = current_app.config["PUBLIC_URL"]
    click.echo(f"\nRapport is at {base}/")
    click.echo(f"Organiser login: {base}/login")
    click.echo(f"  email:    {DEMO_EMAIL}")
    if password:
        click.echo(f"  password: {password}   (shown once; keep it)")
    else:
        click.echo(
            "  password: shown when it was first created "
            f"(change it: flask --app app organiser set-password {DEMO_EMAIL})"
        )
    click.echo(f"\nDemo event \u201c{event.name}\u201d, event word \u201c{event.event_word}\u201d.")
    click.echo(f"Check in at {url}\n")
    click.echo(qr_text(url))
    click.echo("")


def _demo_details() -> EventDetails:
    """Return the demo event's details: it started an hour ago and runs four hours more."""
    now = utcnow().replace(second=0, microsecond=0)
    return EventDetails(
        name="Rapport demo evening",
        starts_at=(now - timedelta(hours=1)).replace(tzinfo=None),
        ends_at=(now + timedelta(hours=4)).replace(tzinfo=None),
        timezone="UTC",
        venue="Your laptop",
        description="Scan the poster, check in, and meet the people here.",
    )


def _organiser_message(error: OrganiserError) -> str:
    return {
        "email_taken": "An organiser with this email already exists.",
        "password_too_short": f"The password needs at least {PASSWORD_MIN} characters.",
    }[error.code]


@outbox_cli.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option("--threads", default=4, show_default=True, help="Messages sent at the same time.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between looks when idle.")
@click.option(
    "--lease",
    default=int(LEASE.total_seconds()),
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds a claimed message stays this worker's before it is presumed lost.",
)
@click.option(
    "--settle-after",
    default=int(RECONCILE_AFTER.total_seconds()),
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds an uncertain message waits for webhook news before it is settled.",
)
def worker_command(once: bool, threads: int, poll: float, lease: int, settle_after: int) -> None:
    """Send due emails until SIGTERM (finishing the messages in hand), or once with --once."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        mailer = make_mailer(app)
    except RuntimeError as error:  # a setting is missing: say which, without a traceback
        raise click.ClickException(str(error)) from error
    worker = Worker(
        mailer=mailer,
        compose=compose,
        context=app.app_context,
        threads=max(1, threads),
        poll_seconds=poll,
        lease=timedelta(seconds=lease),
        settle_after=timedelta(seconds=settle_after),
        # With SendGrid's signed webhook set up, its silence about a message means something.
        webhook_expected=bool(
            app.config.get("SENDGRID_API_KEY") and app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
        ),
    )

    worker.stop_on_signals(click.echo)
    click.echo(f"outbox: worker {worker.owner} sending with {type(mailer).__name__}")
    stats = worker.run(once=once)
    click.echo(
        f"outbox: sent {stats.sent}, retried {stats.retried}, failed {stats.failed}, "
        f"uncertain {stats.uncertain}, cancelled {stats.cancelled}, paused {stats.paused}"
    )


@retention_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted, and delete nothing.")
def purge_command(dry_run: bool) -> None:
    """Delete the attendee data of events past their retention (what people confirmed stays)."""
    total = PurgeCounts()
    with writing():
        now = utcnow()
        due = events_due_for_purge(now)
        with click.progressbar(due, label="Purging events", show_pos=True) as events:
            for event in events:
                total += purge_event(event, now)
                if not dry_run:
                    db.session.commit()
        db.session.rollback()
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(
        f"{verb} the attendee data of {total.events} event(s): {total.attendances} "
        f"attendance(s), {total.connections} connection(s), {total.emails} email(s), "
        f"{total.email_links} email link(s), {total.people} person(s) with nothing else left. "
        f"Kept {total.kept_attendances} attendance(s) and {total.kept_connections} "
        "connection(s) of people who confirmed their email."
    )
