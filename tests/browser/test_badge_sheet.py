"""The badge sheet in a real browser, laid out for print on A4 and US Letter: long names and
names in any script stay inside their badge and off its QR code, and every code still reads."""

from __future__ import annotations

import os

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.support import button, label, log_in
from tests.conftest import qr_codes

NAMES = [
    "Maximiliane Alexandra Konstanze von Hohenzollern-Sigmaringen",  # 60 characters
    "Donaudampfschifffahrtsgesellschaftskapitänswitwe",
    "ana.lima.the.longest.address@conference-attendees.example.org",
    "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
    "王" * 30,
    "محمد عبد الله بن عبد العزيز آل سعود",
    "अक्षय क्षत्रिय",
    "Ana",
]
INTERESTS = ["a-very-long-interest-without-spaces", "jazz", "sourdough"]
PICTURES = os.environ.get("BADGE_PICTURES")  # a path to save a picture of the A4 sheet to

MEASURE = """sheet => [...sheet.querySelectorAll('.name-badge')].map(badge => {
  const box = element => {
    const r = element.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  };
  const name = badge.querySelector('.badge-name');
  return {
    name: name.textContent,
    badge: box(badge),
    text: [...badge.querySelectorAll('.badge-event, .badge-name, .badge-interests li')].map(box),
    qr: box(badge.querySelector('svg.qr')),
    overflows: name.scrollWidth > name.clientWidth,
  };
})"""


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(box: list[float], outer: list[float]) -> bool:
    return all([outer[0] <= box[0], box[2] <= outer[2], outer[1] <= box[1], box[3] <= outer[3]])


@pytest.mark.parametrize(("paper", "choice"), [("a4", "A4"), ("letter", "US Letter")])
def test_long_names_keep_off_the_qr_code_and_inside_the_badge_in_print(
    live_server, make_event, make_organiser, make_attendee, laptop, paper, choice
):
    owner = make_organiser("maya@example.org", name="Maya")
    event = make_event(owner, name="Annual general meeting of the Ruritanian Philatelic Society")
    for name in NAMES:
        make_attendee(event, name, interests=INTERESTS)
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/door")
    label(laptop, "Paper").select_option(label=choice)
    button(laptop, "Print badges").click()
    sheet = laptop.locator(f".sheet.{paper}")
    expect(sheet.locator(".name-badge")).to_have_count(len(NAMES))
    laptop.emulate_media(media="print")
    badges = sheet.evaluate(MEASURE)
    assert sorted(badge["name"] for badge in badges) == sorted(NAMES)
    for badge in badges:
        assert inside(badge["qr"], badge["badge"]), badge["name"]
        assert not badge["overflows"], badge["name"]
        for box in badge["text"]:
            assert inside(box, badge["badge"]), badge["name"]
            assert not overlaps(box, badge["qr"]), badge["name"]
    if PICTURES and paper == "a4":
        sheet.screenshot(path=PICTURES)
    # Every code on the printed page still reads.
    laptop.emulate_media(media="screen")
    picture = Image.open(__import__("io").BytesIO(sheet.screenshot()))
    assert len(qr_codes(picture)) == len(NAMES)
