"""A person's badge at an event: what it shows, and moving it to a new phone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from domain.checkin import CheckInResult, PersonKey, badge_token_for
from domain.connections import connections_of
from domain.db import db
from domain.followups import set_followup_consent
from domain.models import Attendance, Connection, Event, Person
from domain.profile import update_profile
from domain.signin import use_link
from domain.suggestions import Suggestion, suggestions
from domain.tokens import hash_token, new_token
from domain.visibility import Relation, shared_interests, visible_fields


def give_badge_to_device(person: Person, event_id: int, device_secret: str) -> CheckInResult | None:
    """Give a person's badge at an event to this device; the old badge link stops working."""
    attendance = db.session.scalars(
        sa.select(Attendance).where(
            Attendance.person_id == person.id, Attendance.event_id == event_id
        )
    ).one_or_none()
    if attendance is None:
        return None
    token = badge_token_for(device_secret, event_id, person.id)
    attendance.badge_token_hash = hash_token(token)
    db.session.flush()
    return CheckInResult(
        attendance.id,
        event_id,
        PersonKey.of(person),
        token,
        created=False,
        device_secret=device_secret,
    )


def retire_badges(badge_tokens: Iterable[str]) -> None:
    """Make badge tokens open nothing: each badge they open gets a fresh token nobody holds.

    Its person gets it back on any phone with a sign-in link, which derives a new one.
    """
    hashes = {hash_token(token) for token in badge_tokens}
    if not hashes:
        return
    for attendance in db.session.scalars(
        sa.select(Attendance).where(Attendance.badge_token_hash.in_(hashes))
    ):
        attendance.badge_token_hash = hash_token(new_token())
    db.session.flush()


def edit_badge_profile(
    attendance: Attendance,
    *,
    name: str,
    about: str,
    talk_about: str,
    links: list[str],
    interests: list[str],
    visibility: dict[str, str],
    want_followups: bool,
) -> None:
    """Change what a person shows at an event, to whom, and whether they want follow-ups."""
    update_profile(
        attendance,
        name=name,
        about=about,
        talk_about=talk_about,
        interests=interests,
        links=links,
        visibility=visibility,
    )
    set_followup_consent(attendance, want_followups)


@dataclass(frozen=True)
class SignIn:
    """Who an email link signed in, and where their phone goes next."""

    person: Person
    purpose: str
    badge: CheckInResult | None  # their badge at the link's event, now on this phone
    check_in_at: Event | None  # the link's event, where they have yet to check in


def sign_in_with_link(token: str, device_secret: str) -> SignIn:
    """Use a one-time link: confirm the address and, for a sign-in at an event, bring the
    person's badge there to this phone. Raise LinkError if the link can't be used."""
    link = use_link(token)
    person = link.person
    if link.purpose != "signin" or link.event_id is None:
        return SignIn(person, link.purpose, None, None)
    badge = give_badge_to_device(person, link.event_id, device_secret)
    return SignIn(person, link.purpose, badge, link.event if badge is None else None)


@dataclass(frozen=True)
class PersonShown:
    """One person as my badge page lists them: plain values, only what they let me see."""

    name: str
    shared: list[str] = field(default_factory=list)  # interests we share that they show me
    about: str = ""
    email: str | None = None
    links: list[str] = field(default_factory=list)
    note: str = ""  # my private note about them
    connection_id: int | None = None
    attendance_id: int | None = None


@dataclass(frozen=True)
class LiveBadge:
    """The changing part of my badge page: requests, connections and suggestions."""

    incoming: list[PersonShown]
    accepted: list[PersonShown]
    outgoing: list[PersonShown]
    suggestions: list[PersonShown]


def live_badge(mine: Attendance) -> LiveBadge:
    """Return what the changing part of my badge page shows, each person as far as they allow."""
    shown = connections_of(mine)
    return LiveBadge(
        incoming=[_requester(mine, connection) for connection in shown.incoming],
        accepted=[_connected(mine, connection) for connection in shown.accepted],
        outgoing=[
            PersonShown(connection.other(mine).person.name, connection_id=connection.id)
            for connection in shown.outgoing
        ],
        suggestions=[_suggested(suggestion) for suggestion in suggestions(mine)],
    )


def _requester(mine: Attendance, connection: Connection) -> PersonShown:
    other = connection.other(mine)
    return PersonShown(
        other.person.name,
        shared=shared_interests(mine, other, Relation.ATTENDEE),
        connection_id=connection.id,
    )


def _connected(mine: Attendance, connection: Connection) -> PersonShown:
    other = connection.other(mine)
    visible = visible_fields(other, Relation.CONNECTION)
    return PersonShown(
        other.person.name,
        shared=shared_interests(mine, other, Relation.CONNECTION),
        email=other.person.email if "email" in visible else None,
        links=list(other.person.links or []) if "links" in visible else [],
        note=connection.note_of(mine),
        connection_id=connection.id,
    )


def _suggested(suggestion: Suggestion) -> PersonShown:
    other = suggestion.attendance
    visible = visible_fields(other, Relation.ATTENDEE)
    return PersonShown(
        other.person.name,
        shared=suggestion.shared,
        about=(other.person.about or "") if "about" in visible else "",
        attendance_id=other.id,
    )
