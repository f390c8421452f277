"""The poster takes check-ins only from a set time before the start until a set time after
the end; the landing page says when, in the event's time zone, and a phone with its badge
still reaches it after the close."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from domain import limits
from domain.checkin import WindowState, checkin_window
from domain.db import db, utcnow, writing
from domain.models import Event, Person
from tests.conftest import login
from tests.mail_support import check_in

# Far from UTC, and on the other side of the date line from most test machines.
ZONE = "Pacific/Auckland"


def wall(moment: datetime) -> datetime:
    """Return an aware moment as the naive wall-clock time the event form takes."""
    return moment.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None, second=0, microsecond=0)


def event_starting_in(make_event, starts_in: timedelta, hours: int = 3) -> Event:
    starts = utcnow() + starts_in
    return make_event(
        timezone=ZONE,
        starts_at=wall(starts),
        ends_at=wall(starts + timedelta(hours=hours)),
    )


def move(event_id: int, by: timedelta) -> None:
    """Let the clock run on: move the event into the past by `by`."""
    with writing():
        event = db.session.get_one(Event, event_id)
        event.starts_at -= by
        event.ends_at -= by
        db.session.commit()


def ended(event_id: int, ago: timedelta) -> None:
    """Let the clock run on until the event ended `ago` (its length kept)."""
    with writing():
        event = db.session.get_one(Event, event_id)
        length = event.ends_at - event.starts_at
        event.ends_at = utcnow() - ago
        event.starts_at = event.ends_at - length
        db.session.commit()


def people() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Person)) or 0


def test_the_window_defaults_to_two_hours_before_until_six_after(make_event):
    event = event_starting_in(make_event, timedelta(days=1))
    assert (event.checkin_opens_minutes, event.checkin_closes_minutes) == (
        limits.CHECKIN_OPENS_MINUTES_BEFORE,
        limits.CHECKIN_CLOSES_MINUTES_AFTER,
    )
    window = checkin_window(event)
    assert window.opens_at == event.starts_at - timedelta(hours=2)
    assert window.closes_at == event.ends_at + timedelta(hours=6)
    second = timedelta(seconds=1)
    assert window.state(window.opens_at - second) is WindowState.NOT_YET
    assert window.state(window.opens_at) is WindowState.OPEN
    assert window.state(window.closes_at - second) is WindowState.OPEN
    assert window.state(window.closes_at) is WindowState.ENDED


def test_before_the_window_the_page_says_when_it_opens_and_takes_no_check_in(
    client, make_event, make_attendee
):
    event = event_starting_in(make_event, timedelta(hours=5))
    token = event.checkin_token
    opens = checkin_window(event).opens_at.astimezone(ZoneInfo(ZONE))
    page = client.get(f"/e/{token}")
    assert page.status_code == 200
    assert f"Check-in opens at {opens:%H:%M}" in page.text
    assert "<form" not in page.text and "Interests" not in page.text

    refused = client.post(
        f"/e/{token}",
        data={"name": "Early Bird", "email": "early@example.org", "share_profile": "y"},
    )
    assert refused.status_code == 403
    assert "Check-in has not opened yet: nothing was saved." in refused.text
    assert people() == 0


def test_during_the_window_the_page_says_when_it_opened(app, make_event, make_attendee):
    event = event_starting_in(make_event, timedelta(hours=1))
    make_attendee(event, "Ana", interests=["sourdough"])
    opens = checkin_window(event).opens_at.astimezone(ZoneInfo(ZONE))
    page = app.test_client().get(f"/e/{event.checkin_token}")
    assert f"Check-in opened at {opens:%H:%M}" in page.text
    assert "sourdough" in page.text  # popular interests are offered while open
    check_in(app.test_client(), event, "Ben", "ben@example.org")
    assert people() == 2


def test_after_the_window_the_event_has_ended_and_a_badge_still_opens(
    app, make_event, make_attendee
):
    event = event_starting_in(make_event, timedelta(hours=-1))
    event_id, token = event.id, event.checkin_token
    make_attendee(event, "Ana", interests=["sourdough"])
    phone = app.test_client()
    badge = check_in(phone, event, "Ben", "ben@example.org", interests="chess")
    # 29 days later the poster is still on the wall.
    move(event_id, timedelta(days=29))

    late = app.test_client()
    page = late.get(f"/e/{token}")
    assert page.status_code == 200
    assert "This event has ended." in page.text
    # No check-in form: only the one that emails a sign-in link back to a badge.
    assert re.findall(r'<form [^>]*action="([^"]+)"', page.text) == [f"/e/{token}/sign-in"]
    assert "sourdough" not in page.text and "chess" not in page.text
    refused = late.post(
        f"/e/{token}", data={"name": "Late", "email": "late@example.org", "share_profile": "y"}
    )
    assert refused.status_code == 403
    assert "Check-in has closed: nothing was saved." in refused.text
    assert people() == 2

    # Ben's phone still reaches his badge, from the poster and from its own link.
    again = phone.get(f"/e/{token}")
    assert again.status_code == 303 and again.location == f"/b/{badge}"
    assert phone.get(f"/b/{badge}").status_code == 200


def test_the_window_closes_six_hours_after_the_end_by_default(app, make_event):
    event = event_starting_in(make_event, timedelta(hours=-4), hours=3)  # ended 1 h ago
    event_id, token = event.id, event.checkin_token
    check_in(app.test_client(), event, "Ana", "ana@example.org")
    # Its times were set to the minute: the clock is read again for each step, so a slow
    # machine's seconds don't carry the event past the close.
    ended(event_id, timedelta(hours=6) - timedelta(minutes=1))
    check_in(app.test_client(), event, "Ben", "ben@example.org")
    ended(event_id, timedelta(hours=6) + timedelta(minutes=1))
    page = app.test_client().get(f"/e/{token}")
    assert "This event has ended." in page.text
    assert people() == 2


def test_the_organiser_sets_the_window_on_the_event_form(client, make_organiser, make_event):
    organiser = make_organiser()
    event = event_starting_in(make_event, timedelta(hours=5))
    with writing():
        db.session.get_one(Event, event.id).organiser_id = organiser.id
        db.session.commit()
    event_id, token = event.id, event.checkin_token
    login(client, organiser)
    form = client.get(f"/organiser/events/{event_id}/edit").text
    assert "Check-in opens" in form and "Check-in closes" in form
    assert '<option selected value="120">2 hours before the start</option>' in form
    data = {
        "name": "Sunday brunch",
        "starts_at": f"{wall(event.starts_at):%Y-%m-%dT%H:%M}",
        "ends_at": f"{wall(event.ends_at):%Y-%m-%dT%H:%M}",
        "timezone": ZONE,
        "followup_timing": "next_morning",
        "nudge_days": "7",
        "checkin_opens_minutes": "480",
        "checkin_closes_minutes": "60",
    }
    assert client.post(f"/organiser/events/{event_id}/edit", data=data).status_code == 303
    db.session.rollback()
    saved = db.session.get_one(Event, event_id)
    assert (saved.checkin_opens_minutes, saved.checkin_closes_minutes) == (480, 60)
    # Opening eight hours before, a start five hours away is open now.
    assert "Check-in opened at" in client.get(f"/e/{token}").text

    bad = client.post(
        f"/organiser/events/{event_id}/edit", data={**data, "checkin_opens_minutes": "999999"}
    )
    assert bad.status_code == 200 and "Not a valid choice" in bad.text
    db.session.rollback()
    assert db.session.get_one(Event, event_id).checkin_opens_minutes == 480


@pytest.mark.parametrize("days_ago", [1, 30])
def test_the_demo_event_is_open_whenever_make_run_starts(runner, days_ago):
    assert runner.invoke(args=["demo"]).exit_code == 0
    db.session.rollback()
    event = db.session.scalars(sa.select(Event)).one()
    assert checkin_window(event).state(utcnow()) is WindowState.OPEN
    move(event.id, timedelta(days=days_ago))
    db.session.rollback()
    assert checkin_window(db.session.get_one(Event, event.id)).state(utcnow()) is WindowState.ENDED
    assert runner.invoke(args=["demo"]).exit_code == 0
    db.session.rollback()
    again = db.session.scalars(sa.select(Event)).one()
    assert again.checkin_token == event.checkin_token  # printed posters keep working
    assert checkin_window(again).state(utcnow()) is WindowState.OPEN
