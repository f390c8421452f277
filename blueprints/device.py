"""What this phone remembers, in its signed session cookie: its secret and its badges."""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from flask import (
    Flask,
    Request,
    current_app,
    g,
    has_request_context,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

from domain.badges import retire_badges
from domain.checkin import CheckInResult, PersonKey, find_attendance_by_badge
from domain.db import db, utcnow
from domain.events import local_time
from domain.limits import MAX_REMEMBERED_BADGES, SESSION_COOKIE_RESENT_AFTER_SECONDS
from domain.models import Attendance, Event, Person
from domain.people import end_sessions, session_is_current
from domain.tokens import derive_token, hash_token, new_token, same_token


class SignedSession(SecureCookieSession):
    """A session from a signed cookie, knowing when that cookie was signed (None: new)."""

    signed_at: datetime | None = None


class PhoneSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, the cookie of an unchanged one sent again once a day.

    Flask signs a lasting session's cookie anew and sends it with every answer, so that it
    lives 90 days from the last visit. Every page of a phone then pays for signing it and
    carries it. Here an unchanged cookie is sent again only once it is a day old (or a tenth
    of the session's lifetime, when that is shorter): it still lives at least 89 days from
    the last visit, and a changed session is sent at once.
    """

    session_class = SignedSession

    def open_session(self, app: Flask, request: Request) -> SignedSession | None:  # type: ignore[override]
        signer = self.get_signing_serializer(app)
        if signer is None:
            return None
        found = read_cookie(app, signer, request.cookies.get(self.get_cookie_name(app)))
        if found is None:
            return self.session_class()
        opened = self.session_class(found[0])
        opened.signed_at = found[1]
        return opened

    def should_set_cookie(self, app: Flask, session: SecureCookieSession) -> bool:
        if session.modified:
            return True
        if not super().should_set_cookie(app, session):
            return False  # not a lasting session, or sending it again is turned off
        signed_at = getattr(session, "signed_at", None)
        if signed_at is None:
            return True
        lifetime = app.permanent_session_lifetime.total_seconds()
        resend_after = min(SESSION_COOKIE_RESENT_AFTER_SECONDS, lifetime / 10)
        return (utcnow() - signed_at).total_seconds() >= resend_after


def read_cookie(
    app: Flask, signer: URLSafeTimedSerializer, value: str | None
) -> tuple[Any, datetime] | None:
    """Return a session cookie's data and when it was signed, or None if it is missing,
    forged or older than a session lives."""
    if not value:
        return None
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    try:
        return signer.loads(value, max_age=lifetime, return_timestamp=True)  # type: ignore[no-any-return]
    except BadSignature:
        return None


def device_secret() -> str:
    """Return this device's secret, creating it on first use."""
    secret = session.get("device")
    if not _is_secret(secret):
        secret = new_token()
        session["device"] = secret
        session.permanent = True
    if not _is_secret(session.get("phone")):
        session["phone"] = new_token()
    return secret


def limit_key() -> str | None:
    """Return the key this phone's rate limits count under, or None before it has one.

    The phone's own random id, kept when the phone starts over for someone new (a phone
    passed around, or a script checking in stranger after stranger, is still one phone);
    hashed, so the limiter's storage never holds it.
    """
    phone = session.get("phone")
    return "device:" + derive_token(phone, "rate-limits") if _is_secret(phone) else None


def _is_secret(value: object) -> bool:
    return isinstance(value, str) and len(value) >= 43


def remember(badge: CheckInResult) -> None:
    """Remember on this device that it holds a person's badge at an event.

    From the plain values of the check-in: nothing here asks the database.
    """
    badges = dict(session.get("badges") or {})
    badges.pop(str(badge.event_id), None)
    badges[str(badge.event_id)] = badge.badge_token
    while len(badges) > MAX_REMEMBERED_BADGES:
        badges.pop(next(iter(badges)))
    session["badges"] = badges
    session["person"] = _reference(badge.person)
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
    return _held(mine) if mine is not None and mine.event_id == event_id else None


def owner() -> Person | None:
    """Return the person this device belongs to, if it has checked in before."""
    return _resolve(session.get("person"))


def person_id() -> int | None:
    """Return the id of the person this device belongs to, if any."""
    person = owner()
    return person.id if person is not None else None


def holds_badge(token: str) -> bool:
    """Tell whether this device holds a badge token, at any event."""
    held = (session.get("badges") or {}).values()
    return any(isinstance(mine, str) and hmac.compare_digest(mine, token) for mine in held)


def holds(event_id: int, token: str) -> bool:
    """Tell whether this device holds exactly this badge token for an event."""
    held = badge_token(event_id)
    return held is not None and hmac.compare_digest(held, token)


def owns(attendance: Attendance) -> bool:
    """Tell whether this device holds the badge of an attendance."""
    token = badge_token(attendance.event_id)
    if token is None or not same_token(token, attendance.badge_token_hash):
        return False
    _held(attendance)
    return True


# Kept in the request's environ, not in g: g lives as long as the app context, which a
# test client's requests may share.
HELD_KEY = "rapport.held_badges"


def _held(attendance: Attendance) -> Attendance:
    """Note, for this request's navigation, a badge this phone was found to hold."""
    request.environ.setdefault(HELD_KEY, {})[attendance.event_id] = attendance
    return attendance


def new_secret() -> str:
    """Return a fresh device secret, for a phone about to start over."""
    return new_token()


def start_over(secret: str | None = None, *, keeping: Person | None = None) -> str:
    """Start a clean session under a new device secret: nothing of the last user stays.

    `keeping` is the person the phone now goes to: if it was already theirs, the badges
    it holds for them stay. Whoever else the phone held is let go everywhere: their /me
    sessions end on every phone, and the badges this phone held open nothing any more,
    so a copy of the cookie taken earlier is worth nothing. The caller commits.
    """
    named = _named(session.get("person"))
    kept = keeping is not None and named is not None and named.id == keeping.id
    badges = session.get("badges") if kept else None
    _let_go(keeping, keep_badges=kept)
    phone = session.get("phone")
    session.clear()
    # The form token lives in the session too: drop this request's cached copy, so a form
    # rendered from now on carries a token that matches the new session.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    secret = secret or new_secret()
    session["device"] = secret
    session["phone"] = phone if _is_secret(phone) else new_token()
    session.permanent = True
    if badges and keeping is not None:
        session["badges"] = badges
        session["person"] = _reference(keeping)
    return secret


def hold(result: CheckInResult) -> None:
    """Hold the badge a check-in gave; a phone passed to someone new starts over first."""
    # A phone whose session for someone else has ended elsewhere still holds their badges:
    # it starts over too, though the check-in kept its secret.
    named = _named(session.get("person"))
    if result.device_secret != session.get("device") or (
        named is not None and named.id != result.person.id
    ):
        start_over(result.device_secret)
    remember(result)


def sign_in(person: Person) -> None:
    """Remember that this device belongs to a person who proved their address."""
    session["me"] = session["person"] = _reference(person)
    session.permanent = True


def signed_in_person() -> Person | None:
    """Return the person signed in to /me on this device, if they still exist."""
    return _resolve(session.get("me"))


def _reference(person: Person | PersonKey) -> list[int]:
    # An id alone could come to name someone else once its person is deleted (SQLite
    # reuses the highest id), so a reference also carries when the person was created;
    # and the person's session epoch, so letting go of them on any phone ends it.
    return [person.id, int(person.created_at.timestamp() * 1_000_000), person.session_epoch]


def _named(value: object) -> Person | None:
    """Return the person a reference names, whether or not its session has ended."""
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value)):
        return None
    person = db.session.get(Person, value[0])
    if person is None or _reference(person)[:2] != value[:2]:
        return None
    return person


