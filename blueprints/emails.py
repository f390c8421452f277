"""Rendering outbox messages into emails, and choosing the mailer from the configuration."""

from __future__ import annotations

import os
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Response, current_app, render_template

from domain.attendees import organiser_card
from domain.connections import accepted_connections
from domain.db import utcnow
from domain.followups import FOLLOWUP_KINDS, attendance_of
from domain.mailer import Email, FileMailer, Mailer, SendGridMailer
from domain.models import Attendance, Connection, OutboxMessage
from domain.outbox import HELD_UNCONFIRMED, Rendered, Skip, is_suppressed, set_link_token
from domain.signin import record_link
from domain.tokens import new_token
from domain.visibility import Relation, shared_interest_names, visible_fields

SUBJECTS = {
    "confirm": "Confirm your email for {event}",
    "signin": "Your Rapport sign-in link",
    "digest": "The people you met at {event}",
    "connection": "You connected with someone at {event}",
    "nudge": "Have you been in touch since {event}?",
}


def make_mailer(app: Flask) -> Mailer:
    """Return SendGrid when a key is configured, else the .eml file writer."""
    config = app.config
    if config.get("SENDGRID_API_KEY"):
        host = config["SENDGRID_API_HOST"]
        if app.testing and urlsplit(host).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise RuntimeError("Under test, SENDGRID_API_HOST must point at a local fake server.")
        if not (config.get("MAIL_POSTAL_ADDRESS") or "").strip():
            # Bulk mail law (CAN-SPAM and the like) wants the sender's postal address in every
            # message; refuse to send real mail without it rather than send it unlawfully.
            raise RuntimeError(
                "MAIL_POSTAL_ADDRESS is not set: every email sent through SendGrid carries "
                "the sender's postal address. Put it in the environment or in "
                "instance/config.py, or unset SENDGRID_API_KEY to write emails to files."
            )
        return SendGridMailer(config["SENDGRID_API_KEY"], config["MAIL_FROM"], host=host)
    return FileMailer(os.path.join(app.instance_path, "mail"), config["MAIL_FROM"])


def absolute(path: str) -> str:
    """Return an absolute URL on this site, built from PUBLIC_URL (never the Host header)."""
    return f"{current_app.config['PUBLIC_URL']}{path}"


