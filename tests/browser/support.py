"""What the browser tests share: the live server, the people, and helpers that drive pages."""

from __future__ import annotations

import io
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from PIL import Image
from playwright.sync_api import expect
from werkzeug.serving import make_server

from domain.db import db
from domain.events import wall_clock_now
from domain.limits import PEOPLE_REFRESH_SECONDS
from domain.models import Event
from tests.conftest import PASSWORD, qr_codes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PHONE = "Pixel 7"  # 412 x 839 CSS px at 2.625 device px each
PHONE_PICTURE_WIDTH = 1082  # a phone's full-page screenshot, in device px (412 x 2.625)
PHONE_PICTURE_MIN_HEIGHT = 2202  # at least one screenful (839 x 2.625)
LAPTOP_VIEWPORT = {"width": 1280, "height": 900}

PAGE_BUDGET_BYTES = 30_000  # DESIGN.md §5: at most 30 KB transferred per phone page
PAGE_BUDGET_REQUESTS = 3
LIVE_UPDATE_TIMEOUT_MS = 12_000  # live pages poll every 5 s
# The people a badge page suggests meeting refresh every PEOPLE_REFRESH_SECONDS.
PEOPLE_UPDATE_TIMEOUT_MS = (PEOPLE_REFRESH_SECONDS + 7) * 1000

EVENT_NAME = "Sunday brunch"
SHARE = "Show my profile to the people I meet at this event"
FOLLOW_UP = "Email me a follow-up about the people I connect with here"

# Two people who meet at an event: they share one interest, marathons.
ANA = {
    "Name": "Ana Lima",
    "Email": "ana@example.org",
    "About me": "Backend developer, weekend baker",
    "Interests": "marathons, sourdough",
}
BEN = {
    "Name": "Ben Okafor",
    "Email": "ben@example.org",
    "About me": "Learning Vietnamese",
    "Interests": "marathons, travel in Asia",
}


class LiveServer:
    """A real HTTP server running the app in a thread, on 127.0.0.1."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app.config["PUBLIC_URL"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


# ---------------------------------------------------------------- finding things on a page


def label(page: Any, text: str) -> Any:
    """Return the form control with exactly this label."""
    return page.get_by_label(text, exact=True)


def button(page: Any, name: str) -> Any:
    """Return the button with exactly this accessible name."""
    return page.get_by_role("button", name=name, exact=True)


def assert_no_axe_violations(page: Any, what: str) -> None:
    """Fail with axe-core's report if the page has any accessibility violation."""
    results = Axe().run(page)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


def qr_png(page: Any) -> bytes:
    """Return a screenshot of the page's QR code exactly as the browser draws it."""
    return page.locator("svg.qr").screenshot()


def decode_qr(png: bytes) -> list[str]:
    """Return the texts of the QR codes in a picture."""
    return [result.text for result in qr_codes(Image.open(io.BytesIO(png)))]


def badge_token_of(page: Any, server: LiveServer) -> str:
    """Return the badge token of the badge page the browser is on."""
    match = re.fullmatch(re.escape(server.url) + r"/b/([A-Za-z0-9_-]{43,})", page.url)
    assert match, f"not a badge page: {page.url}"
    return match.group(1)


# ---------------------------------------------------------------- a fake camera


def camera_frame(png: bytes, size: tuple[int, int] = (640, 480), qr_px: int = 400) -> Image.Image:
    """Return a greyscale camera picture of a QR code held up on a white background."""
    code = Image.open(io.BytesIO(png)).convert("L").resize((qr_px, qr_px), Image.Resampling.LANCZOS)
    frame = Image.new("L", size, 255)
    frame.paste(code, ((size[0] - qr_px) // 2, (size[1] - qr_px) // 2))
    return frame


def write_y4m(frame: Image.Image, path: Path, frames: int = 5, fps: int = 10) -> None:
    """Write a raw YUV4MPEG2 (4:2:0) video of a greyscale picture; Chromium loops it."""
    width, height = frame.size
    assert width % 2 == 0 and height % 2 == 0
    luma = frame.convert("L").tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))  # no colour
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + luma + chroma + chroma)


# ---------------------------------------------------------------- journeys


