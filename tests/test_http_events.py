"""Organisers create, list and edit events; the poster and its token."""

from __future__ import annotations

import re

import sqlalchemy as sa

from domain.db import db
from domain.models import Event
from tests.conftest import PASSWORD, PUBLIC_URL, login

VALID = {
    "name": "Sunday brunch",
    "starts_at": "2026-12-06T11:00",
    "ends_at": "2026-12-06T14:00",
    "timezone": "Europe/Berlin",
    "venue": "Café Kranz",
    "description": "Pancakes and people.",
}


def events() -> list[Event]:
    return db.session.scalars(sa.select(Event)).all()


def test_create_event_stores_times_in_utc(client, make_organiser):
    login(client, make_organiser())
    response = client.post("/organiser/events/new", data=VALID)
    assert response.status_code == 303
    [event] = events()
    assert response.location == f"/organiser/events/{event.id}"
    assert event.starts_at.isoformat() == "2026-12-06T10:00:00+00:00"
    assert event.ends_at.isoformat() == "2026-12-06T13:00:00+00:00"
    assert event.timezone == "Europe/Berlin"
    assert len(event.checkin_token) >= 43
    assert event.event_word
    listing = client.get("/organiser/")
    assert "Sunday brunch" in listing.text
    assert "Sun 06 Dec 2026, 11:00" in listing.text


def test_event_form_errors_rerender_and_write_nothing(client, make_organiser):
    login(client, make_organiser())
    cases = [
        ({"name": ""}, "Give the event a name."),
        ({"name": "x" * 81}, "80 characters or fewer"),
        ({"name": "Bad\x1bname"}, "control characters"),
        ({"starts_at": ""}, "Say when the event starts."),
        ({"starts_at": "tomorrow"}, "Not a valid datetime value"),
        ({"ends_at": "2026-12-06T10:00"}, "must end after it starts"),
        ({"timezone": "Mars/Olympus"}, "Pick a time zone"),
        ({"venue": "v" * 161}, "160 characters or fewer"),
        ({"description": "d" * 2001}, "2000 characters or fewer"),
        ({"name": "\u034f\ufe0e"}, "Please type something that shows"),
        ({"venue": "Back Room" + "\u0489" * 12}, "at most 3 accents on one letter"),
    ]
    for change, message in cases:
        response = client.post("/organiser/events/new", data={**VALID, **change})
        assert response.status_code == 200, change
        assert message in response.text, (change, message)
        assert 'aria-invalid="true"' in response.text
    assert events() == []


def test_edit_event(client, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    login(client, organiser)
    form = client.get(f"/organiser/events/{event.id}/edit")
    assert 'value="Sunday brunch"' in form.text
    response = client.post(
        f"/organiser/events/{event.id}/edit", data={**VALID, "name": "Saturday brunch"}
    )
    assert response.status_code == 303
    db.session.refresh(event)
    assert event.name == "Saturday brunch"
    bad = client.post(f"/organiser/events/{event.id}/edit", data={**VALID, "name": ""})
    assert bad.status_code == 200
    db.session.refresh(event)
    assert event.name == "Saturday brunch"


def test_poster_shows_the_public_url_and_event_word(client, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    login(client, organiser)
    page = client.get(f"/organiser/events/{event.id}/poster")
    assert f"{PUBLIC_URL}/e/{event.checkin_token}" in page.text
    assert event.event_word in page.text
    assert '<svg class="qr"' in page.text
    svg = client.get(f"/organiser/events/{event.id}/poster.svg")
    assert svg.mimetype == "image/svg+xml"
    assert svg.headers["Content-Disposition"].startswith("attachment")
    assert svg.data.startswith(b"<?xml")


def test_public_url_comes_from_config_not_the_host_header(client, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    evil = {"Host": "evil.example"}
    signed_in = client.post(
        "/login", data={"email": organiser.email, "password": PASSWORD}, headers=evil
    )
    assert signed_in.status_code == 303
    page = client.get(f"/organiser/events/{event.id}/poster", headers=evil)
    assert page.status_code == 200
    assert "evil.example" not in page.text
    assert f"{PUBLIC_URL}/e/{event.checkin_token}" in page.text


def test_rotating_the_poster_kills_the_old_token(client, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    old = event.checkin_token
    login(client, organiser)
    assert client.get(f"/e/{old}").status_code == 200
    response = client.post(f"/organiser/events/{event.id}/poster/rotate")
    assert response.status_code == 303
    db.session.refresh(event)
    assert event.checkin_token != old
    assert client.get(f"/e/{old}").status_code == 404
    assert client.get(f"/e/{event.checkin_token}").status_code == 200
    poster = client.get(f"/organiser/events/{event.id}/poster")
    assert re.search(re.escape(event.checkin_token), poster.text)


def test_dates_far_from_now_are_refused_not_a_crash(client, make_organiser):
    login(client, make_organiser())
    for starts, ends in (
        ("9999-12-31T10:00", "9999-12-31T11:00"),
        ("0001-01-01T10:00", "0001-01-01T11:00"),
    ):
        response = client.post(
            "/organiser/events/new", data={**VALID, "starts_at": starts, "ends_at": ends}
        )
        assert response.status_code == 200
        assert "Pick a date between" in response.text
    assert events() == []


def test_attendee_page_search_and_formula_safe_csv(
    client, make_organiser, make_event, make_attendee
):
    import csv
    import io

    organiser = make_organiser()
    event = make_event(organiser)
    make_attendee(event, "Ana", interests=["marathons"])
    make_attendee(event, "Ben", interests=["sourdough"])
    for risky in ("=HYPERLINK(1)", "+1 caller", "-2 sum", "@SUM(A1)"):
        make_attendee(event, risky, interests=["=cmd"])
    login(client, organiser)
    page = client.get(f"/organiser/events/{event.id}").text
    assert "<strong>6</strong> checked in" in page
    by_interest = client.get(f"/organiser/events/{event.id}/live", query_string={"q": "MARATH"})
    assert "Ana" in by_interest.text and "Ben" not in by_interest.text
    by_name = client.get(f"/organiser/events/{event.id}", query_string={"q": "ben"}).text
    assert "Ben" in by_name and "Ana" not in by_name
    rows = list(
        csv.reader(io.StringIO(client.get(f"/organiser/events/{event.id}/attendees.csv").text))
    )
    assert rows[0] == ["Name", "Checked in", "Interests", "Connections"]
    cells = [cell for row in rows[1:] for cell in (row[0], row[2])]
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert "'=HYPERLINK(1)" in [row[0] for row in rows]


def test_organiser_pages_show_times_in_the_events_own_zone(
    client, make_organiser, make_event, make_attendee
):
    from zoneinfo import ZoneInfo

    from domain.followups import followup_time

    organiser = make_organiser()
    event = make_event(organiser, timezone="Asia/Tokyo")
    ana = make_attendee(event, "Ana").attendance
    tokyo = ZoneInfo("Asia/Tokyo")
    login(client, organiser)
    arrived = ana.checked_in_at.astimezone(tokyo).strftime("%H:%M")
    table = client.get(f"/organiser/events/{event.id}/live").text
    assert f">{arrived}</time>" in table
    due = followup_time(event).astimezone(tokyo).strftime("%a %d %b, %H:%M")
    assert f"{due} (Asia/Tokyo)" in client.get(f"/organiser/events/{event.id}/emails").text
    starts = event.starts_at.astimezone(tokyo).strftime("%a %d %b %Y, %H:%M")
    assert starts in client.get("/organiser/").text
