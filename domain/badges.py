"""A person's badge at an event: what it shows, and moving it to a new phone."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from domain.checkin import (
    CheckInError,
    CheckInResult,
    PersonKey,
    WindowState,
    badge_token_for,
    check_in,
    checkin_window,
    remembered_profile,
)
from domain.communities import is_regular
from domain.connections import connections_of
from domain.db import db, utcnow
from domain.followups import queue_digests, set_followup_consent
from domain.limits import SUGGESTIONS
from domain.met_before import MetBefore, met_before_here
from domain.models import Attendance, Connection, ConnectionStatus, EmailLink, Event, Person
from domain.profile import update_profile
from domain.signin import use_link
from domain.suggestions import Suggestion, suggestions
from domain.tokens import hash_token, new_token
from domain.visibility import (
    Relation,
    ShownField,
    can_see,
    card_for,
    shared_interests,
    shown_fields,
    visible_fields,
)


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
    if want_followups and met_before_here(attendance):
        queue_digests([attendance.id])  # it names the people here I had met before


@dataclass(frozen=True)
class SignIn:
    """Who an email link signed in, and where their phone goes next."""

    person: Person
    purpose: str
    badge: CheckInResult | None  # their badge at the link's event, now on this phone
    check_in_at: Event | None  # the link's event, where they could not be checked in now
    event_id: int | None = None  # the event the link was sent about, if any
    checked_in_now: bool = False  # the link checked them in, with their saved profile
    ended: bool = False  # the link's event had ended: the phone is signed in to /me


def sign_in_with_link(
    token: str,
    device_secret: str,
    *,
    share_profile: bool | None = None,
    want_followups: bool | None = None,
) -> SignIn:
    """Use a one-time link: confirm the address and, for a sign-in at an event, bring the
    person's badge there to this phone. Raise LinkError if the link can't be used.

    A link that checks its person in takes the consent choices shown beside its button
    (left as last time when not given).
    """
    link = use_link(token)
    person = link.person
    if link.purpose != "signin" or link.event_id is None:
        return SignIn(person, link.purpose, None, None, link.event_id)
    badge = give_badge_to_device(person, link.event_id, device_secret)
    if badge is not None:
        return SignIn(person, link.purpose, badge, None, link.event_id)
    # Not checked in there yet: the link completes the check-in with the saved profile.
    saved = remembered_profile(person.id)
    assert saved is not None  # the link's person exists
    if share_profile is not None:
        saved = replace(saved, share_profile=share_profile)
    if want_followups is not None:
        saved = replace(saved, want_followups=want_followups)
    try:
        # Refused before anything is written when the event's check-in is closed; the saved
        # profile is the person's own, so nothing else in it can be refused.
        badge = check_in(link.event, saved, device_secret=device_secret, person_id=person.id)
    except CheckInError as error:
        if error.code == WindowState.ENDED:
            # Nothing to check in to any more: the link signs the phone in to /me.
            return SignIn(person, link.purpose, None, None, link.event_id, ended=True)
        return SignIn(person, link.purpose, None, link.event, link.event_id)
    return SignIn(person, link.purpose, badge, None, link.event_id, checked_in_now=True)


class LinkOffer(enum.StrEnum):
    """What using an email link does on this phone, for its page to say so."""

    CONFIRM = "confirm"  # confirms the address and signs the phone in
    CHECK_IN = "check_in"  # checks its person in at its event with the saved profile
    NOT_YET = "not_yet"  # its event's check-in has not opened: signs in, then the event
    ENDED = "ended"  # its event's check-in has closed: signs in to /me
    MOVE_BADGE = "move_badge"  # brings the person's badge at its event to this phone
    HERE = "here"  # this phone already holds that badge: signs in to /me
    ME = "me"  # opens the person's connections on this phone


def link_offer(link: EmailLink, holds_badge: bool) -> LinkOffer:
    """Say what using a link does on a phone that holds (or not) its event's badge."""
    if link.purpose == "confirm":
        return LinkOffer.CONFIRM
    if link.purpose != "signin" or link.event is None:
        return LinkOffer.ME
    checked_in = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Attendance)
        .where(Attendance.person_id == link.person_id, Attendance.event_id == link.event_id)
    )
    if checked_in:
        return LinkOffer.HERE if holds_badge else LinkOffer.MOVE_BADGE
    state = checkin_window(link.event).state(utcnow())
    if state is WindowState.ENDED:
        return LinkOffer.ENDED
    return LinkOffer.NOT_YET if state is WindowState.NOT_YET else LinkOffer.CHECK_IN


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
    shares_nothing: bool = False  # a connection who shows me no way to reach them
    # My own choice for this connection: "share" (my email is hidden from them), "stop"
    # (shown to them alone), or "" (my event-wide choice already shows it).
    email_offer: str = ""
    since: str = ""  # where we first connected, for someone I met before: "Brunch in March"


@dataclass(frozen=True)
class LiveBadge:
    """The changing part of my badge page: requests, connections, people I met before,
    newcomers to the community and suggestions."""

    incoming: list[PersonShown]
    accepted: list[PersonShown]
    outgoing: list[PersonShown]
    suggestions: list[PersonShown]
    met_before: list[PersonShown] = field(default_factory=list)
    new_here: list[PersonShown] = field(default_factory=list)
    in_community: bool = False


def live_owner(attendance_id: int) -> Attendance:
    """Return the attendance whose badge page refreshes, with its event, in one statement."""
    return db.session.execute(_live_owner_statement(), {"id": attendance_id}).scalar_one()


