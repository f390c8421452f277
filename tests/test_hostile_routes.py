"""Whatever anyone types or sends, no route answers 5xx.

Routes come from the app's URL map, so a new route is covered without editing this file. Each
is exercised in the state where its forms are really processed: an organiser signed in with
an event, a phone holding a badge and signed in to /me, real tokens and ids substituted into
the URL (and unknown ones too), CSRF off so the forms reach their validators and the domain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule
from wtforms.fields.core import UnboundField

import blueprints.forms
from app import create_app
from domain.checkin import CheckInResult, Profile, check_in
from domain.communities import attach_event, create_community
from domain.connections import request_connection
from domain.db import ID_MAX, db, utcnow, writing
from domain.events import EventDetails, create_event, wall_clock_now
from domain.followups import update_followup_settings
from domain.models import Event, Organiser, OutboxMessage
from domain.organisers import create_organiser
from domain.people import send_sign_in_link
from domain.tokens import new_token
from tests.conftest import PASSWORD
from tests.fake_sendgrid import WebhookSigner
from tests.mail_support import Mailbox, end_now

# Examples per route: about two minutes per engine for the whole map.
EXAMPLES = {"GET": 8, "POST": 30}
SKIPPED_ENDPOINTS = {"static"}


def _rules() -> list[tuple[str, str, str]]:
    """Return (endpoint, rule, method) for every route of the app, from its URL map."""
    probe = create_app({"SECRET_KEY": "probe", "DATABASE_URL": "sqlite://", "TESTING": True})
    found = set()
    for rule in probe.url_map.iter_rules():
        if rule.endpoint in SKIPPED_ENDPOINTS:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.add((rule.endpoint, rule.rule, method))
    return sorted(found)


def _form_fields() -> list[str]:
    """Return the name of every field of every form the app has."""
    names = set()
    for value in vars(blueprints.forms).values():
        if isinstance(value, type) and issubclass(value, FlaskForm):
            for klass in value.__mro__:
                names.update(k for k, v in vars(klass).items() if isinstance(v, UnboundField))
    return sorted(names)


FIELDS = _form_fields()
QUERY_KEYS = ["next", "q", "timezone", "page"]
KEYS = [*FIELDS, *QUERY_KEYS, "csrf_token", "List-Unsubscribe", "unknown"]

# Values that pass the validators, so a form reaches the domain unless a field is made hostile.
BASELINE = {
    "name": "Ana",
    "email": "ana.fuzz@example.org",
    "password": PASSWORD,
    "about": "Baker",
    "interests": "sourdough, chess",
    "talk_about": "ovens",
    "links": "https://ana.example",
    "share_profile": "y",
    "want_followups": "y",
    "starts_at": "2030-06-01T10:00",
    "ends_at": "2030-06-01T12:00",
    "timezone": "Europe/London",
    "venue": "Hall",
    "description": "A meetup",
    "note": "met at the bar",
    "confirm": "y",
}

HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u202eevil.exe",
    "\u200b",
    "\ufeff",
    "[",
    "]",
    "[]",
    "https://[::1",
    "foo[bar",
    "a@[127.0.0.1]",
    "http://[::1]:99999",
    "javascript:alert(1)",
    "\uff4a\uff41\uff56\uff41",  # fullwidth letters
    "\u0430\u0440\u0440\u04cf\u0435.com",  # Cyrillic that looks like apple.com
    "\u13aadmin",
    "\U0001f600" * 50,
    "\u0645\u062d\u0645\u062f",
    "\u738b\u5c0f\u660e",
    "x" * 5_000,
    "9" * 400,
    "-1",
    "0",
    "2147483648",
    "1e309",
    "NaN",
    "true",
    "null",
    "{}",
    "[1]",
    "2026-02-30T10:00",
    "2026-13-01T25:61",
    "9999-12-31T23:59",
    "0001-01-01T00:00",
    "Europe/Nowhere",
    "../../etc/passwd",
    "%00",
    "\r\nBcc: x@example.org",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "@",
    "a" * 300 + "@example.org",
    "\udcff",  # a lone surrogate, as some decoders produce from bad bytes
]
HUGE = "h" * 70_000

# A special character spliced into something that looks like the field's usual value.
PREFIXES = ["", "https://", "https://example.org/", "a@", "Ana ", "2026-06-01T", "http://x:"]
SPECIALS = [
    *("[", "]", "[::1", "[]"),
    *("\x00", "\u202e", "\r\n", "%", "@", ":", "\U0001f600", "\uff41", "\\", "'"),
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _hostile(draw: st.DrawFn, rnd: random.Random) -> str | bytes:
    """Pick one hostile value: a known troublemaker, a spliced one, or arbitrary text or bytes."""
    kind = rnd.randrange(5)
    if kind < 2:
        return rnd.choice(HOSTILE)
    if kind == 2:
        return rnd.choice(PREFIXES) + rnd.choice(SPECIALS) + draw(st.text(max_size=12))
    if kind == 3:
        return draw(st.text(max_size=120))
    return draw(st.binary(max_size=48))  # sent raw: often not UTF-8 at all


def form_body(draw: st.DrawFn, rnd: random.Random) -> list[tuple[bytes, bytes]]:
    """Draw form fields: the valid baseline, some dropped, some hostile, some repeated."""
    # Mostly valid forms reach the domain; mostly hostile ones test every validator.
    hostile_share = rnd.choice([0.15, 0.5])
    pairs = []
    for key, value in BASELINE.items():
        roll = rnd.random()
        if roll < hostile_share:
            pairs.append((key.encode(), _encode(_hostile(draw, rnd))))
        elif roll < 0.92:
            pairs.append((key.encode(), value.encode()))
        # else: the field is missing
    for _ in range(rnd.randrange(4)):
        pairs.append((rnd.choice(KEYS).encode(), _encode(_hostile(draw, rnd))))  # maybe twice
    rnd.shuffle(pairs)
    return pairs


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Draw one request: URL values, a query string, and a form or JSON body."""
    # Hypothesis's own choices lean towards the simplest values; a Random seeded from a draw
    # (printed with any failure, so it reproduces) spreads hostile values over every field.
    rnd = random.Random(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    query = [(rnd.choice(KEYS), _encode(_hostile(draw, rnd))) for _ in range(rnd.randrange(3))]
    kind = rnd.choice(["form"] * 8 + ["json", "raw", "huge"])
    if kind == "huge":  # past the body limit: a 413, never a 500
        body = urlencode({"name": "Ana", "about": HUGE}).encode()
        content_type = "application/x-www-form-urlencoded"
    elif kind == "form":
        body = urlencode(form_body(draw, rnd)).encode()
        content_type = "application/x-www-form-urlencoded"
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
        content_type = "application/json"
    else:
        body = draw(st.binary(max_size=200))
        content_type = rnd.choice(["multipart/form-data", "text/plain", ""])
    return {
        "token": rnd.randrange(100),
        "id": rnd.randrange(100),
        "query": urlencode(query),
        "body": body,
        "content_type": content_type,
    }


# ---------------------------------------------------------------- the world the routes act on


class World:
    """An organiser with a live event, three phones' worth of people, and real email links."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.signer = WebhookSigner()
        app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = self.signer.public_key
        self.organiser_email = "organiser.fuzz@example.org"
        with writing():
            self.organiser_id = create_organiser(self.organiser_email, PASSWORD).id
            db.session.commit()
        self.mail_tokens = self._mail_tokens()
        self.rebuild()

    def _event(self, name: str) -> Event:
        start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
        with writing():
            event = create_event(
                db.session.get_one(Organiser, self.organiser_id),
                EventDetails(name, start, start + timedelta(hours=4), "Europe/London"),
            )
            db.session.commit()
        return event

    def _attendee(self, event: Event, name: str, **fields: Any) -> CheckInResult:
        profile = Profile(
            name=name, email=f"{name.lower()}.{new_token()[:6]}@example.org", **fields
        )
        with writing():
            result = check_in(event, profile, device_secret=new_token())
            db.session.commit()
        return result

    def _mail_tokens(self) -> dict[str, list[str]]:
        """Send a digest and a sign-in link, and keep the tokens of their links."""
        event = self._event("Past meetup")
        with writing():
            update_followup_settings(event, timing="at_end", nudge_days=7)
            db.session.commit()
        dan = self._attendee(event, "Dan", share_profile=True, want_followups=True)
        eve = self._attendee(event, "Eve", share_profile=True, want_followups=True)
        with writing():
            for result in (dan, eve):
                result.attendance.person.email_confirmed_at = utcnow()
            request_connection(dan.attendance, eve.attendance)
            request_connection(eve.attendance, dan.attendance)
            send_sign_in_link(dan.attendance.person.email)
            db.session.commit()
        end_now(event)
        mailbox = Mailbox(self.app)
        mailbox.deliver()
        tokens: dict[str, list[str]] = {"m": [], "u": [], "f": []}
        for email in mailbox.emails:
            for prefix, token in re.findall(r"/([muf])/([A-Za-z0-9_-]{16,128})", email.text):
                tokens[prefix].append(token)
        assert all(tokens.values()), tokens
        self.mail_ids = sorted(
            {int(i) for email in mailbox.emails for i in re.findall(r"/(\d+)\b", email.text)}
        )
        db.session.remove()
        return tokens

    def rebuild(self) -> None:
        """Make a fresh live event and people: the last request may have changed them."""
        db.session.remove()
        event = self._event("Meetup")
        ana = self._attendee(event, "Ana", share_profile=True, want_followups=True)
        ben = self._attendee(event, "Ben", share_profile=True)
        cleo = self._attendee(event, "Cleo", share_profile=True)
        with writing():
            connection = request_connection(ana.attendance, ben.attendance)
            request_connection(ben.attendance, ana.attendance)
            pending = request_connection(cleo.attendance, ana.attendance)
            community = create_community(
                db.session.get_one(Organiser, self.organiser_id), "Meetup regulars"
            )
            attach_event(community, db.session.get_one(Event, event.id))
            db.session.commit()
        messages = db.session.scalars(
            sa.select(OutboxMessage.id).where(OutboxMessage.event_id == event.id)
        ).all()
        connections = [c.id for c in (connection, pending) if c is not None]
        # Real ids by the URL argument's name; an argument not listed here gets any of them.
        self.ids = {
            "event_id": [event.id],
            "attendance_id": [ben.attendance.id, cleo.attendance.id, ana.attendance.id],
            "connection_id": connections,
            "message_id": messages,
            "community_id": [community.id],
        }
        self.tokens = {
            "e": [event.checkin_token],
            "b": [ana.badge_token] * 3 + [ben.badge_token],  # this phone holds Ana's badge
            **self.mail_tokens,
        }
        person = ana.attendance.person
        reference = [
            person.id,
            int(person.created_at.timestamp() * 1_000_000),
            person.session_epoch,
        ]
        badges = {str(event.id): ana.badge_token}
        db.session.remove()
        self.client = self.app.test_client()
        response = self.client.post(
            "/login", data={"email": self.organiser_email, "password": PASSWORD}
        )
        assert response.status_code == 303
        with self.client.session_transaction() as session:
            session["badges"] = badges
            session["person"] = session["me"] = reference

    def url(self, rule: Rule, drawn: dict[str, Any]) -> str:
        """Fill a URL rule with real tokens and ids (or unknown ones, now and then)."""
        values: dict[str, Any] = {}
        for argument in rule.arguments:
            converter = rule._converters[argument]  # noqa: SLF001 - the rule's own converter
            # Mostly real tokens and ids, so the forms behind them are processed.
            if type(converter).__name__ == "TokenConverter":
                prefix = rule.rule.strip("/").split("/")[0]
                real = self.tokens.get(prefix, [])
                unknown = [new_token(), "A" * 43]
                choices = real if real and drawn["token"] < 80 else unknown
                values[argument] = choices[drawn["token"] % len(choices)]
            elif type(converter).__name__ == "IdConverter":
                real = self.ids.get(argument) or [i for ids in self.ids.values() for i in ids]
                if rule.rule.startswith("/f/"):
                    real = self.mail_ids  # a follow-up link names the connections it is about
                choices = real if real and drawn["id"] < 80 else [ID_MAX, 1, 999_999]
                values[argument] = choices[drawn["id"] % len(choices)]
        with self.app.test_request_context():
            from flask import url_for

            return url_for(rule.endpoint, **values)


RULES = _rules()


@pytest.fixture
def fuzz_app(app_factory: Callable[..., Flask]) -> Iterator[Flask]:
    app = app_factory(RATELIMIT_ENABLED=False)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.mark.parametrize(("endpoint", "path", "method"), RULES)
def test_no_route_answers_5xx_to_hostile_input(
    fuzz_app: Flask, endpoint: str, path: str, method: str
) -> None:
    world = World(fuzz_app)
    (rule,) = [
        r for r in fuzz_app.url_map.iter_rules() if r.endpoint == endpoint and r.rule == path
    ]
    changed = [False]

    @settings(
        max_examples=EXAMPLES.get(method, 20),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(drawn=requests())
    def run(drawn: dict[str, Any]) -> None:
        if changed[0]:
            world.rebuild()
            changed[0] = False
        url = world.url(rule, drawn)
        if drawn["query"]:
            url = f"{url}?{drawn['query']}"
        headers = {}
        body = drawn["body"]
        if endpoint == "webhooks.sendgrid_events":
            headers = world.signer.sign(body.decode("utf-8", "replace"))
            body = body.decode("utf-8", "replace").encode()

        response = world.client.open(
            url,
            method=method,
            data=body if method != "GET" else None,
            content_type=drawn["content_type"] or None,
            headers=headers,
        )
        db.session.remove()
        assert response.status_code < 500, (method, url, drawn, response.text[:300])
        changed[0] = method != "GET" and response.status_code < 400

    run()


def test_an_app_built_without_rate_limits_leaves_the_next_app_limited(
    app_factory: Callable[..., Flask],
) -> None:
    app_factory(RATELIMIT_ENABLED=False)
    limited = app_factory().test_client()
    statuses = [
        limited.post("/login", data={"email": "x@example.org", "password": "wrong"}).status_code
        for _ in range(11)
    ]
    assert statuses[-1] == 429
