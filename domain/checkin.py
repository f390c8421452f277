"""Checking a person in at an event, once, from the phone that scanned the poster."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from domain import caching
from domain.db import db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.followups import confirm_new_address, queue_digests, request_confirmation
from domain.interest_keys import interest_key, name_key
from domain.met_before import met_here_before
from domain.models import (
    PROFILE_FIELDS,
    Attendance,
    Event,
    Person,
    Visibility,
    attendance_interest,
)
from domain.profile import (
    intern_interest_ids,
    normalise_email,
    normalise_interests,
    normalise_links,
)
from domain.tokens import derive_token, hash_token, new_token, same_token
from domain.versions import (
    attendees_move_on,
    badges_moved_on,
    connected_with,
    interests_changed,
)


class CheckInError(DomainError):
    """Check-in refused; `code` is stable for callers and tests."""


class WindowState(enum.StrEnum):
    """Where now stands against an event's check-in window."""

    NOT_YET = "not_yet"
    OPEN = "open"
    ENDED = "ended"


@dataclass(frozen=True)
class CheckInWindow:
    """When an event's poster takes check-ins, as aware UTC times."""

    opens_at: datetime
    closes_at: datetime

    def state(self, now: datetime) -> WindowState:
        """Tell whether check-in has not opened yet, is open, or has closed at `now`."""
        if now < self.opens_at:
            return WindowState.NOT_YET
        if now >= self.closes_at:
            return WindowState.ENDED
        return WindowState.OPEN


def checkin_window(event: Event) -> CheckInWindow:
    """Return when an event's poster takes check-ins."""
    return CheckInWindow(
        opens_at=event.starts_at - timedelta(minutes=event.checkin_opens_minutes),
        closes_at=event.ends_at + timedelta(minutes=event.checkin_closes_minutes),
    )


@dataclass(frozen=True)
class Profile:
    """What a person tells the people they meet about themselves."""

    name: str
    email: str
    about: str = ""
    talk_about: str = ""
    interests: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    share_profile: bool = False
    want_followups: bool = False


def remembered_profile(person_id: int | None) -> Profile | None:
    """Return the profile a person last checked in with, to fill their next check-in.

    Name, about, talking points and links are the person's own; interests and the
    consent to show a profile come from their latest check-in (an attendance keeps its
    own copy, so an event's record does not change when the profile does).
    """
    person = db.session.get(Person, person_id) if person_id is not None else None
    if person is None:
        return None
    last = _latest_attendance(person)
    return Profile(
        name=person.name,
        email=person.email,
        about=person.about or "",
        talk_about=person.talk_about or "",
        interests=[interest.name for interest in last.interests] if last else [],
        links=list(person.links or []),
        share_profile=last is not None and last.profile_consent_at is not None,
        want_followups=last is not None and last.followup_consent_at is not None,
    )


def _latest_attendance(person: Person) -> Attendance | None:
    return db.session.scalars(
        sa.select(Attendance)
        .where(Attendance.person_id == person.id)
        .order_by(Attendance.checked_in_at.desc(), Attendance.id.desc())
        .limit(1)
    ).one_or_none()


def starting_visibility(person: Person, *, share: bool) -> dict[str, str]:
    """Return who sees what at a new check-in: the person's last choices when they share
    their profile again, else the defaults."""
    last = _latest_attendance(person)
    if not share or last is None or last.profile_consent_at is None:
        return default_visibility(share=share)
    return {f"{field}_visibility": getattr(last, f"{field}_visibility") for field in PROFILE_FIELDS}


@dataclass(frozen=True)
class PersonKey:
    """What names a person in a phone's cookie: their id, when they were created, and the
    session epoch the reference was made in (see blueprints/device.py)."""

    id: int
    created_at: datetime
    session_epoch: int

    @classmethod
    def of(cls, person: Person) -> PersonKey:
        """Return the key of a loaded person."""
        return cls(person.id, person.created_at, person.session_epoch)


@dataclass(frozen=True)
class CheckInResult:
    """The check-in, the badge token the device now holds, and whether it is new.

    `device_secret` is the secret the badge token was derived from: a new one when the
    phone passed to someone new, which the phone must keep from now on. The values are
    plain, so a phone can remember its badge without asking the database again.
    """

    attendance_id: int
    event_id: int
    person: PersonKey
    badge_token: str
    created: bool
    device_secret: str

    @property
    def attendance(self) -> Attendance:
        """Return the attendance itself (loaded on first use)."""
        return db.session.get_one(Attendance, self.attendance_id)


