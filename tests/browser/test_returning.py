"""One tap back, on phones: a remembered phone checks in with one tap, a new phone with the
email alone, and the screens and typed fields each takes are counted against the targets."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from playwright.sync_api import expect

from domain.db import db, writing
from domain.events import EventDetails, create_event, wall_clock_now
from domain.organisers import create_organiser
from tests.browser.support import (
    LiveServer,
    Traffic,
    assert_no_axe_violations,
    button,
    check_in_at,
    label,
)
from tests.mail_support import Mailbox

ANA = {
    "Name": "Ana Almeida",
    "Email": "ana@example.org",
    "About me": "Baker by night",
    "Interests": "sourdough, marathons",
}
BEN = {"Name": "Ben Okafor", "Email": "ben@example.org", "Interests": "marathons, chess"}
# The targets: a remembered phone, 1 screen and 0 fields typed; a new phone, at most 3
# screens and 1 field typed (the email). A screen is a page the person is shown on the way
# to their badge (every navigation before the badge's own).
REMEMBERED = (1, 0)
NEW_PHONE = (3, 1)


class Journey:
    """One phone's way to its badge: the pages it is shown, and the fields typed into."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.pages: list[str] = []
        self.typed = 0
        page.on("framenavigated", self._navigated)

    def _navigated(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.pages.append(frame.url)

    def type(self, field: Any, value: str) -> None:
        field.fill(value)
        self.typed += 1

    @property
    def screens(self) -> int:
        """Pages shown before the badge."""
        assert re.search(r"/b/[\w-]{43}$", self.pages[-1]), self.pages
        return len(self.pages) - 1


def two_events(server: LiveServer) -> tuple[Any, ...]:
    with server.app.app_context(), writing():
        organiser = create_organiser("maya@example.org", "correct horse battery")
        start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
        events = tuple(
            create_event(
                organiser,
                EventDetails(name, start, start + timedelta(hours=3), "Europe/London"),
            )
            for name in ("Sunday Brunch, March", "Sunday Brunch, April")
        )
        db.session.commit()
        return tuple(SimpleNamespace(checkin_token=event.checkin_token) for event in events)


def test_a_remembered_phone_and_a_new_phone_check_in_within_the_targets(live_server, new_phone):
    march, april = two_events(live_server)
    ana_phone = new_phone()
    check_in_at(ana_phone, live_server, march, ANA)
    check_in_at(new_phone(), live_server, march, BEN)

    # Ana's phone, a month later: the poster offers her saved profile, one tap checks in.
    ana = Journey(ana_phone)
    with Traffic(ana_phone) as landing:
        ana_phone.goto(f"{live_server.url}/e/{april.checkin_token}")
    landing.check(live_server, "landing page for a returning phone")
    expect(button(ana_phone, f"Check in as {ANA['Name']}")).to_be_visible()
    assert_no_axe_violations(ana_phone, "the landing page for a returning phone")
    button(ana_phone, f"Check in as {ANA['Name']}").click()
    expect(ana_phone.get_by_role("heading", level=1)).to_have_text(ANA["Name"])
    expect(ana_phone.locator(".flash")).to_have_text("You're checked in.")
    expect(ana_phone.get_by_text(ANA["About me"])).to_be_visible()
    assert (ana.screens, ana.typed) == REMEMBERED, ana.pages

    # Ben, on a phone Rapport has never seen: his email, then the link it brings.
    ben_phone = new_phone()
    ben = Journey(ben_phone)
    ben_phone.goto(f"{live_server.url}/e/{april.checkin_token}")
    ben_phone.get_by_text("Checked in with Rapport before? Skip the form").click()
    ben.type(label(ben_phone, "Your email"), BEN["Email"])
    button(ben_phone, "Email me a sign-in link").click()
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert_no_axe_violations(ben_phone, "the check-your-email page")
    with live_server.app.app_context():
        mailbox = Mailbox(live_server.app)
        mailbox.deliver()
        (link,) = re.findall(
            re.escape(live_server.url) + r"/m/[\w-]+", mailbox.one(BEN["Email"], "signin").text
        )
    with Traffic(ben_phone) as link_page:
        ben_phone.goto(link)
    link_page.check(live_server, "the sign-in link's page")
    assert_no_axe_violations(ben_phone, "the sign-in link's page")
    button(ben_phone, f"Check in as {BEN['Name']}").click()
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text(BEN["Name"])
    expect(ben_phone.locator(".flash")).to_have_text("You're checked in, with your saved profile.")
    assert_no_axe_violations(ben_phone, "the badge after an emailed check-in")
    assert ben.screens <= NEW_PHONE[0] and ben.typed <= NEW_PHONE[1], (ben.pages, ben.typed)
    print(f"remembered phone: {ana.screens} screen(s), {ana.typed} typed")
    print(f"new phone: {ben.screens} screen(s), {ben.typed} typed")

    # Both are on the April badge pages, with a way to /me.
    for phone in (ana_phone, ben_phone):
        expect(phone.get_by_role("link", name="My connections", exact=True)).to_be_visible()

    # Ana looks at her card as others see it: a phone page like the rest.
    with Traffic(ana_phone) as preview:
        ana_phone.get_by_role("link", name="See my card as others see it").click()
        expect(ana_phone.get_by_role("heading", level=1)).to_have_text("My card as others see it")
    preview.check(live_server, "the card preview")
    assert_no_axe_violations(ana_phone, "the card preview")
    expect(ana_phone.get_by_text(ANA["About me"]).first).to_be_visible()


def test_the_top_links_keep_to_two_rows_on_a_narrow_phone(live_server, new_phone):
    march, _ = two_events(live_server)
    phone = new_phone()
    phone.set_viewport_size({"width": 320, "height": 640})
    check_in_at(phone, live_server, march, ANA)
    expect(phone.get_by_role("heading", level=1)).to_have_text(ANA["Name"])
    tops = phone.eval_on_selector_all(
        "nav.mine a", "links => links.map(link => Math.round(link.getBoundingClientRect().top))"
    )
    assert len(tops) == 3 and len(set(tops)) <= 2, tops
    widths = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths  # nothing sticks out sideways
