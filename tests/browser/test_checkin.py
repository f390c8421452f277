"""The check-in journey in a real browser: poster, phone check-in, badge, live attendee page.

Headless Chromium (Debian's, through the shared fixtures) talks to the app over HTTP on
127.0.0.1 with CSRF protection switched on, as a phone and a laptop would.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import expect

from domain.connections import request_connection
from domain.db import db, writing
from domain.models import Attendance, Person
from tests.browser.support import (
    ANA,
    LAPTOP_VIEWPORT,
    LIVE_UPDATE_TIMEOUT_MS,
    PHONE_PICTURE_MIN_HEIGHT,
    PHONE_PICTURE_WIDTH,
    LiveServer,
    Traffic,
    assert_no_axe_violations,
    badge_token_of,
    decode_qr,
    fill_check_in,
    log_in,
    only_event,
    qr_png,
    sign_up_and_create_event,
    submit_check_in,
)

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Each picture's width and height range, in pixels: two phone pages and the laptop's table.
SCREENSHOTS = {
    "checkin.png": (PHONE_PICTURE_WIDTH, PHONE_PICTURE_MIN_HEIGHT, 20_000),
    "badge.png": (PHONE_PICTURE_WIDTH, PHONE_PICTURE_MIN_HEIGHT, 20_000),
    "attendees.png": (LAPTOP_VIEWPORT["width"], 200, LAPTOP_VIEWPORT["height"]),
    "pictures.png": (LAPTOP_VIEWPORT["width"], LAPTOP_VIEWPORT["height"], 6_000),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Ana as the pictures in the README show her: more to say than when she only meets Ben.
ANA_AT_BRUNCH = {
    **ANA,
    "About me": "Baker by night, backend developer by day",
    "Interests": "marathons, travel in Asia, sourdough",
    "Happy to talk about": "Hanoi night markets",
}


def attendee_names(server: LiveServer) -> list[str]:
    """Return the names of everyone checked in, from the live server's database."""
    with server.app.app_context():
        attendances = db.session.scalars(sa.select(Attendance)).all()
        return [attendance.person.name for attendance in attendances]


# ---------------------------------------------------------------- the journey


