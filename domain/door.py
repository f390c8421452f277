"""The door desk: checking people in by hand, saying whose badge was scanned, the live count."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from domain.attendees import organiser_card
from domain.checkin import CheckInError, Profile, check_in, find_attendance_by_badge
from domain.db import db, utcnow
from domain.events import local_time
from domain.limits import DOOR_RECENT
from domain.models import Attendance, Event, Person
from domain.profile import normalise_email
from domain.tokens import new_token

# Someone checked in at the door without an email is stored under an address of the
# reserved .invalid domain (RFC 2606): unique, never deliverable, and never sent to, since
# such a person gives no consent to follow-ups.
NO_EMAIL_DOMAIN = "no-email.invalid"
_BADGE_LINK = re.compile(r"(?:^|/)b/([A-Za-z0-9_-]{16,128})/?$")
_POSTER_LINK = re.compile(r"(?:^|/)e/([A-Za-z0-9_-]{16,128})/?$")


@dataclass(frozen=True)
class DoorCheckIn:
    """A check-in made at the door: the attendance, and whether it is new."""

    attendance: Attendance
    created: bool


def check_in_at_door(
    event: Event,
    *,
    name: str,
    email: str = "",
    interests: list[str] | None = None,
    share_profile: bool = False,
    want_followups: bool = False,
) -> DoorCheckIn:
    """Check someone in by hand; with an email, the same person is checked in only once.

    An email that belongs to someone Rapport already knows, who is not checked in here, is
    refused: the desk must neither show their profile nor put them at an event they did not
    choose; they check in on their own phone, or here without an email. Without an email
    nothing is ever sent. Raise CheckInError outside the event's check-in window.
    """
    email = normalise_email(email)
    known = _person_by_email(email) if email else None
    if known is not None:
        existing = _attendance_at(event, known)
        if existing is not None:
            return DoorCheckIn(existing, created=False)
        raise CheckInError(
            "email_known",
            "Someone with a Rapport profile already uses that email: they can check in on "
            "their phone with it, or check them in here without an email.",
        )
    profile = Profile(
        name=name,
        email=email or f"{secrets.token_hex(16)}@{NO_EMAIL_DOMAIN}",
        interests=interests or [],
        share_profile=share_profile,
        want_followups=want_followups and bool(email),
    )
    try:
        # A fresh secret nobody keeps: the phone badge of a door check-in opens nothing, and
        # the person is reached through their printed badge (domain/badgesheet.py).
        result = check_in(event, profile, device_secret=new_token())
    except CheckInError as error:
        # Someone checked the same address in at the same moment: theirs is the check-in.
        raced = _person_by_email(email) if email else None
        existing = _attendance_at(event, raced) if raced else None
        if existing is None or error.code not in ("checked_in_elsewhere", "email_in_use"):
            raise
        return DoorCheckIn(existing, created=False)
    return DoorCheckIn(result.attendance, created=result.created)


def _person_by_email(email: str) -> Person | None:
    return db.session.scalars(sa.select(Person).where(Person.email == email)).one_or_none()


def _attendance_at(event: Event, person: Person) -> Attendance | None:
    return db.session.scalars(
        sa.select(Attendance).where(
            Attendance.event_id == event.id, Attendance.person_id == person.id
        )
    ).one_or_none()


def has_email(attendance: Attendance) -> bool:
    """Tell whether a person gave a real email address (not one made up at the door)."""
    return not attendance.person.email.endswith("@" + NO_EMAIL_DOMAIN)


# ---------------------------------------------------------------- the count


@dataclass(frozen=True)
class DoorCount:
    """How many people are checked in, and how many arrived lately."""

    checked_in: int
    recent: int
    recent_minutes: int = int(DOOR_RECENT.total_seconds() // 60)


def door_count(event: Event) -> DoorCount:
    """Return the door desk's live count for an event."""
    since = utcnow() - DOOR_RECENT
    total, recent = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(Attendance.checked_in_at > since),
        ).where(Attendance.event_id == event.id)
    ).one()
    return DoorCount(total or 0, recent or 0)


# ---------------------------------------------------------------- scanning


@dataclass(frozen=True)
class ScannedBadge:
    """What the door desk says about a scanned code.

    `outcome` is "found", "other_event", "stale", "poster" or "not_a_badge"; for "found"
    the rest says who the person is, as the attendee list shows them.
    """

    outcome: str
    name: str = ""
    arrived: datetime | None = None
    first_timer: bool | None = None
    earlier_events: int = 0
    interests: list[str] = field(default_factory=list)
    attendance_id: int | None = None


def badge_token_in(code: str) -> str | None:
    """Return the badge token a scanned code (a badge link, its path or the token) holds."""
    code = code.strip().split("?")[0].split("#")[0]
    match = _BADGE_LINK.search(code)
    if match:
        return match.group(1)
    if re.fullmatch(r"[A-Za-z0-9_-]{16,128}", code):
        return code
    return None


def scan_badge(event: Event, code: str) -> ScannedBadge:
    """Say whose badge a scanned code is, at this event; nothing of another event shows."""
    if _POSTER_LINK.search(code.strip().split("?")[0]):
        return ScannedBadge("poster")
    token = badge_token_in(code)
    if token is None:
        return ScannedBadge("not_a_badge")
    attendance = find_attendance_by_badge(token)
    if attendance is None:
        return ScannedBadge("stale")
    if attendance.event_id != event.id:
        return ScannedBadge("other_event")
    card = organiser_card(attendance)
    earlier = earlier_events(attendance)
    return ScannedBadge(
        "found",
        name=card.name,
        arrived=local_time(event, attendance.checked_in_at),
        first_timer=earlier == 0,
        earlier_events=earlier,
        interests=card.interests,
        attendance_id=attendance.id,
    )


def earlier_events(attendance: Attendance) -> int:
    """Return at how many of this organiser's earlier events the person checked in."""
    event = attendance.event
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .join(Event, Event.id == Attendance.event_id)
            .where(
                Attendance.person_id == attendance.person_id,
                Event.organiser_id == event.organiser_id,
                Event.id != event.id,
                Event.starts_at < event.starts_at,
            )
        )
        or 0
    )
