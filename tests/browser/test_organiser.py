"""The organiser's night in a real browser: pictures of the room, ending, and the new-event
form's time zone."""

from __future__ import annotations

import io
from datetime import timedelta

import pypdfium2
import sqlalchemy as sa
from playwright.sync_api import expect

from domain.connections import request_connection
from domain.db import db, writing
from domain.events import wall_clock_now
from domain.limits import ATTENDEES_PAGE
from domain.models import Person
from domain.people import delete_person
from tests.browser.support import (
    LAPTOP_VIEWPORT,
    assert_no_axe_violations,
    button,
    label,
    log_in,
)
from tests.conftest import qr_codes


def a_night(make_organiser, make_event, make_attendee):
    """Five people at an event, three connections among four of them."""
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Sunday brunch", venue="The corner café")
    people = [
        make_attendee(event, "Kofi Mensah", interests=["marathons", "coffee roasting"]),
        make_attendee(event, "Lena Vogel", interests=["travel in asia", "sourdough"]),
        make_attendee(event, "Sam Okafor", interests=["travel in asia", "marathons"]),
        make_attendee(event, "Ana Lima", interests=["sourdough", "marathons"]),
        make_attendee(event, "Bo Chen", interests=["chess"], share_profile=False),
    ]
    with writing():
        for a, b in ((0, 2), (1, 3), (2, 3)):
            request_connection(people[a].attendance, people[b].attendance)
            request_connection(people[b].attendance, people[a].attendance)
        db.session.commit()
    return event


