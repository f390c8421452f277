"""The page every new phone at the door gets is rendered once and given each phone's token.

At the door each arriving phone asks for the same check-in page; the server keeps it for a
few seconds (as deployed: LOOKUP_CACHE_SECONDS) and puts in only the phone's own CSRF
token. These tests run with the memo on and CSRF checked, as a real server does.
"""

from __future__ import annotations

import re

import pytest

from domain.db import db, writing
from domain.events import EventDetails, local_time, update_event
from tests.conftest import csrf_token_from

TOKEN = re.compile(r'name="csrf_token"( type="hidden")? value="[^"]+"')


@pytest.fixture
def door(app_factory, make_organiser, make_event):
    """A server as deployed (memo on, CSRF checked) and an open event.

    No app context stays open around the requests: each has its own, as on a server (a
    context kept open would carry one request's CSRF token into the next).
    """
    event = make_event(make_organiser(), name="Run club social")  # in the test's own app
    return app_factory(LOOKUP_CACHE_SECONDS=60, WTF_CSRF_ENABLED=True), event


def without_tokens(page: str) -> str:
    return TOKEN.sub('name="csrf_token" value=""', page)


def test_each_new_phone_gets_the_same_page_with_its_own_working_token(door):
    app, event = door
    poster = event.checkin_token
    ana, ben = app.test_client(), app.test_client()
    ana_page = ana.get(f"/e/{poster}").text
    ben_page = ben.get(f"/e/{poster}").text
    assert without_tokens(ana_page) == without_tokens(ben_page)
    assert "Run club social" in ana_page
    ana_token, ben_token = csrf_token_from(ana_page), csrf_token_from(ben_page)
    assert ana_token != ben_token
    # Both forms on the page (check-in and sign-in link) carry the phone's own token.
    tokens = re.findall(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', ana_page)
    assert tokens == [ana_token, ana_token]

    guest = {"name": "Ana", "email": "ana@example.org", "interests": "chess"}
    # Another phone's token is refused and nothing is saved ...
    refused = ana.post(f"/e/{poster}", data={**guest, "csrf_token": ben_token})
    assert refused.status_code == 400
    # ... and each phone's own works.
    done = ana.post(f"/e/{poster}", data={**guest, "csrf_token": ana_token})
    assert done.status_code == 303 and "/b/" in done.headers["Location"]
    done = ben.post(
        f"/e/{poster}",
        data={"name": "Ben", "email": "ben@example.org", "csrf_token": ben_token},
    )
    assert done.status_code == 303 and "/b/" in done.headers["Location"]


def test_the_page_kept_for_new_phones_matches_one_rendered_afresh(app_factory, door):
    app, event = door
    poster = event.checkin_token
    kept = app.test_client().get(f"/e/{poster}").text
    # The same page from a server that keeps nothing (every page rendered for its phone).
    fresh_app = app_factory(LOOKUP_CACHE_SECONDS=0, WTF_CSRF_ENABLED=True)
    fresh = fresh_app.test_client().get(f"/e/{poster}").text
    assert without_tokens(kept) == without_tokens(fresh)


def test_a_change_to_the_event_shows_on_the_next_new_phone_at_once(door):
    app, event = door
    poster = event.checkin_token
    before = app.test_client().get(f"/e/{poster}").text
    assert "Run club social" in before
    with writing():
        update_event(
            event,
            EventDetails(
                name="Run club <social>",
                starts_at=local_time(event, event.starts_at).replace(tzinfo=None),
                ends_at=local_time(event, event.ends_at).replace(tzinfo=None),
                timezone=event.timezone,
                venue="The track",
                description="Bring shoes",
            ),
        )
        db.session.commit()
    after = app.test_client().get(f"/e/{poster}").text
    assert "Run club &lt;social&gt;" in after and "<social>" not in after
    assert "The track" in after and "Bring shoes" in after


def test_a_phone_holding_a_badge_elsewhere_gets_its_own_navigation(door, make_event):
    app, event = door
    poster = event.checkin_token
    other = make_event(name="Brunch in March")
    phone = app.test_client()
    form = phone.get(f"/e/{other.checkin_token}").text
    badge = phone.post(
        f"/e/{other.checkin_token}",
        data={"name": "Ana", "email": "ana@example.org", "csrf_token": csrf_token_from(form)},
    )
    assert badge.status_code == 303
    phone.get(badge.headers["Location"])  # the badge shows "You're checked in." and is done
    # A new phone first, so the page for new phones is kept ...
    kept = app.test_client().get(f"/e/{poster}").text
    assert "Brunch in March" not in kept
    # ... then Ana's phone, which holds a badge from another event, gets its navigation.
    assert "Brunch in March" in phone.get(f"/e/{poster}").text
    # Asking to check in someone else gets that form, not the kept one.
    assert f"/e/{poster}?new=1" in phone.get(f"/e/{poster}?new=1").text


def test_a_phone_with_a_message_waiting_gets_the_message(door):
    app, event = door
    poster = event.checkin_token
    kept = app.test_client().get(f"/e/{poster}").text
    phone = app.test_client()
    with phone.session_transaction() as session:
        session["_flashes"] = [("info", "Signed out on every phone.")]
    assert "Signed out on every phone." not in kept
    assert "Signed out on every phone." in phone.get(f"/e/{poster}").text
    # Shown once: the next page is the one every new phone gets.
    assert without_tokens(phone.get(f"/e/{poster}").text) == without_tokens(kept)