def _resolve(value: object) -> Person | None:
    person = _named(value)
    if person is None or not session_is_current(person, value[2]):  # type: ignore[index]
        return None
    return person


def _let_go(keeping: Person | None, *, keep_badges: bool) -> None:
    """End the sessions of everyone this phone holds but `keeping`, and retire its badges."""
    held = {_resolve(session.get(key)) for key in ("me", "person")} - {None}
    for person in held:
        if person is not None and (keeping is None or person.id != keeping.id):
            end_sessions(person)
    if not keep_badges:
        tokens = (session.get("badges") or {}).values()
        retire_badges(token for token in tokens if isinstance(token, str))


def sign_out() -> None:
    """Forget who this device belongs to, and every badge it holds, on every copy of it."""
    start_over()


# ---------------------------------------------------------------- the attendee pages' navigation


@dataclass(frozen=True)
class NavEvent:
    """One event this phone holds a working badge for, as the navigation links to it."""

    event_id: int
    name: str
    badge_url: str
    event_url: str
    when: str  # the day it starts, in its own time zone: "1 Mar"


class PhoneNavigation:
    """Where the small navigation of every attendee page leads on this phone.

    Looked up from the badges the phone holds only when a page shows it, in one query.
    """

    @cached_property
    def events(self) -> dict[int, NavEvent]:
        """Return the events this phone holds a working badge for, the latest last."""
        held = {
            int(event_id): token
            for event_id, token in (session.get("badges") or {}).items()
            if isinstance(token, str) and str(event_id).isdigit()
        }
        if not held:
            return {}
        # A page that has found the phone's badges already (its own badge page, as a rule:
        # most phones hold one) needs no query for them.
        found: dict[int, Attendance] = request.environ.get(HELD_KEY, {})
        if held.keys() <= found.keys():
            working = {event_id: found[event_id].event for event_id in held}
        else:
            rows = db.session.execute(
                _held_statement(), {"hashes": [hash_token(t) for t in held.values()]}
            ).all()
            working = {
                event_id: event
                for event_id, token_hash, event in rows
                if event_id in held and hash_token(held[event_id]) == token_hash
            }
        return {
            event_id: NavEvent(
                event_id,
                working[event_id].name,
                url_for("badge.view", token=token),
                url_for("public.landing", token=working[event_id].checkin_token),
                _day(local_time(working[event_id], working[event_id].starts_at)),
            )
            for event_id, token in held.items()
            if event_id in working
        }

    @cached_property
    def latest(self) -> NavEvent | None:
        """Return the event this phone checked in at last, if it holds a badge anywhere."""
        return next(reversed(self.events.values()), None)

    @property
    def known(self) -> bool:
        """Tell whether this phone holds a badge or is signed in to /me."""
        return bool(session.get("me")) or self.latest is not None

    def here(self, event_id: int | None) -> NavEvent | None:
        """Return the badge a page links to as "My badge": the one at the event on screen,
        or, on a page about no event, the latest."""
        if event_id is None:
            return self.latest
        return self.events.get(event_id)

    def links(self, event_id: int | None) -> list[tuple[str, str]]:
        """Return the navigation's links, as (text, address), for a page about an event."""
        mine = url_for("me.home")
        here = self.here(event_id)
        if here is not None:
            return [
                ("My badge", here.badge_url),
                ("My connections", mine),
                (here.name, here.event_url),
            ]
        older = self.latest
        if older is not None:
            # A page about an event this phone has no badge at: the badge it holds is from
            # another event, so it is named with its day rather than called "My badge".
            return [("My connections", mine), (f"{older.name}, {older.when}", older.badge_url)]
        return [("My connections", mine)]

    def brand(self, event_id: int | None) -> str:
        """Return where the logo leads: the badge at the event on screen, or /me."""
        here = self.here(event_id)
        return here.badge_url if here is not None else url_for("me.home")


@functools.cache
def _held_statement() -> sa.Select[tuple[int, str, Event]]:
    # Built once: every page of a phone that holds a badge runs it, for its navigation.
    return (
        sa.select(Attendance.event_id, Attendance.badge_token_hash, Event)
        .join(Event, Event.id == Attendance.event_id)
        .where(Attendance.badge_token_hash.in_(sa.bindparam("hashes", expanding=True)))
    )


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b}"


def navigation_context() -> dict[str, object]:
    """Give every page the phone's navigation; emails rendered by the worker get nothing."""
    return {"phone_nav": PhoneNavigation()} if has_request_context() else {}