def fill_check_in(
    page: Any, profile: dict[str, str], *, share: bool = True, followups: bool = False
) -> None:
    """Fill the check-in form by its labels, ticking the boxes asked for."""
    for field_label, value in profile.items():
        label(page, field_label).fill(value)
    if share:
        label(page, SHARE).check()
    if followups:
        label(page, FOLLOW_UP).check()


def submit_check_in(page: Any) -> None:
    """Send the check-in form."""
    button(page, "Check in").click()


def check_in(page: Any, profile: dict[str, str], *, followups: bool = False) -> None:
    """Fill the check-in form, agree to show the profile, and send it."""
    fill_check_in(page, profile, followups=followups)
    submit_check_in(page)


def check_in_at(
    page: Any, server: LiveServer, event: Event, profile: dict[str, str], **options: bool
) -> str:
    """Check in on this phone from the event's poster link; return the badge token."""
    page.goto(f"{server.url}/e/{event.checkin_token}")
    check_in(page, profile, **options)
    expect(page.get_by_role("heading", level=1)).to_have_text(profile["Name"])
    return badge_token_of(page, server)


def sign_up_and_create_event(
    laptop: Any, server: LiveServer, *, description: str = "", followups: str | None = None
) -> None:
    """Sign up as an organiser and create an event that started half an hour ago."""
    laptop.goto(f"{server.url}/signup")
    label(laptop, "Your name").fill("Maya Organiser")
    label(laptop, "Email").fill("maya@example.org")
    label(laptop, "Password").fill(PASSWORD)
    button(laptop, "Create account").click()
    expect(laptop).to_have_url(f"{server.url}/organiser/events/new")

    zone = "Europe/London"
    start = wall_clock_now(zone).replace(second=0, microsecond=0) - timedelta(minutes=30)
    label(laptop, "Event name").fill(EVENT_NAME)
    label(laptop, "Starts").fill(start.strftime("%Y-%m-%dT%H:%M"))
    label(laptop, "Ends").fill((start + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"))
    label(laptop, "Time zone").fill(zone)
    label(laptop, "Venue").fill("The corner café")
    if description:
        label(laptop, "Description").fill(description)
    if followups is not None:
        label(laptop, "Send the follow-up email").select_option(label=followups)
    button(laptop, "Create event").click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text(EVENT_NAME)


def log_in(laptop: Any, server: LiveServer, email: str) -> None:
    """Log the laptop in as an organiser."""
    laptop.goto(f"{server.url}/login")
    label(laptop, "Email").fill(email)
    label(laptop, "Password").fill(PASSWORD)
    button(laptop, "Log in").click()
    expect(laptop).to_have_url(f"{server.url}/organiser/")


def only_event(server: LiveServer) -> Event:
    """Return the one event in the live server's database, detached from its session."""
    with server.app.app_context():
        event = db.session.scalars(sa.select(Event)).one()
        db.session.expunge(event)
    return event


# ---------------------------------------------------------------- page weight


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
        # A request the previous page started (its stylesheet, say) may finish after
        # recording began: only what this page asked for is counted.
        if request in self.requests:
            self.finished.append(request)

    def _on_failed(self, request: Any) -> None:
        if request not in self.requests:
            return
        if request.resource_type == "fetch" and request.failure == "net::ERR_ABORTED":
            # The previous page's live refresh, started as the phone left it and cut off
            # by the navigation: not this page's traffic.
            self.requests.remove(request)
            return
        self.failed.append(request)

    def __enter__(self) -> Traffic:
        self.page.wait_for_load_state("networkidle")  # the previous page's requests are done
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

    def check(
        self, server: LiveServer, what: str, statuses: frozenset[int] = frozenset({200, 303})
    ) -> int:
        """Check the recording against the phone page budget; return the bytes it cost."""
        host = urlsplit(server.url).netloc
        summary = f"{what}: {self.sizes}, total {self.total} bytes"
        print(summary)
        assert not self.failed, summary
        # Full answers only: a 304 from a warm cache would understate the page's weight.
        assert set(self.statuses) <= statuses, summary
        assert self.requests, summary
        assert len(self.requests) <= PAGE_BUDGET_REQUESTS, summary
        assert all(urlsplit(request.url).netloc == host for request in self.requests), [
            request.url for request in self.requests
        ]
        assert self.total <= PAGE_BUDGET_BYTES, summary
        return self.total