def header_safe(text: str) -> str:
    """Return text with no line breaks or control characters, fit for a header."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def compose(message: OutboxMessage) -> Rendered:
    """Render a claimed message for sending, or raise Skip if it must not go out.

    Nothing is written here: the tokens its links carry are saved by `Rendered.save`.
    """
    person = message.person
    if is_suppressed(message.to_email):
        raise Skip("suppressed")
    mine: Attendance | None = attendance_of(message)
    context: dict[str, Any] = {"person": person, "event": message.event, "mine": mine}
    if message.kind in FOLLOWUP_KINDS:
        if person.email_confirmed_at is None:
            raise Skip(HELD_UNCONFIRMED)
        if mine is None or mine.followup_consent_at is None:
            raise Skip("no_consent")
        context.update(_followup_context(message, mine))
    elif message.kind in ("confirm", "signin"):
        token = new_token()
        context["link"] = absolute(f"/m/{token}")
        save = partial(record_link, person.id, message.event_id, message.kind, token)
    else:
        raise Skip("unknown_kind")

    headers: dict[str, str] = {}
    if message.kind in FOLLOWUP_KINDS:
        token = new_token()
        save = partial(set_link_token, message.id, token)
        unsubscribe = absolute(f"/u/{token}")
        context["links"] = _links(token)
        context["unsubscribe"] = unsubscribe
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    context["postal_address"] = current_app.config.get("MAIL_POSTAL_ADDRESS", "")
    event_name = header_safe(message.event.name) if message.event else "Rapport"
    subject = SUBJECTS[message.kind].format(event=event_name)
    email = Email(
        to=message.to_email,
        subject=header_safe(subject),
        text=render_template(f"email/{message.kind}.txt", **context),
        html=render_template(f"email/{message.kind}.html", **context),
        headers=headers,
    )
    # The links' hashes are saved just before sending, outside this read-only render.
    return Rendered(email, save)


def _followup_context(message: OutboxMessage, mine: Attendance) -> dict[str, Any]:
    if message.kind == "digest":
        connections = accepted_connections(mine)
        if not connections:
            raise Skip("nothing_to_send")
    else:
        connection = message.connection
        if connection is None or not connection.accepted:
            raise Skip("connection_gone")
        if message.kind == "nudge" and connection.in_touch_at is not None:
            raise Skip("in_touch")
        connections = [connection]
    return {"people": _people(mine, connections)}


def _people(mine: Attendance, connections: list[Connection]) -> list[dict[str, Any]]:
    """Return what a follow-up says of each person I connected with."""
    others = [connection.other(mine) for connection in connections]
    shared = shared_interest_names(mine, others)
    return [
        _person_card(mine, connection, other, shared[other.id])
        for connection, other in zip(connections, others, strict=True)
    ]


def _person_card(
    mine: Attendance, connection: Connection, other: Attendance, shared: list[str]
) -> dict[str, Any]:
    shown = visible_fields(other, Relation.CONNECTION)
    email = other.person.email if "email" in shown else None
    mailto = None
    if email:
        subject = quote(f"Great to meet you at {mine.event.name}")
        body = quote(f"Hi {other.person.name},\n\n")
        mailto = f"mailto:{quote(email, safe='@')}?subject={subject}&body={body}"
    return {
        "connection": connection,
        "name": other.person.name,
        "shared": shared if "interests" in shown else [],
        "note": connection.note_of(mine),
        "email": email,
        "links": list(other.person.links or []) if "links" in shown else [],
        "about": other.person.about if "about" in shown else "",
        "mailto": mailto,
    }


def _links(token: str) -> dict[str, str]:
    return {
        "contact": absolute(f"/f/{token}/contacts/"),
        "in_touch": absolute(f"/f/{token}/in-touch/"),
    }


def preview_digest(mine: Attendance) -> Response:
    """Render the digest an attendee would get, for the organiser: no contacts, no notes."""
    # What attendees share with each other is theirs: the organiser sees the layout, and of
    # each person only what they show everyone at the event (as on the attendee page).
    hidden = {"email": None, "mailto": None, "links": [], "note": ""}
    mine_seen = organiser_card(mine)
    people = []
    for card in _people(mine, accepted_connections(mine)):
        seen = organiser_card(card["connection"].other(mine))
        shared = [name for name in card["shared"] if name in seen.interests]
        people.append(
            {
                **card,
                **hidden,
                "about": seen.about,
                "shared": [name for name in shared if name in mine_seen.interests],
                "note_hidden": bool(card["note"]),
            }
        )
    html = render_template(
        "email/digest.html",
        person=mine.person,
        event=mine.event,
        mine=mine,
        people=people,
        links={"contact": "#", "in_touch": "#"},
        unsubscribe="#",
        postal_address=current_app.config.get("MAIL_POSTAL_ADDRESS", ""),
        preview=True,
    )
    response = Response(html)
    # The email's own inline styles, and nothing else.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    return response


def connection_for_link(message: OutboxMessage, connection_id: int) -> Connection | None:
    """Return a connection a sent message is about, as its links may name it, or None."""
    mine = attendance_of(message)
    if mine is None:
        return None
    if message.kind in ("connection", "nudge") and message.connection_id != connection_id:
        return None  # such an email is about one connection only
    connection = next((c for c in accepted_connections(mine) if c.id == connection_id), None)
    if connection is None:
        return None
    sent = message.sent_at or utcnow()
    if connection.accepted_at is not None and connection.accepted_at > sent:
        return None  # a digest speaks only of the connections it listed
    return connection
