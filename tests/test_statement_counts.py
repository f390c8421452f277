"""The hot paths send a fixed number of statements, however many people came.

Each count is written here, and the same at 10 and at 1,000 attendees: a page whose
statements grew with the crowd would fail at 1,000. Counted with SQLAlchemy's engine
events (tests/statements.py), BEGIN included, on whichever engine the suite runs.
"""

from __future__ import annotations

import pytest

from domain.db import db
from tests.conftest import login
from tests.crowd import add_crowd
from tests.statements import counting


@pytest.fixture(params=[10, 1000], ids=["10 attendees", "1000 attendees"])
def crowd(request, app_factory, make_organiser, make_event):
    """An app that remembers poster lookups (as deployed), and an event with a crowd."""
    app = app_factory(LOOKUP_CACHE_SECONDS=60)
    with app.app_context():
        organiser = make_organiser()
        event = make_event(organiser)
        add_crowd(event.id, request.param)
        yield app, organiser, event.id, event.checkin_token
        db.session.remove()


def count(request) -> int:
    db.session.remove()
    with counting() as statements:
        response = request()
    assert response.status_code in (200, 303, 304), response.status_code
    return len(statements)


def test_the_door(crowd):
    app, _organiser, _event_id, poster = crowd
    phone = app.test_client()
    # The first look at a poster reads the event and the interests its form offers; the
    # next, in the same process within a few seconds, reads nothing.
    assert count(lambda: phone.get(f"/e/{poster}")) == 3
    assert count(lambda: phone.get(f"/e/{poster}")) == 0
    # BEGIN, then: the person, its interests (two statements), the interests' arrival
    # counts, the organiser page's version (the new line carries it), the check-in, the
    # links to its interests, and the confirmation email.
    guest = {
        "name": "Ana",
        "email": "ana@example.org",
        "interests": "sourdough, jazz",
        "share_profile": "y",
        "want_followups": "y",
    }
    assert count(lambda: phone.post(f"/e/{poster}", data=guest)) == 9
    # The next new person who picks interests someone here picked finds their ids in the
    # process's memo: the two interest statements go.
    friend = app.test_client()
    friend.get(f"/e/{poster}")
    guest = {**guest, "name": "Bo", "email": "bo@example.org", "interests": "jazz, sourdough"}
    assert count(lambda: friend.post(f"/e/{poster}", data=guest)) == 7


def test_the_badge_and_its_refresh(crowd):
    app, _organiser, _event_id, poster = crowd
    phone = app.test_client()
    phone.get(f"/e/{poster}")
    checked_in = phone.post(
        f"/e/{poster}",
        data={"name": "Ana", "email": "ana@example.org", "interests": "jazz", "share_profile": "y"},
    )
    badge = checked_in.headers["Location"]
    # (The badge comes with its person and event, which the navigation shows too: a phone
    # holding this one badge needs no other statement for it; one asks who here she met
    # before, domain/met_before.py; two are the suggestions, domain/suggestions.py: who, and
    # their names with what they share.)
    assert count(lambda: phone.get(badge)) == 8
    # Each live half, unchanged: BEGIN and one indexed lookup, whose answer is the version.
    for half in (f"{badge}/live", f"{badge}/live/people"):
        unchanged = {"If-None-Match": phone.get(half).headers["ETag"]}
        assert count(lambda url=half, headers=unchanged: phone.get(url, headers=headers)) == 2
    # Her own list: BEGIN, the lookup, one loads her with her event, one asks who here she
    # met before (domain/met_before.py), then her connections.
    assert count(lambda: phone.get(f"{badge}/live")) == 5
    # The people to meet: BEGIN, the lookup, her with her event, who she met before (they
    # are not suggested again), and the two of the suggestions (domain/suggestions.py).
    assert count(lambda: phone.get(f"{badge}/live/people")) == 6


def test_the_organiser_page_and_its_refresh(crowd):
    app, organiser, event_id, _poster = crowd
    laptop = app.test_client()
    login(laptop, organiser)
    page = f"/organiser/events/{event_id}"
    # BEGIN, the organiser, the event, the counts, the page's lines, their interests.
    assert count(lambda: laptop.get(page)) == 6
    assert count(lambda: laptop.get(f"{page}?q=chess")) == 7  # and how many match
    first = laptop.get(f"{page}/live")
    etag = first.headers["ETag"]
    # Unchanged: the event's own row is the version.
    assert count(lambda: laptop.get(f"{page}/live", headers={"If-None-Match": etag})) == 3
    arrived = app.test_client()
    arrived.get(f"/e/{_poster}")
    arrived.post(f"/e/{_poster}", data={"name": "Ben", "email": "ben@example.org"})
    # Changed: the counts and the lines changed since, with their interests.
    assert count(lambda: laptop.get(f"{page}/live", headers={"If-None-Match": etag})) == 6


def test_the_attendee_page_of_a_conference_stays_small(app, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    add_crowd(event.id, 5000)
    laptop = app.test_client()
    login(laptop, organiser)
    page = laptop.get(f"/organiser/events/{event.id}")
    assert page.status_code == 200
    assert "<strong>5000</strong> checked in" in page.text
    assert "Page 1 of 100" in page.text
    # The budget is for the page as sent, even to a browser that takes no compression.
    assert len(page.data) <= 60 * 1024
    last = laptop.get(f"/organiser/events/{event.id}?page=100")
    assert "Crowd 0<" in last.text and "Earlier arrivals" not in last.text
    searched = laptop.get(f"/organiser/events/{event.id}?q=chess")
    assert "2000 matching" in searched.text and len(searched.data) <= 60 * 1024


def test_a_card_and_a_connection_request(crowd):
    app, _organiser, _event_id, poster = crowd
    badges = []
    for name in ("Ana", "Ben"):
        phone = app.test_client()
        phone.get(f"/e/{poster}")
        checked_in = phone.post(
            f"/e/{poster}",
            data={
                "name": name,
                "email": f"{name}@example.org",
                "interests": "jazz",
                "share_profile": "y",
            },
        )
        badges.append((phone, checked_in.headers["Location"]))
    (_ana, ana_badge), (ben, _ben_badge) = badges
    # BEGIN, her badge with her person and event, mine likewise (the navigation's too),
    # whether either blocked the other, our connection, whether we met before, our two
    # interests.
    assert count(lambda: ben.get(ana_badge)) == 8
    # The request: the looks up to whether we met before, then, written: the blocks and
    # our connection again, the hour's requests, the request and its row, both versions.
    assert count(lambda: ben.post(f"{ana_badge}/connect", data={"note": "Hi"})) == 11
