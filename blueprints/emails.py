"""Rendering outbox messages into emails, and choosing the mailer from the configuration.

What each email holds, and whether it goes at all, is decided in domain/digest.py.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, render_template

from blueprints.urls import absolute
from domain.digest import NextEvent, calendar_signature, content_of, next_event_of, preview_cards
from domain.limits import INVITATION_LIFETIME
from domain.mailer import Email, FileMailer, Mailer, SendGridMailer
from domain.models import Attendance, OutboxMessage
from domain.outbox import set_link_token
from domain.signin import lifetime_in_words, record_link
from domain.team import ROLE_NAMES, Role, invitation_to_send, set_invitation_token
from domain.tokens import new_token
from domain.worker import Rendered

SUBJECTS = {
    "confirm": "Confirm your email address for Rapport",
    "signin": "Your Rapport sign-in link",
    "digest": "The people you met at {event}",
    "connection": "You connected with someone at {event}",
    "nudge": "Have you been in touch since {event}?",
    "invite": "You're invited to help run an event on Rapport",
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


def header_safe(text: str) -> str:
    """Return text with no line breaks or control characters, fit for a header."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def compose(message: OutboxMessage) -> Rendered:
    """Render a claimed message for sending, or raise Skip if it must not go out.

    Nothing is written here: the tokens its links carry are saved by `Rendered.save`.
    """
    content = content_of(message)
    if message.kind == "invite":
        return _compose_invitation(message)
    context: dict[str, Any] = {
        "person": message.person,
        "event": message.event,
        "mine": content.mine,
    }
    token = new_token()
    headers: dict[str, str] = {}
    if content.people is None:  # a confirm or sign-in link
        context["link"] = absolute(f"/m/{token}")
        context["lifetime"] = lifetime_in_words(message.kind)
        save = partial(record_link, message.person_id, message.event_id, message.kind, token)
    else:
        # Every follow-up also opens the person's /me, through a one-time link of its own.
        me_token = new_token()
        save = partial(_save_followup_links, message, token, me_token)
        context["me_link"] = absolute(f"/m/{me_token}")
        context["me_lifetime"] = lifetime_in_words("me")
        unsubscribe = absolute(f"/u/{token}")
        context["people"] = content.people
        context["next_event"] = content.next_event
        context["met_again"] = content.met_again or []
        context["links"] = _links(token, content.next_event)
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


def _compose_invitation(message: OutboxMessage) -> Rendered:
    invitation = invitation_to_send(message)
    token = new_token()
    # Like a confirmation, it goes to an address nobody confirmed, so it carries nothing
    # anyone typed: the event and who invited are shown once the address signs in.
    context = {
        "role": ROLE_NAMES[Role(invitation.role)],
        "link": absolute(f"/team/join/{token}"),
        "lifetime": f"{INVITATION_LIFETIME.days} days",
        "postal_address": current_app.config.get("MAIL_POSTAL_ADDRESS", ""),
    }
    email = Email(
        to=message.to_email,
        subject=SUBJECTS["invite"],
        text=render_template("email/invite.txt", **context),
        html=render_template("email/invite.html", **context),
    )
    return Rendered(email, partial(set_invitation_token, invitation.id, token))


def _save_followup_links(message: OutboxMessage, token: str, me_token: str) -> None:
    set_link_token(message.id, token)
    record_link(message.person_id, message.event_id, "me", me_token)


def _links(token: str, coming: NextEvent | None) -> dict[str, str]:
    links = {
        "contact": absolute(f"/f/{token}/contacts/"),
        "in_touch": absolute(f"/f/{token}/in-touch/"),
    }
    if coming is not None:
        # The link names the event the digest announces, signed: clicked months later, it
        # still gives that event, not whichever is next by then.
        signed = calendar_signature(current_app.config["SECRET_KEY"], token, coming.event_id)
        links["calendar"] = absolute(f"/f/{token}/events/{coming.event_id}/{signed}.ics")
    return links


def preview_digest(mine: Attendance) -> Response:
    """Render the digest an attendee would get, for the organiser: no contacts, no notes."""
    html = render_template(
        "email/digest.html",
        person=mine.person,
        event=mine.event,
        mine=mine,
        people=preview_cards(mine),
        next_event=next_event_of(mine),
        links={"contact": "#", "in_touch": "#", "calendar": "#"},
        unsubscribe="#",
        me_link="#",
        me_lifetime=lifetime_in_words("me"),
        postal_address=current_app.config.get("MAIL_POSTAL_ADDRESS", ""),
        preview=True,
    )
    response = Response(html)
    # The email's own inline styles, and nothing else.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    return response
