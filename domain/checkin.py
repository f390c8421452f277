"""Checking a person in at an event, once, from the phone that scanned the poster."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from domain.db import db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.followups import request_confirmation
from domain.models import PROFILE_FIELDS, Attendance, Event, Person, Visibility
from domain.profile import intern_interests, normalise_email, normalise_interests, normalise_links
from domain.tokens import derive_token, hash_token, new_token, same_token


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


@dataclass(frozen=True)
class CheckInResult:
    """The attendance, the badge token the device now holds, and whether it is new.

    `device_secret` is the secret the badge token was derived from: a new one when the
    phone passed to someone new, which the phone must keep from now on.
    """

    attendance: Attendance
    badge_token: str
    created: bool
    device_secret: str


def badge_token_for(device_secret: str, event: Event, person: Person) -> str:
    """Return the badge token a device gets for a person's check-in at an event."""
    # The person is part of the derivation, so two people who use one phone at one event
    # can never be given the same badge token.
    return derive_token(device_secret, f"badge:{event.id}:{person.id}")


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
            "links": [],
            "created_at": now,
            "updated_at": now,
        },
        ["email"],
    )
    person = db.session.scalars(sa.select(Person).where(Person.email == email)).one()
    owns_person = new_person_id is not None or person.id == person_id
    if person_id is not None and person.id != person_id:
        # A phone passed to someone new: nothing the last person's secret made is theirs.
        device_secret = new_token()
    badge_token = badge_token_for(device_secret, event, person)

    existing = _attendance_of(event, person)
    if existing is not None:
        return _again(existing, badge_token, device_secret, person_id)
    if not owns_person:
        raise CheckInError("email_in_use")

    person.name = profile.name.strip()
    person.about = profile.about.strip()
    person.talk_about = profile.talk_about.strip()
    person.links = links
    new_attendance_id = insert_ignoring_conflict(
        Attendance.__table__,
        {
            "event_id": event.id,
            "person_id": person.id,
            "badge_token_hash": hash_token(badge_token),
            "checked_in_at": now,
            "profile_consent_at": now if profile.share_profile else None,
            "followup_consent_at": now if profile.want_followups else None,
            **default_visibility(share=profile.share_profile),
        },
        ["event_id", "person_id"],
    )
    attendance = _attendance_of(event, person)
    assert attendance is not None
    if new_attendance_id is None:
        return _again(attendance, badge_token, device_secret, person_id)
    attendance.interests = intern_interests(interests)
    if profile.want_followups and person.email_confirmed_at is None:
        request_confirmation(person, event)
    db.session.flush()
    return CheckInResult(attendance, badge_token, created=True, device_secret=device_secret)


def find_attendance_by_badge(token: str) -> Attendance | None:
    """Return the attendance a badge token opens (a phone's, or a printed badge's), or None."""
    token_hash = hash_token(token)
    return db.session.scalars(
        sa.select(Attendance).where(
            sa.or_(
                Attendance.badge_token_hash == token_hash,
                Attendance.printed_token_hash == token_hash,
            )
        )
    ).one_or_none()


def find_event_by_checkin_token(token: str) -> Event | None:
    """Return the event a poster token opens, or None."""
    return db.session.scalars(sa.select(Event).where(Event.checkin_token == token)).one_or_none()


def _again(
    existing: Attendance, badge_token: str, device_secret: str, person_id: int | None
) -> CheckInResult:
    """Answer a second check-in of the same person: the same device gets its badge back."""
    again = CheckInResult(existing, badge_token, created=False, device_secret=device_secret)
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
