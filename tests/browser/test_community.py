"""A community of two events in a real browser: people met at the first are found again at
the second, and a newcomer is pointed out to the regulars.

Phones are Pixel 7 emulations (one browser context each) against the app on 127.0.0.1 with
CSRF protection on. At the second event Ana's phone checks in with one tap and Ben, on a new
phone, with his email and the sign-in link; screens and typed fields are counted.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image
from playwright.sync_api import expect

from domain.communities import attach_event, create_community
from domain.db import db, writing
from domain.models import Event
from tests.browser.support import (
    ANA,
    BEN,
    LIVE_UPDATE_TIMEOUT_MS,
    PEOPLE_UPDATE_TIMEOUT_MS,
    PHONE_PICTURE_WIDTH,
    Traffic,
    assert_no_axe_violations,
    badge_token_of,
    button,
    check_in_at,
    label,
)
from tests.browser.test_returning import NEW_PHONE, REMEMBERED, Journey
from tests.mail_support import Mailbox

NOTE = "we talked about the Hanoi night market"
CLEO = {"Name": "Cleo Park", "Email": "cleo@example.org", "Interests": "Sourdough, board games"}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "met-before.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def move_back(event: Event, days: int) -> None:
    """Move an event into the past, as if it happened `days` ago."""
    event_id = event.id
    db.session.rollback()  # a write starts its own transaction, not a reader's snapshot
    with writing():
        event = db.session.get_one(Event, event_id)
        event.starts_at -= timedelta(days=days)
        event.ends_at -= timedelta(days=days)
        db.session.commit()


def test_people_met_before_and_newcomers_at_the_next_event(
    live_server, make_organiser, make_event, new_phone
):
    organiser = make_organiser()
    march = make_event(organiser, name="Sunday Brunch", venue="The Back Room")
    tonight = make_event(organiser, name="Sunday Brunch", venue="The Back Room")
    with writing():
        club = create_community(organiser, "Sunday Brunch Club")
        attach_event(club, db.session.get_one(Event, march.id))
        attach_event(club, db.session.get_one(Event, tonight.id))
        db.session.commit()
    ana_phone, ben_first_phone, cleo_phone = new_phone(), new_phone(), new_phone()

    # 1. At the first brunch Ana scans Ben's badge, connects with a note, and Ben accepts.
    check_in_at(ana_phone, live_server, march, ANA)
    ben_first = check_in_at(ben_first_phone, live_server, march, BEN)
    ana_phone.goto(f"{live_server.url}/b/{ben_first}")
    label(ana_phone, "Note (only you see it)").fill(NOTE)
    button(ana_phone, "Connect with Ben Okafor").click()
    ben_first_phone.reload()
    button(ben_first_phone, "Accept Ana Lima").click()
    expect(ben_first_phone.locator(".flash")).to_have_text("You're now connected with Ana Lima.")
    move_back(march, 30)
    db.session.expire_all()
    month = db.session.get_one(Event, march.id).starts_at.astimezone(ZoneInfo("Europe/London"))

    # 2. At the second, Ana's phone checks in with one tap, her profile remembered.
    ana = Journey(ana_phone)
    ana_phone.goto(f"{live_server.url}/e/{tonight.checkin_token}")
    button(ana_phone, f"Check in as {ANA['Name']}").click()
    expect(ana_phone.get_by_role("heading", level=1)).to_have_text(ANA["Name"])
    assert (ana.screens, ana.typed) == REMEMBERED, ana.pages
    ana_token = badge_token_of(ana_phone, live_server)
    badge_url = ana_phone.url
    live = ana_phone.locator("#live")
    expect(live).not_to_contain_text("met before")
    navigations: list[str] = []
    ana_phone.on("framenavigated", lambda frame: navigations.append(frame.url))

    # Cleo, new to the club, arrives; then Ben, on a phone Rapport has never seen, checks
    # in with his email alone. Ana's open badge shows each by itself.
    check_in_at(cleo_phone, live_server, tonight, CLEO)
    ben_phone = new_phone()
    ben = Journey(ben_phone)
    ben_phone.goto(f"{live_server.url}/e/{tonight.checkin_token}")
    ben_phone.get_by_text("Checked in with Rapport before? Skip the form").click()
    ben.type(label(ben_phone, "Your email"), BEN["Email"])
    button(ben_phone, "Email me a sign-in link").click()
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text("Check your email")
    with live_server.app.app_context():
        mailbox = Mailbox(live_server.app)
        mailbox.deliver()
        (link,) = re.findall(
            re.escape(live_server.url) + r"/m/[\w-]+", mailbox.one(BEN["Email"], "signin").text
        )
    ben_phone.goto(link)
    button(ben_phone, f"Check in as {BEN['Name']}").click()
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text(BEN["Name"])
    assert ben.screens <= NEW_PHONE[0] and ben.typed <= NEW_PHONE[1], ben.pages
    met = live.locator("section.met-before")
    expect(met).to_contain_text("People here you've met before", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(met).to_contain_text("Ben Okafor")
    expect(met).to_contain_text(f"first met at Sunday Brunch in {month:%B}")
    expect(met).to_contain_text(NOTE)
    expect(met.get_by_role("link", name=BEN["Email"])).to_be_visible()
    expect(met.locator("mark.tag.shared")).to_contain_text("marathons")
    new_here = ana_phone.locator("#people section.new-here")
    expect(new_here).to_contain_text("New here tonight", timeout=PEOPLE_UPDATE_TIMEOUT_MS)
    expect(new_here).to_contain_text("Cleo Park")
    expect(new_here.locator("mark.tag.shared")).to_contain_text("Sourdough")
    expect(new_here).not_to_contain_text("Ben Okafor")
    assert navigations == []
    # Met before comes first, above the newcomers and the suggestions.
    text = ana_phone.locator("main").inner_text()
    assert (
        text.index("met before") < text.index("New here tonight") < text.index("might like to meet")
    )
    assert_no_axe_violations(ana_phone, "Ana's badge with people met before and a newcomer")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        met.evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 16)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        ana_phone.screenshot(path=SCREENSHOT)
    assert SCREENSHOT.read_bytes()[:8] == PNG_SIGNATURE, "run `make screenshots`"
    with Image.open(SCREENSHOT) as picture:
        picture.load()
        assert picture.width == PHONE_PICTURE_WIDTH, picture.size

    # Ben scanning Ana's badge is told they are connected already, since March.
    ben_phone.goto(f"{live_server.url}/b/{ana_token}")
    expect(ben_phone.locator(".connected")).to_have_text(
        f"✓ You're already connected, since Sunday Brunch in {month:%B}."
    )
    assert_no_axe_violations(ben_phone, "Ana's card as Ben, met before, sees it")

    # The badge page keeps to the phone budget with the new sections on it.
    with Traffic(ana_phone) as badge:
        ana_phone.goto(badge_url)
    badge.check(live_server, "badge page with people met before")