def test_pictures_render_on_the_event_page_with_the_right_counts(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    assert_no_axe_violations(laptop, "events list")
    expect(laptop.locator(".cards li")).to_contain_text("5 checked in")
    laptop.get_by_role("link", name="Sunday brunch").click()
    # The pictures load on their own after the page: the attendee table does not wait.
    network = laptop.locator("#pictures svg.network")
    expect(network).to_be_visible()
    expect(network.locator("circle")).to_have_count(5)
    expect(network.locator("line")).to_have_count(3)
    expect(network.locator("text")).to_have_count(4)  # Bo shows no profile: no name
    expect(laptop.locator("#pictures svg.arrivals rect.bar")).not_to_have_count(0)
    expect(laptop.locator("#pictures .share-connected")).to_have_text("80%")
    expect(laptop.locator("#pictures .unconnected")).to_have_text("1")
    assert_no_axe_violations(laptop, "event page with its pictures")

    laptop.get_by_role("link", name="Pictures", exact=True).click()
    expect(laptop.locator("svg.network circle")).to_have_count(5)
    assert_no_axe_violations(laptop, "pictures page")


def test_ending_from_the_event_page_asks_then_shows_the_state(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    laptop.get_by_role("link", name="Sunday brunch").click()
    laptop.get_by_role("link", name="End the event now").click()
    expect(laptop.locator(".confirm")).to_contain_text("go out at 09:00")
    assert_no_axe_violations(laptop, "ending confirmation")
    button(laptop, "End the event now").click()
    expect(laptop.locator(".ending")).to_contain_text("Ended at")
    expect(laptop.get_by_role("link", name="End the event now")).to_have_count(0)
    laptop.get_by_role("link", name="Emails", exact=True).click()
    assert_no_axe_violations(laptop, "emails page")


def test_new_event_form_takes_the_browsers_time_zone(live_server, browser, make_organiser):
    make_organiser("maya@example.org")
    context = browser.new_context(viewport=LAPTOP_VIEWPORT, timezone_id="America/Bogota")
    try:
        page = context.new_page()
        log_in(page, live_server, "maya@example.org")
        page.goto(f"{live_server.url}/organiser/events/new")
        expect(label(page, "Time zone")).to_have_value("America/Bogota")
        # The suggested times are on that zone's clock too: the next hour there, for 3 hours.
        hour = wall_clock_now("America/Bogota").replace(minute=0, second=0, microsecond=0)
        starts, ends = hour + timedelta(hours=1), hour + timedelta(hours=4)
        expect(label(page, "Starts")).to_have_value(starts.strftime("%Y-%m-%dT%H:%M"))
        expect(label(page, "Ends")).to_have_value(ends.strftime("%Y-%m-%dT%H:%M"))
        assert_no_axe_violations(page, "new event form")
    finally:
        context.close()


def test_the_attendee_refresh_takes_away_the_line_of_someone_who_left(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    event = a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}")
    rows = laptop.locator("table.attendees tbody tr")
    expect(rows).to_have_count(5)
    with writing():
        kofi = db.session.scalars(sa.select(Person).where(Person.name == "Kofi Mensah")).one()
        delete_person(kofi)
        db.session.commit()
    expect(rows).to_have_count(4, timeout=15_000)
    expect(laptop.locator("table.attendees")).not_to_contain_text("Kofi Mensah")
    expect(laptop.locator("#attendees .count")).to_contain_text("4 checked in")


def test_a_small_rooms_network_fits_its_picture_as_the_browser_draws_it(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    event = a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/pictures")
    network = laptop.locator("svg.network")
    expect(network.locator("circle")).to_have_count(5)
    # The browser's own measure of what is drawn (names as the font sets them) against the frame.
    drawn, frame, shown = network.evaluate(
        """svg => {
            const box = b => [b.x, b.y, b.x + b.width, b.y + b.height];
            const v = svg.viewBox.baseVal;
            const r = svg.getBoundingClientRect();
            return [box(svg.getBBox()), [v.x, v.y, v.x + v.width, v.y + v.height],
                    [r.width, r.height]];
        }"""
    )
    assert frame[0] <= drawn[0] and drawn[2] <= frame[2], (drawn, frame)
    assert frame[1] <= drawn[1] and drawn[3] <= frame[3], (drawn, frame)
    nodes = network.locator("g.nodes").evaluate(
        "g => { const b = g.getBBox(); return [b.width, b.height]; }"
    )
    assert max(nodes[0] / (frame[2] - frame[0]), nodes[1] / (frame[3] - frame[1])) >= 0.6
    # Drawn at its natural size: five people are not blown up to fill the page.
    assert abs(shown[0] - (frame[2] - frame[0])) < 1 and shown[0] < 400, shown


def test_the_owner_deletes_an_event_after_typing_its_name(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    event = a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/edit")
    laptop.get_by_role("link", name="Delete this event…").click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Delete this event?")
    expect(laptop.locator("ul.deletion")).to_contain_text("5 check-ins")
    expect(laptop.locator("ul.deletion")).to_contain_text("3 connections made here")
    assert_no_axe_violations(laptop, "the page that asks before deleting an event")

    label(laptop, "Type the event's name to confirm").fill("Sunday")
    button(laptop, "Delete this event").click()
    expect(laptop.locator(".error")).to_contain_text("That isn't the event's name")
    label(laptop, "Type the event's name to confirm").fill("Sunday brunch")
    button(laptop, "Delete this event").click()
    expect(laptop).to_have_url(f"{live_server.url}/organiser/")
    expect(laptop.locator(".flash")).to_contain_text("Sunday brunch is deleted.")
    expect(laptop.locator(".cards")).to_have_count(0)


def test_a_search_typed_on_a_later_page_looks_from_the_first(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Conference")
    for number in range(ATTENDEES_PAGE + 4):
        make_attendee(event, f"Guest {number:02d}")
    make_attendee(event, "Zoë Late", interests=["sourdough"])  # the latest: on page 1
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}?page=2")
    rows = laptop.locator("table.attendees tbody tr")
    expect(rows).to_have_count(5)
    expect(laptop.locator("table.attendees")).not_to_contain_text("Zoë Late")
    # Fifty-four guests match: the search shows the first page of them, latest first.
    laptop.locator("#q").fill("Guest")
    expect(rows).to_have_count(ATTENDEES_PAGE)
    expect(rows.first).to_contain_text(f"Guest {ATTENDEES_PAGE + 3:02d}")
    expect(laptop.locator("#attendees .count")).to_contain_text(f"{ATTENDEES_PAGE + 4} matching")
    laptop.locator("#q").fill("Zoë")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Zoë Late")


def test_the_event_page_and_its_pictures_fit_a_small_phone(
    live_server, browser, make_organiser, make_event, make_attendee
):
    event = a_night(make_organiser, make_event, make_attendee)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        log_in(page, live_server, "maya@example.org")
        for path in (f"/organiser/events/{event.id}", f"/organiser/events/{event.id}/pictures"):
            page.goto(f"{live_server.url}{path}")
            expect(page.locator("svg.network circle")).to_have_count(5)
            # The tables read to screen readers take no room: nothing scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") == 360, path
            # The attendee table scrolls in its own box there: a keyboard can reach it.
            assert_no_axe_violations(page, f"{path} on a small phone")
    finally:
        context.close()


def test_the_emails_page_fits_a_small_phone(
    live_server, browser, make_organiser, make_event, make_attendee
):
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Sunday brunch")
    make_attendee(event, "Kofi Mensah", want_followups=True)
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        log_in(page, live_server, "maya@example.org")
        page.goto(f"{live_server.url}/organiser/events/{event.id}/emails")
        expect(page.locator("table.attendees tbody tr")).to_have_count(1)
        # The wide table scrolls in its own box, its hidden column name with it.
        assert page.evaluate("document.documentElement.scrollWidth") == 360
    finally:
        context.close()


def test_the_pictures_headings_read_as_an_outline(
    live_server, laptop, make_organiser, make_event, make_attendee
):
    event = a_night(make_organiser, make_event, make_attendee)
    log_in(laptop, live_server, "maya@example.org")
    size = "e => parseFloat(getComputedStyle(e).fontSize)"
    for path, levels in (
        (f"/organiser/events/{event.id}", ("h2#pictures-heading", "#pictures h3", "#pictures h4")),
        (f"/organiser/events/{event.id}/pictures", ("h2", "main h3")),
    ):
        laptop.goto(f"{live_server.url}{path}")
        expect(laptop.locator(levels[-1]).first).to_be_visible()
        sizes = [laptop.locator(level).first.evaluate(size) for level in levels]
        # Each level a step smaller than the one it sits under, so a group reads as one.
        steps = zip(sizes, sizes[1:], strict=False)
        assert all(inner <= 0.95 * outer for outer, inner in steps), (path, sizes)


def test_the_poster_prints_on_one_sheet_of_a4_or_us_letter_with_a_readable_code(
    live_server, laptop, make_organiser, make_event
):
    organiser = make_organiser("maya@example.org", name="Maya")
    event = make_event(organiser, name="Sunday brunch")
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/poster")
    expect(laptop.get_by_text("A4 or US Letter")).to_be_visible()
    laptop.emulate_media(media="print")
    for paper in ("A4", "Letter"):
        pdf = pypdfium2.PdfDocument(io.BytesIO(laptop.pdf(format=paper, print_background=True)))
        assert len(pdf) == 1, f"the poster takes {len(pdf)} sheets of {paper}"
        image = pdf[0].render(scale=2).to_pil()
        codes = [code.text for code in qr_codes(image)]
        assert codes == [f"{live_server.url}/e/{event.checkin_token}"], paper
