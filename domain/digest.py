"""What each email holds for its recipient, and what the links in a sent follow-up may open.

Who gets which email is decided here, when a worker claims it: a suppressed address gets
nothing; a follow-up (digest, connection, nudge) goes only to a confirmed address whose
owner consented, and only while it still has something to say. Rendering the words is the
blueprints' business (blueprints/emails.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from domain.attendees import organiser_card
from domain.communities import next_event
from domain.connections import accepted_connections
from domain.db import db, utcnow
from domain.errors import DomainError
from domain.events import local_time
from domain.followups import FOLLOWUP_KINDS, attendance_of
from domain.interest_keys import interest_key
from domain.met_before import MetBefore, first_meetings, met_before_here
from domain.models import Attendance, Connection, Event, OutboxMessage
from domain.outbox import HELD_UNCONFIRMED, Skip
from domain.suppression import is_suppressed
from domain.team import invitation_to_send
from domain.tokens import hash_token, signature, signed
from domain.visibility import Relation, shared_interest_names, visible_fields

# Kinds that carry a one-time link to confirm an address or sign in.
LINK_KINDS = ("confirm", "signin")
# What the organiser's preview of a digest hides: what attendees share only with each other,
# and where two people first met (an earlier event may be another organiser's).
HIDDEN_FROM_ORGANISER = {"email": None, "mailto": None, "links": [], "note": "", "first_met": ""}


class DigestError(DomainError):
    """A digest's link can no longer give what it named; `code` is stable."""


@dataclass(frozen=True)
class NextEvent:
    """The community's next event, as a digest ends with it."""

    line: str  # "Sunday Brunch, 14 December, 11:00, The Back Room"
    event_id: int


@dataclass(frozen=True)
class Content:
    """What a claimed message holds: the recipient's attendance, and for a follow-up, whom
    it tells them about (one card per person, see `person_cards`) and, for a digest, the
    people there they had met before (`met_again_cards`) and the community's next event."""

    mine: Attendance | None
    people: list[dict[str, Any]] | None = None
    next_event: NextEvent | None = None
    met_again: list[dict[str, Any]] | None = None


def content_of(message: OutboxMessage) -> Content:
    """Return what a claimed message holds, or raise Skip if it must not go out."""
    if is_suppressed(message.to_email):
        raise Skip("suppressed")
    mine = attendance_of(message)
    if message.kind in FOLLOWUP_KINDS:
        if message.person.email_confirmed_at is None:
            raise Skip(HELD_UNCONFIRMED)
        if mine is None or mine.followup_consent_at is None:
            raise Skip("no_consent")
        connections = _followup_connections(message, mine)
        if message.kind != "digest":
            return Content(mine, person_cards(mine, connections))
        again = met_again_cards(mine, connections)
        if not connections and not again:
            raise Skip("nothing_to_send")
        return Content(mine, person_cards(mine, connections), next_event_of(mine), again)
    if message.kind in LINK_KINDS:
        return Content(mine)
    if message.kind == "invite":
        invitation_to_send(message)
        return Content(None)
    raise Skip("unknown_kind")


def _followup_connections(message: OutboxMessage, mine: Attendance) -> list[Connection]:
    """Return the connections a follow-up tells of, or raise Skip if it has nothing to say."""
    if message.kind == "digest":
        return accepted_connections(mine)
    connection = message.connection
    if connection is None or not connection.accepted:
        raise Skip("connection_gone")
    if message.kind == "nudge" and connection.in_touch_at is not None:
        raise Skip("in_touch")
    return [connection]


def person_cards(mine: Attendance, connections: list[Connection]) -> list[dict[str, Any]]:
    """Return what a follow-up says of each person I connected with."""
    others = [connection.other(mine) for connection in connections]
    shared = shared_interest_names(mine, others)
    first = first_meetings(mine, others)
    now = local_time(mine.event, mine.event.starts_at)
    cards = []
    for connection, other in zip(connections, others, strict=True):
        card = _person_card(mine, connection, other, shared[other.id])
        met = first.get(other.person_id)
        card["first_met"] = met.at(now) if met else ""
        cards.append(card)
    return cards


