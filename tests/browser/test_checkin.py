"""The check-in journey in a real browser: poster, phone check-in, badge, live attendee page.

Headless Chromium (Debian's, through the shared fixtures) talks to the app over HTTP on
127.0.0.1 with CSRF protection switched on, as a phone and a laptop would.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import zxingcpp
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from domain.db import db
from domain.events import wall_clock_now
from domain.models import Attendance, Event
from tests.conftest import PASSWORD, LiveServer

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SCREENSHOT_NAMES = ("checkin.png", "badge.png", "attendees.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PAGE_BUDGET_BYTES = 30_000  # DESIGN.md §5: at most 30 KB transferred per phone page
PAGE_BUDGET_REQUESTS = 3
LIVE_UPDATE_TIMEOUT_MS = 12_000  # the attendee page polls every 5 s

ANA = {
    "Name": "Ana Lima",
    "Email": "ana@example.org",
    "About me": "Baker by night, backend developer by day",
    "Interests": "marathons, travel in Asia, sourdough",
    "Happy to talk about": "Hanoi night markets",
}


@pytest.fixture
def live_server(app_factory: Callable[..., Flask]) -> Iterator[LiveServer]:
    """The shared live server, but with CSRF protection on, as in production."""
    with LiveServer(app_factory(WTF_CSRF_ENABLED=True)) as server:
        yield server


# ---------------------------------------------------------------- helpers


def decode_qr(locator: Any) -> list[str]:
    """Return the texts of the QR codes in a screenshot of what the browser drew."""
    image = Image.open(io.BytesIO(locator.screenshot()))
    return [result.text for result in zxingcpp.read_barcodes(image)]


def label(page: Any, text: str) -> Any:
    return page.get_by_label(text, exact=True)


def fill_check_in(page: Any, profile: dict[str, str], *, share: bool = True) -> None:
    for field_label, value in profile.items():
        label(page, field_label).fill(value)
    if share:
        label(page, "Show my profile to the people I meet at this event").check()


def submit_check_in(page: Any) -> None:
    page.get_by_role("button", name="Check in").click()


def badge_token_of(page: Any, server: LiveServer) -> str:
    match = re.fullmatch(re.escape(server.url) + r"/b/([A-Za-z0-9_-]{43,})", page.url)
    assert match, f"not a badge page: {page.url}"
    return match.group(1)


def sign_up_and_create_event(laptop: Any, server: LiveServer) -> None:
    laptop.goto(f"{server.url}/signup")
    label(laptop, "Your name").fill("Maya Organiser")
    label(laptop, "Email").fill("maya@example.org")
    label(laptop, "Password").fill(PASSWORD)
    laptop.get_by_role("button", name="Create account").click()
    expect(laptop).to_have_url(f"{server.url}/organiser/events/new")

    start = wall_clock_now("Europe/London").replace(second=0, microsecond=0) - timedelta(minutes=30)
    label(laptop, "Event name").fill("Sunday brunch")
    label(laptop, "Starts").fill(start.strftime("%Y-%m-%dT%H:%M"))
    label(laptop, "Ends").fill((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    label(laptop, "Time zone").fill("Europe/London")
    label(laptop, "Venue").fill("The corner café")
    label(laptop, "Description").fill("Pancakes and people.")
    laptop.get_by_role("button", name="Create event").click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Sunday brunch")


def log_in(laptop: Any, server: LiveServer, email: str) -> None:
    laptop.goto(f"{server.url}/login")
    label(laptop, "Email").fill(email)
    label(laptop, "Password").fill(PASSWORD)
    laptop.get_by_role("button", name="Log in").click()
    expect(laptop).to_have_url(f"{server.url}/organiser/")


def only_event(server: LiveServer) -> Event:
    with server.app.app_context():
        event = db.session.scalars(sa.select(Event)).one()
        db.session.expunge(event)
    return event


def attendee_names(server: LiveServer) -> list[str]:
    with server.app.app_context():
        attendances = db.session.scalars(sa.select(Attendance)).all()
        return [attendance.person.name for attendance in attendances]


def assert_no_axe_violations(page: Any, what: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


class Traffic:
    """Every request a page makes while recording, and what it cost on the wire.

    Measure: for each finished request, Playwright's request.sizes() gives the request's
    header and body bytes and the response's header and (encoded, as sent) body bytes, as
    Chromium's network stack counted them. We add all four, both directions, so a 303
    redirect costs its POST body and both header blocks. The page's HTTP cache is switched
    off over the DevTools protocol first, so every resource (the stylesheet too) is fetched
    in full as on a phone's first visit rather than answered from the cache.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[Any] = []
        self.finished: list[Any] = []
        self.failed: list[Any] = []
        self.sizes: list[tuple[str, int]] = []
        self.statuses: list[int] = []
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    def _on_request(self, request: Any) -> None:
        self.requests.append(request)

    def _on_finished(self, request: Any) -> None:
        self.finished.append(request)

    def _on_failed(self, request: Any) -> None:
        self.failed.append(request)

    def __enter__(self) -> Traffic:
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", self._on_finished)
        self.page.on("requestfailed", self._on_failed)
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.page.wait_for_load_state("load")
            deadline = time.monotonic() + 5
            while len(self.finished) + len(self.failed) < len(self.requests):
                assert time.monotonic() < deadline, "requests still in flight"
                self.page.wait_for_timeout(50)
        self.page.remove_listener("request", self._on_request)
        self.page.remove_listener("requestfinished", self._on_finished)
        self.page.remove_listener("requestfailed", self._on_failed)
        for request in self.finished:
            status = request.response().status
            self.sizes.append(
                (
                    f"{request.method} {urlsplit(request.url).path} {status}",
                    sum(request.sizes().values()),
                )
            )
            self.statuses.append(status)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.sizes)

    def check(self, server: LiveServer, what: str) -> None:
        host = urlsplit(server.url).netloc
        summary = f"{what}: {self.sizes}, total {self.total} bytes"
        print(summary)
        assert not self.failed, summary
        # Full answers only: a 304 from a warm cache would understate the page's weight.
        assert set(self.statuses) <= {200, 303}, summary
        assert self.requests, summary
        assert len(self.requests) <= PAGE_BUDGET_REQUESTS, summary
        assert all(urlsplit(request.url).netloc == host for request in self.requests), [
            request.url for request in self.requests
        ]
        assert self.total <= PAGE_BUDGET_BYTES, summary


