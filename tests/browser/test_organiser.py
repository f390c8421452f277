"""The organiser's night in a real browser: pictures of the room, ending, and the new-event
form's time zone."""

from __future__ import annotations

import sqlalchemy as sa
from playwright.sync_api import expect

from domain.connections import request_connection
from domain.db import db, writing
from domain.models import Person
from domain.people import delete_person
from tests.browser.support import (
    LAPTOP_VIEWPORT,
    assert_no_axe_violations,
    button,
    label,
    log_in,
)


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