def met_again_cards(mine: Attendance, connections: list[Connection]) -> list[dict[str, Any]]:
    """Return what a digest says of the people at my event I had connected with before.

    Meeting again makes no new connection, so they are not among tonight's: each card says
    where we first met, and shares what they last chose to share with me there.
    """
    tonight = {connection.other(mine).person_id for connection in connections}
    now = local_time(mine.event, mine.event.starts_at)
    return [
        _met_again_card(mine, person, now)
        for person in met_before_here(mine)
        if person.person_id not in tonight
    ]


def _met_again_card(mine: Attendance, person: MetBefore, now: datetime) -> dict[str, Any]:
    return {
        "connection": None,  # theirs is an earlier event's: this email's links don't open it
        "name": person.name,
        "first_met": person.first.at(now),
        "shared": person.shared,
        "note": person.note,
        "email": person.email,
        "links": person.links,
        "about": "",
        "mailto": _mailto(mine.event.name, person.name, person.email, again=True),
    }


def _mailto(event_name: str, name: str, email: str | None, *, again: bool = False) -> str | None:
    """Return a "Say hello" link that opens an email to them, or None without an address."""
    if not email:
        return None
    subject = quote(f"Great to {'see you again' if again else 'meet you'} at {event_name}")
    body = quote(f"Hi {name},\n\n")
    return f"mailto:{quote(email, safe='@')}?subject={subject}&body={body}"


def next_event_of(mine: Attendance) -> NextEvent | None:
    """Return the next event of my event's community, as a digest names it, or None."""
    coming = next_event(mine.event)
    if coming is None:
        return None
    starts = local_time(coming, coming.starts_at)
    parts = [coming.name, f"{starts.day} {starts:%B}", f"{starts:%H:%M}"]
    if coming.venue:
        parts.append(coming.venue)
    return NextEvent(", ".join(parts), coming.id)


def _person_card(
    mine: Attendance, connection: Connection, other: Attendance, shared: list[str]
) -> dict[str, Any]:
    shown = visible_fields(other, Relation.CONNECTION, connection)
    email = other.person.email if "email" in shown else None
    return {
        "connection": connection,
        "name": other.person.name,
        "shared": shared if "interests" in shown else [],
        "note": connection.note_of(mine),
        "email": email,
        "links": list(other.person.links or []) if "links" in shown else [],
        "about": other.person.about if "about" in shown else "",
        "mailto": _mailto(mine.event.name, other.person.name, email),
    }


def preview_cards(mine: Attendance) -> list[dict[str, Any]]:
    """Return the digest's cards as the organiser may preview them: no contacts, no notes."""
    # What attendees share with each other is theirs: the organiser sees the layout, and of
    # each person only what they show everyone at the event (as on the attendee page).
    mine_keys = {interest_key(name) for name in organiser_card(mine).interests}
    people = []
    for card in person_cards(mine, accepted_connections(mine)):
        seen = organiser_card(card["connection"].other(mine))
        shared = [name for name in card["shared"] if name in seen.interests]
        people.append(
            {
                **card,
                **HIDDEN_FROM_ORGANISER,
                "about": seen.about,
                "shared": [name for name in shared if interest_key(name) in mine_keys],
                "note_hidden": bool(card["note"]),
            }
        )
    return people


def calendar_signature(secret: str, token: str, event_id: int) -> str:
    """Return what signs a digest's "Add to calendar" link to the event it names."""
    return signature(secret, "calendar", token, event_id)


def announced_event(
    secret: str, message: OutboxMessage, token: str, event_id: int, given: str
) -> Event | None:
    """Return the event a sent digest's calendar link names, as it was signed; None if the
    link was not signed for it (a 404), and DigestError("event_gone") if it was deleted."""
    if message.kind != "digest" or not signed(secret, given, "calendar", token, event_id):
        return None
    event = db.session.get(Event, event_id)
    # An event made after the email went is not the one it announced, even under the same
    # id: SQLite gives a deleted event's id to the next new one.
    if event is None or (message.sent_at is not None and event.created_at > message.sent_at):
        raise DigestError("event_gone", "The event this email announced is no longer on Rapport.")
    return event


def message_by_link_token(token: str) -> OutboxMessage | None:
    """Return the sent message whose links carry this token, or None."""
    return db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.link_token_hash == hash_token(token))
    ).one_or_none()


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