def badge_token_for(device_secret: str, event_id: int, person_id: int) -> str:
    """Return the badge token a device gets for a person's check-in at an event."""
    # The person is part of the derivation, so two people who use one phone at one event
    # can never be given the same badge token.
    return derive_token(device_secret, f"badge:{event_id}:{person_id}")


def check_in(
    event: Event, profile: Profile, *, device_secret: str, person_id: int | None = None
) -> CheckInResult:
    """Check a person in at an event, or return their existing check-in from the same device.

    `device_secret` is the random secret the phone holds in its signed cookie;
    `person_id` is the person this phone already belongs to, if any. An address that
    belongs to someone else is never taken over: it raises CheckInError. When the phone
    belonged to someone else, the new person gets a new device secret (in the result).
    Outside the event's check-in window nothing is written: it raises CheckInError("not_yet"
    or "ended").

    Its first statement is its first write: a caller that read before may start its write
    transaction just before calling (domain/db.py `begin_writing`). Someone new to Rapport
    is checked in with inserts alone, a handful of statements on either engine.
    """
    state = checkin_window(event).state(utcnow())
    if state is not WindowState.OPEN:
        raise CheckInError(state.value)
    email = normalise_email(profile.email)
    interests = normalise_interests(profile.interests)
    links = normalise_links(profile.links)
    now = utcnow()

    new_person_id = insert_ignoring_conflict(
        Person.__table__,
        {
            "email": email,
            "name": profile.name.strip(),
            "name_key": name_key(profile.name.strip()),
            "about": profile.about.strip(),
            "talk_about": profile.talk_about.strip(),
            "links": links,
            "session_epoch": 0,
            "created_at": now,
            "updated_at": now,
        },
        ["email"],
    )
    if new_person_id is None:
        return _check_in_known_person(
            event, profile, email, interests, links, device_secret, person_id
        )
    if person_id is not None:
        # A phone passed to someone new: nothing the last person's secret made is theirs.
        device_secret = new_token()
    badge_token = badge_token_for(device_secret, event.id, new_person_id)
    attendance_id = _add_attendance(
        event,
        new_person_id,
        badge_token,
        profile,
        interests,
        now,
        default_visibility(share=profile.share_profile),
    )
    assert attendance_id is not None  # someone new has no check-in anywhere yet
    if profile.want_followups:
        confirm_new_address(new_person_id, email, event.id)
    return CheckInResult(
        attendance_id,
        event.id,
        PersonKey(new_person_id, now, 0),
        badge_token,
        created=True,
        device_secret=device_secret,
    )


def _add_attendance(
    event: Event,
    person_id: int,
    badge_token: str,
    profile: Profile,
    interests: list[str],
    now: datetime,
    visibility: dict[str, str],
) -> int | None:
    """Insert a new check-in with its interests, or return None if there is one already.

    Moves on the live pages it shows on: the suggestions of the people sharing its
    interests, when it shows them, and the organiser's attendee page, whose new version the
    row is inserted with. (When the same person checked in a moment ago from elsewhere,
    both have moved on for nothing: those pages are drawn again once, unchanged.)
    """
    interest_ids = intern_interest_ids(interests)
    if interest_ids and profile.share_profile:
        # Their interests show to everyone: suggestions sharing them may change.
        interests_changed(event.id, [interest_key(name) for name in interests])
    attendance_id: int | None = insert_ignoring_conflict(
        Attendance.__table__,
        {
            "event_id": event.id,
            "person_id": person_id,
            "badge_token_hash": hash_token(badge_token),
            "checked_in_at": now,
            "profile_consent_at": now if profile.share_profile else None,
            "followup_consent_at": now if profile.want_followups else None,
            "listed_version": attendees_move_on(event.id),
            **visibility,
        },
        ["event_id", "person_id"],
    )
    if attendance_id is None:  # the same person checked in a moment ago, from elsewhere
        return None
    if interest_ids:
        db.session.execute(
            sa.insert(attendance_interest),
            [{"attendance_id": attendance_id, "interest_id": i} for i in interest_ids],
        )
    return attendance_id