@functools.cache
def _live_owner_statement() -> sa.Select[tuple[Attendance]]:
    """Built once a process: Session.get builds and keys its statement anew on every call
    when given loader options, which cost as much again as the lookup."""
    return (
        sa.select(Attendance)
        .options(joinedload(Attendance.event))
        .where(Attendance.id == sa.bindparam("id", type_=sa.Integer()))
    )


def live_badge(mine: Attendance, *, mine_part: bool = True, to_meet: bool = True) -> LiveBadge:
    """Return what the changing part of my badge page shows, each person as far as they allow.

    The page refreshes its two halves apart (blueprints/badge.py): `mine_part` is my own
    list (requests, connections, people I met before), which changes only through me or
    the people in it; `to_meet` is the people to meet (newcomers and suggestions), which
    changes whenever someone sharing an interest arrives. Either may be left out.

    Each person is listed once: someone I met before is not also a newcomer or a suggestion.
    "New here tonight" is for regulars (who came to an earlier event of the community): at
    a community's first event everyone is new, and first-timers see each other as
    ordinary suggestions.
    """
    met = [_met_before(person) for person in met_before_here(mine)]
    listed = {person.attendance_id for person in met}
    in_community = mine.event.community_id is not None
    new_here: list[PersonShown] = []
    if to_meet and in_community and is_regular(mine):
        new_here = [
            _suggested(suggestion)
            for suggestion in suggestions(mine, newcomers=True)
            if suggestion.attendance_id not in listed
        ]
        listed |= {person.attendance_id for person in new_here}
    suggested = (
        [
            _suggested(suggestion)
            for suggestion in suggestions(mine, SUGGESTIONS + len(listed))
            if suggestion.attendance_id not in listed
        ][:SUGGESTIONS]
        if to_meet
        else []
    )
    if not mine_part:
        return LiveBadge([], [], [], suggested, new_here=new_here, in_community=in_community)
    shown = connections_of(mine)
    return LiveBadge(
        incoming=[_requester(mine, connection) for connection in shown.incoming],
        accepted=[_connected(mine, connection) for connection in shown.accepted],
        outgoing=[
            PersonShown(connection.other(mine).person.name, connection_id=connection.id)
            for connection in shown.outgoing
        ],
        suggestions=suggested,
        met_before=met,
        new_here=new_here,
        in_community=in_community,
    )


def _met_before(person: MetBefore) -> PersonShown:
    return PersonShown(
        person.name,
        shared=person.shared,
        email=person.email,
        links=person.links,
        note=person.note,
        attendance_id=person.attendance_id,
        since=person.since,
    )


def _requester(mine: Attendance, connection: Connection) -> PersonShown:
    other = connection.other(mine)
    return PersonShown(
        other.person.name,
        shared=shared_interests(mine, other, Relation.ATTENDEE),
        # Who they are in their own words, as far as they show it: which meeting it was.
        about=other.person.about if can_see(other, "about", Relation.ATTENDEE) else "",
        connection_id=connection.id,
    )


def _connected(mine: Attendance, connection: Connection) -> PersonShown:
    other = connection.other(mine)
    visible = visible_fields(other, Relation.CONNECTION, connection)
    email = other.person.email if "email" in visible else None
    links = list(other.person.links or []) if "links" in visible else []
    return PersonShown(
        other.person.name,
        shared=shared_interests(mine, other, Relation.CONNECTION),
        about=other.person.about if "about" in visible else "",
        email=email,
        links=links,
        note=connection.note_of(mine),
        connection_id=connection.id,
        shares_nothing=email is None and not links,
        email_offer=_email_offer(mine, connection),
    )


def _email_offer(mine: Attendance, connection: Connection) -> str:
    if can_see(mine, "email", Relation.CONNECTION):
        return ""
    return "stop" if connection.shares_email(mine) else "share"


def my_card(mine: Attendance) -> list[ShownField]:
    """Return my whole profile at this event, as only I see it."""
    return shown_fields(mine, visible_fields(mine, Relation.SELF))


@dataclass(frozen=True)
class CardPage:
    """Someone's card as I see it, in plain values."""

    name: str
    event_name: str
    checked_in: bool  # whether I am checked in at their event (else I'm asked to)
    fields: list[ShownField]
    shared: list[str]  # interests we share that they show me
    state: str  # "none", "connected", "asked" (by me) or "asked_me"
    connection_id: int | None
    my_note: str = ""  # my private note about them, on our connection or request


def card_page(owner: Attendance, viewer: Attendance | None) -> CardPage:
    """Return what the viewer sees of the owner's card, and where the two of them stand."""
    card = card_for(owner, viewer)
    connection = card.connection
    if connection is None or connection.status == ConnectionStatus.DECLINED:
        state = "none" if connection is None or viewer is None else _declined(connection, viewer)
    elif connection.accepted:
        state = "connected"
    else:
        state = "asked" if viewer and connection.requested_by_id == viewer.id else "asked_me"
    return CardPage(
        name=owner.person.name,
        event_name=owner.event.name,
        checked_in=card.relation is not Relation.OUTSIDER,
        fields=shown_fields(owner, card.visible),
        shared=card.shared,
        state=state,
        connection_id=connection.id if connection is not None else None,
        my_note=connection.note_of(viewer) if connection is not None and viewer else "",
    )


def _declined(connection: Connection, viewer: Attendance) -> str:
    # A declined request looks pending to the one who asked: the other is never told.
    return "asked" if connection.requested_by_id == viewer.id else "none"


def _suggested(suggestion: Suggestion) -> PersonShown:
    return PersonShown(
        suggestion.name,
        shared=suggestion.shared,
        about=suggestion.about,
        attendance_id=suggestion.attendance_id,
    )