def test_poster_to_phone_badge_with_live_attendee_page(live_server, laptop, new_phone):
    # 1. The organiser signs up, creates an event and opens its poster.
    sign_up_and_create_event(laptop, live_server, description="Pancakes and people.")
    laptop.get_by_role("link", name="Poster", exact=True).click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Sunday brunch")
    printed = laptop.locator(".poster .url").inner_text().strip()
    poster_word = laptop.locator(".poster .word strong").inner_text().strip()
    event = only_event(live_server)
    poster_url = f"{live_server.url}/e/{event.checkin_token}"
    assert printed == poster_url
    assert poster_word == event.event_word
    assert decode_qr(qr_png(laptop)) == [poster_url]

    # The attendee page is open on the laptop before anyone checks in.
    laptop.get_by_role("link", name="Back to attendees").click()
    attendees = laptop.locator("#attendees")
    expect(attendees).to_contain_text("No one has checked in yet")
    navigations: list[str] = []
    laptop.on("framenavigated", lambda frame: navigations.append(frame.url))

    # 2. A phone opens the decoded URL, sees the poster's event word and checks in.
    phone = new_phone()
    phone.goto(poster_url)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Sunday brunch")
    expect(phone.locator(".word strong")).to_have_text(poster_word)
    fill_check_in(phone, ANA_AT_BRUNCH)
    submit_check_in(phone)
    expect(phone).to_have_url(re.compile(re.escape(live_server.url) + r"/b/"))
    token = badge_token_of(phone, live_server)
    expect(phone.get_by_role("heading", level=1)).to_have_text(ANA_AT_BRUNCH["Name"])
    expect(phone.locator(".profile")).to_contain_text("sourdough")
    assert decode_qr(qr_png(phone)) == [f"{live_server.url}/b/{token}"]

    # 3. The attendee page shows the new arrival by itself, without a reload.
    expect(attendees).to_contain_text(ANA_AT_BRUNCH["Name"], timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(attendees.locator(".count")).to_contain_text("1 checked in")
    expect(attendees).to_contain_text("travel in Asia")  # as typed
    assert navigations == []

    # 4. A second arrival is fetched on its own (the refresh asks only for what changed
    # since the version the page holds) and goes on top of the table.
    ben = new_phone()
    ben.goto(poster_url)
    fill_check_in(ben, {"Name": "Ben Okafor", "Email": "ben@example.org"})
    submit_check_in(ben)
    expect(attendees.locator(".count")).to_contain_text(
        "2 checked in", timeout=LIVE_UPDATE_TIMEOUT_MS
    )
    expect(attendees.locator("tbody tr").first).to_contain_text("Ben Okafor")
    expect(attendees.locator("tbody tr")).to_have_count(2)
    assert navigations == []

    # 5. Scanning the poster again on the same phone goes straight to the badge.
    phone.goto(poster_url)
    expect(phone).to_have_url(f"{live_server.url}/b/{token}")
    expect(phone.locator(".flash")).to_contain_text("You're already checked in")
    assert sorted(attendee_names(live_server)) == [ANA_AT_BRUNCH["Name"], "Ben Okafor"]


def test_check_in_works_without_javascript(live_server, make_event, new_phone):
    event = make_event(name="Night market walk")
    phone = new_phone(java_script_enabled=False)
    phone.set_content("<p id=probe>off</p><script>probe.textContent = 'on'</script>")
    expect(phone.locator("#probe")).to_have_text("off")  # page scripts really don't run
    phone.goto(f"{live_server.url}/e/{event.checkin_token}")
    fill_check_in(phone, {"Name": "Bo Chen", "Email": "bo@example.org", "Interests": "chess"})
    submit_check_in(phone)
    token = badge_token_of(phone, live_server)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Bo Chen")
    assert decode_qr(qr_png(phone)) == [f"{live_server.url}/b/{token}"]
    assert attendee_names(live_server) == ["Bo Chen"]


def test_phone_pages_have_no_accessibility_violations(live_server, make_event, new_phone):
    event = make_event()
    phone = new_phone()
    phone.goto(f"{live_server.url}/e/{event.checkin_token}")
    assert_no_axe_violations(phone, "event landing page")

    submit_check_in(phone)
    expect(phone.locator(".error").first).to_be_visible()
    assert phone.locator('[aria-invalid="true"]').count() >= 2
    assert_no_axe_violations(phone, "check-in form with errors")

    fill_check_in(phone, ANA_AT_BRUNCH)
    submit_check_in(phone)
    badge_token_of(phone, live_server)
    assert_no_axe_violations(phone, "badge page")


def test_phone_pages_stay_small(live_server, make_event, make_attendee, new_phone):
    event = make_event()
    for number, tags in enumerate((["chess", "sourdough"], ["marathons"], ["travel in asia"])):
        make_attendee(event, f"Guest {number}", interests=tags)
    phone = new_phone()
    landing_url = f"{live_server.url}/e/{event.checkin_token}"

    with Traffic(phone) as landing:
        phone.goto(landing_url)
    landing.check(live_server, "landing page")

    fill_check_in(phone, ANA_AT_BRUNCH)
    with Traffic(phone) as checkin:
        submit_check_in(phone)
        expect(phone).to_have_url(re.compile(r"/b/"))
    checkin.check(live_server, "check-in POST, redirect and badge")
    assert [request.method for request in checkin.requests][:2] == ["POST", "GET"]

    badge_url = phone.url
    with Traffic(phone) as badge:
        phone.goto(badge_url)
    badge.check(live_server, "badge page")


# ---------------------------------------------------------------- documentation pictures


def test_documentation_screenshots(request):
    """Check the README's pictures are what it says; with UPDATE_SCREENSHOTS=1, retake them.

    `make screenshots` retakes them. Without it, this checks the committed pictures: each
    decodes as a PNG of a phone's or the laptop's width, and the badge's QR code scans.
    """
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        take_screenshots(request)
    for name, (width, min_height, max_height) in SCREENSHOTS.items():
        path = SCREENSHOT_DIR / name
        assert path.is_file(), f"{path} is missing: run `make screenshots`"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, path
        with Image.open(path) as picture:
            picture.load()  # decodes every row: a truncated file fails here
            assert picture.width == width, (path, picture.size)
            assert min_height <= picture.height <= max_height, (path, picture.size)
    badge_links = decode_qr((SCREENSHOT_DIR / "badge.png").read_bytes())
    assert len(badge_links) == 1 and re.search(r"/b/[A-Za-z0-9_-]{43,}$", badge_links[0]), (
        badge_links
    )


def take_screenshots(request: pytest.FixtureRequest) -> None:
    """Take the README's pictures afresh, replacing the old ones."""
    # The browser fixtures are only needed (and only started) when taking pictures.
    live_server = request.getfixturevalue("live_server")
    make_organiser = request.getfixturevalue("make_organiser")
    make_event = request.getfixturevalue("make_event")
    make_attendee = request.getfixturevalue("make_attendee")
    new_phone = request.getfixturevalue("new_phone")
    laptop = request.getfixturevalue("laptop")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    # Gone first, so a picture this run fails to take can't pass as one it took.
    for name in SCREENSHOTS:
        (SCREENSHOT_DIR / name).unlink(missing_ok=True)
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Sunday brunch", venue="The corner café")
    kofi = make_attendee(
        event,
        "Kofi Mensah",
        about="Runs the Saturday parkrun",
        interests=["marathons", "coffee roasting"],
        talk_about="Trail shoes",
    )
    lena = make_attendee(
        event,
        "Lena Vogel",
        about="Product designer",
        interests=["travel in asia", "sourdough", "climbing"],
    )
    sam = make_attendee(
        event, "Sam Okafor", about="Learning Vietnamese", interests=["travel in asia", "marathons"]
    )
    with writing():
        # Two of the people here already met: the network of the night has its first edge.
        request_connection(kofi.attendance, sam.attendance)
        request_connection(sam.attendance, kofi.attendance)
        db.session.commit()

    phone = new_phone()
    phone.goto(f"{live_server.url}/e/{event.checkin_token}")
    fill_check_in(phone, ANA_AT_BRUNCH)
    phone.screenshot(path=SCREENSHOT_DIR / "checkin.png", full_page=True)
    submit_check_in(phone)
    badge_token_of(phone, live_server)
    phone.screenshot(path=SCREENSHOT_DIR / "badge.png", full_page=True)

    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}")
    expect(laptop.locator(".count")).to_contain_text("4 checked in")
    table = laptop.locator("table.attendees").bounding_box()
    laptop.screenshot(
        path=SCREENSHOT_DIR / "attendees.png",
        clip={
            "x": 0,
            "y": 0,
            "width": LAPTOP_VIEWPORT["width"],
            "height": table["y"] + table["height"] + 32,
        },
    )
    # The pictures of the room, once Ana has met Lena.
    db.session.rollback()  # see the check-in the phone made since this session last read
    with writing():
        ana = db.session.scalars(
            sa.select(Attendance).join(Attendance.person).where(Person.name == ANA["Name"])
        ).one()
        request_connection(ana, db.session.get_one(Attendance, lena.attendance.id))
        request_connection(db.session.get_one(Attendance, lena.attendance.id), ana)
        db.session.commit()
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/pictures")
    expect(laptop.locator("svg.network circle")).to_have_count(4)
    laptop.screenshot(path=SCREENSHOT_DIR / "pictures.png", full_page=True)