def _check_in_known_person(
    event: Event,
    profile: Profile,
    email: str,
    interests: list[str],
    links: list[str],
    device_secret: str,
    person_id: int | None,
) -> CheckInResult:
    """Check in someone already on Rapport: only from a phone that is theirs.

    Their profile is updated from the form once their check-in is added: when the same
    person checked in from elsewhere a moment before, that check-in stands, as it was.
    """
    person = db.session.scalars(sa.select(Person).where(Person.email == email)).one()
    owns_person = person.id == person_id
    if person_id is not None and person.id != person_id:
        device_secret = new_token()
    badge_token = badge_token_for(device_secret, event.id, person.id)

    existing = _attendance_of(event, person)
    if existing is not None:
        return _again(existing, person, badge_token, device_secret, person_id)
    if not owns_person:
        raise CheckInError("email_in_use")

    # The interest counts and the event's row first, then the person: the order every
    # change takes them (domain/versions.py).
    attendance_id = _add_attendance(
        event,
        person.id,
        badge_token,
        profile,
        interests,
        utcnow(),
        starting_visibility(person, share=profile.share_profile),
    )
    if attendance_id is None:
        existing = _attendance_of(event, person)
        assert existing is not None
        return _again(existing, person, badge_token, device_secret, person_id)
    person.name = profile.name.strip()
    person.about = profile.about.strip()
    person.talk_about = profile.talk_about.strip()
    person.links = links
    db.session.flush()
    # Their name and profile show on the badges of the people they connected with; they
    # join the "met before" lists of those here, and each side's digest will name the other.
    met_again = met_here_before(event, person.id)
    theirs = sa.select(Attendance.id).where(Attendance.person_id == person.id)
    badges_moved_on(connected_with(db.session.scalars(theirs)), met_again)
    if met_again:
        queue_digests([attendance_id, *met_again])
    if profile.want_followups and person.email_confirmed_at is None:
        request_confirmation(person, event)
    db.session.flush()
    return CheckInResult(
        attendance_id,
        event.id,
        PersonKey.of(person),
        badge_token,
        created=True,
        device_secret=device_secret,
    )


def find_attendance_by_badge(token: str) -> Attendance | None:
    """Return the attendance a badge token opens (a phone's, or a printed badge's), or None."""
    return db.session.scalars(
        _badge_lookup_statement(), {"token_hash": hash_token(token)}
    ).one_or_none()


@functools.cache
def _badge_lookup_statement() -> sa.Select[tuple[Attendance]]:
    # Built once: every badge page, card and connection request starts here. Its person and
    # event come in the same row, as each of those pages shows them.
    token_hash = sa.bindparam("token_hash", type_=sa.String())
    return (
        sa.select(Attendance)
        .where(
            sa.or_(
                Attendance.badge_token_hash == token_hash,
                Attendance.printed_token_hash == token_hash,
            )
        )
        .options(joinedload(Attendance.person), joinedload(Attendance.event))
    )


def find_event_by_checkin_token(token: str) -> Event | None:
    """Return the event a poster token opens, or None.

    Remembered for a few seconds (domain/caching.py), detached from the session: read
    its columns, follow none of its relationships.
    """

    def load() -> Event | None:
        event = db.session.scalars(
            sa.select(Event).where(Event.checkin_token == token)
        ).one_or_none()
        if event is not None and caching.enabled():
            db.session.expunge(event)
        return event

    return caching.remembered(caching.poster_key(token), load)


def _again(
    existing: Attendance,
    person: Person,
    badge_token: str,
    device_secret: str,
    person_id: int | None,
) -> CheckInResult:
    """Answer a second check-in of the same person: the same device gets its badge back."""
    again = CheckInResult(
        existing.id,
        existing.event_id,
        PersonKey.of(person),
        badge_token,
        created=False,
        device_secret=device_secret,
    )
    if same_token(badge_token, existing.badge_token_hash):
        return again
    if existing.person_id == person_id:
        # This phone already belongs to the person: it takes the badge over.
        existing.badge_token_hash = hash_token(badge_token)
        return again
    raise CheckInError("checked_in_elsewhere")


def _attendance_of(event: Event, person: Person) -> Attendance | None:
    return db.session.scalars(
        sa.select(Attendance)
        .where(Attendance.event_id == event.id, Attendance.person_id == person.id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def default_visibility(*, share: bool) -> dict[str, str]:
    """Return the visibility settings a check-in starts with.

    Ticking "show my profile" shows name, about, interests and talking points to
    everyone here and email and links to connections; leaving it unticked shows
    nothing but the name until the person chooses otherwise.
    """
    if not share:
        return {f"{field}_visibility": Visibility.NOBODY.value for field in PROFILE_FIELDS}
    return {
        "about_visibility": Visibility.EVERYONE.value,
        "interests_visibility": Visibility.EVERYONE.value,
        "talk_visibility": Visibility.EVERYONE.value,
        "links_visibility": Visibility.CONNECTIONS.value,
        "email_visibility": Visibility.CONNECTIONS.value,
    }