# ---------------------------------------------------------------- the journey


def test_poster_to_phone_badge_with_live_attendee_page(live_server, laptop, new_phone):
    # 1. The organiser signs up, creates an event and opens its poster.
    sign_up_and_create_event(laptop, live_server)
    laptop.get_by_role("link", name="Poster", exact=True).click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Sunday brunch")
    printed = laptop.locator(".poster .url").inner_text().strip()
    poster_word = laptop.locator(".poster .word strong").inner_text().strip()
    event = only_event(live_server)
    poster_url = f"{live_server.url}/e/{event.checkin_token}"
    assert printed == poster_url
    assert poster_word == event.event_word
    assert decode_qr(laptop.locator("svg.qr")) == [poster_url]

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
    fill_check_in(phone, ANA)
    submit_check_in(phone)
    expect(phone).to_have_url(re.compile(re.escape(live_server.url) + r"/b/"))
    token = badge_token_of(phone, live_server)
    expect(phone.get_by_role("heading", level=1)).to_have_text(ANA["Name"])
    expect(phone.locator(".profile")).to_contain_text("sourdough")
    assert decode_qr(phone.locator("svg.qr")) == [f"{live_server.url}/b/{token}"]

    # 3. The attendee page shows the new arrival by itself, without a reload.
    expect(attendees).to_contain_text(ANA["Name"], timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(attendees.locator(".count")).to_contain_text("1 checked in")
    expect(attendees).to_contain_text("travel in asia")
    assert navigations == []

    # 5. Scanning the poster again on the same phone goes straight to the badge.
    phone.goto(poster_url)
    expect(phone).to_have_url(f"{live_server.url}/b/{token}")
    expect(phone.locator(".flash")).to_contain_text("You're already checked in")
    assert attendee_names(live_server) == [ANA["Name"]]


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
    assert decode_qr(phone.locator("svg.qr")) == [f"{live_server.url}/b/{token}"]
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

    fill_check_in(phone, ANA)
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

    fill_check_in(phone, ANA)
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
    """Check the README's pictures exist; with UPDATE_SCREENSHOTS=1, take them afresh."""
    paths = [SCREENSHOTS / name for name in SCREENSHOT_NAMES]
    if os.environ.get("UPDATE_SCREENSHOTS") != "1":
        for path in paths:
            assert path.is_file(), f"{path} is missing: run with UPDATE_SCREENSHOTS=1"
            assert path.read_bytes()[:8] == PNG_SIGNATURE, path
        return

    # The browser fixtures are only needed (and only started) when taking pictures.
    live_server = request.getfixturevalue("live_server")
    make_organiser = request.getfixturevalue("make_organiser")
    make_event = request.getfixturevalue("make_event")
    make_attendee = request.getfixturevalue("make_attendee")
    new_phone = request.getfixturevalue("new_phone")
    laptop = request.getfixturevalue("laptop")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Sunday brunch", venue="The corner café")
    make_attendee(
        event,
        "Kofi Mensah",
        about="Runs the Saturday parkrun",
        interests=["marathons", "coffee roasting"],
        talk_about="Trail shoes",
    )
    make_attendee(
        event,
        "Lena Vogel",
        about="Product designer",
        interests=["travel in asia", "sourdough", "climbing"],
    )
    make_attendee(
        event, "Sam Okafor", about="Learning Vietnamese", interests=["travel in asia", "marathons"]
    )

    phone = new_phone()
    phone.goto(f"{live_server.url}/e/{event.checkin_token}")
    fill_check_in(phone, ANA)
    phone.screenshot(path=SCREENSHOTS / "checkin.png", full_page=True)
    submit_check_in(phone)
    badge_token_of(phone, live_server)
    phone.screenshot(path=SCREENSHOTS / "badge.png", full_page=True)

    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}")
    expect(laptop.locator(".count")).to_contain_text("4 checked in")
    table = laptop.locator("table.attendees").bounding_box()
    laptop.screenshot(
        path=SCREENSHOTS / "attendees.png",
        clip={"x": 0, "y": 0, "width": 1280, "height": table["y"] + table["height"] + 32},
    )
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE, path
