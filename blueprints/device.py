"""What this phone remembers, in its signed session cookie: its secret and its badges."""

from __future__ import annotations

from flask import session

from domain.checkin import find_attendance_by_badge
from domain.db import db
from domain.models import Attendance, Person
from domain.tokens import derive_token, new_token, same_token

MAX_REMEMBERED_BADGES = 20


def device_secret() -> str:
    """Return this device's secret, creating it on first use."""
    secret = session.get("device")
    if not _is_secret(secret):
        secret = new_token()
        session["device"] = secret
        session.permanent = True
    return secret


def limit_key() -> str | None:
    """Return the key this device's rate limits count under, or None before it has a secret.

    Derived from the secret, so the limiter's storage never holds the secret itself.
    """
    secret = session.get("device")
    return "device:" + derive_token(secret, "rate-limits") if _is_secret(secret) else None


def _is_secret(value: object) -> bool:
    return isinstance(value, str) and len(value) >= 43


def remember(attendance: Attendance, badge_token: str) -> None:
    """Remember on this device that it holds a person's badge at an event."""
    badges = dict(session.get("badges") or {})
    badges.pop(str(attendance.event_id), None)
    badges[str(attendance.event_id)] = badge_token
    while len(badges) > MAX_REMEMBERED_BADGES:
        badges.pop(next(iter(badges)))
    session["badges"] = badges
    session["person"] = _reference(attendance.person)
    session.permanent = True


def badge_token(event_id: int) -> str | None:
    """Return the badge token this device holds for an event, if any."""
    token = (session.get("badges") or {}).get(str(event_id))
    return token if isinstance(token, str) else None


def attendance_at(event_id: int) -> Attendance | None:
    """Return this device's own check-in at an event, if it holds a working badge there."""
    token = badge_token(event_id)
    if token is None:
        return None
    mine = find_attendance_by_badge(token)
    return mine if mine is not None and mine.event_id == event_id else None


def person_id() -> int | None:
    """Return the person this device belongs to, if it has checked in before."""
    person = _resolve(session.get("person"))
    return person.id if person is not None else None


def owns(attendance: Attendance) -> bool:
    """Tell whether this device holds the badge of an attendance."""
    token = badge_token(attendance.event_id)
    return token is not None and same_token(token, attendance.badge_token_hash)


def forget(event_id: int) -> None:
    """Forget this device's badge for one event, and whose phone it is."""
    badges = dict(session.get("badges") or {})
    badges.pop(str(event_id), None)
    session["badges"] = badges
    session.pop("person", None)


def sign_in(person: Person) -> None:
    """Remember that this device belongs to a person who proved their address."""
    session["me"] = session["person"] = _reference(person)
    session.permanent = True


def signed_in_person() -> Person | None:
    """Return the person signed in to /me on this device, if they still exist."""
    return _resolve(session.get("me"))


def _reference(person: Person) -> list[int]:
    # An id alone could come to name someone else once its person is deleted (SQLite
    # reuses the highest id), so a reference also carries when the person was created.
    return [person.id, int(person.created_at.timestamp() * 1_000_000)]


def _resolve(value: object) -> Person | None:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        return None
    person = db.session.get(Person, value[0])
    if person is None or _reference(person) != value:
        return None
    return person


def sign_out() -> None:
    """Forget who this device belongs to, and every badge it holds."""
    for key in ("me", "person", "badges"):
        session.pop(key, None)
