"""Connecting at an event in a real browser: scan a badge, ask, accept, swap contact details.

Headless Chromium (Debian's, through the shared fixtures) plays several phones (Pixel 7
emulation, one browser context each, so each has its own cookies) against the app on
127.0.0.1 with CSRF protection switched on. The in-page scanner test launches its own
Chromium with a fake camera that films a badge.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

from domain.checkin import find_attendance_by_badge
from domain.connections import accept_connection, request_connection
from domain.db import db, writing
from tests.browser.support import (
    ANA,
    CHROMIUM,
    LIVE_UPDATE_TIMEOUT_MS,
    PHONE,
    LiveServer,
    Traffic,
    assert_no_axe_violations,
    button,
    camera_frame,
    check_in,
    check_in_at,
    decode_qr,
    label,
    qr_png,
    write_y4m,
)
from tests.browser.support import BEN as BEN_AT_CHECK_IN
from tests.conftest import qr_codes

SCAN_TIMEOUT_MS = 15_000

# Ben adds a link, to show it staying hidden once he keeps his links to himself.
BEN = {**BEN_AT_CHECK_IN, "Links (optional)": "https://ben.example.org/runs"}
CLEO = {"Name": "Cleo Park", "Email": "cleo@example.org", "Interests": "climbing"}
DEV = {"Name": "Dev Rao", "Email": "dev@example.org", "Interests": "marathons, chess"}
NOTE = "we talked about the Hanoi night market"


# ---------------------------------------------------------------- the journey


def test_scan_connect_accept_and_swap_details(live_server, make_event, new_phone, tmp_path):
    event = make_event(name="Sunday brunch")
    ana_phone, ben_phone = new_phone(accept_downloads=True), new_phone()

    # 1. Ana and Ben check in on their own phones; Ben keeps his links to himself.
    ana_token = check_in_at(ana_phone, live_server, event, ANA)
    ana_url = f"{live_server.url}/b/{ana_token}"
    ben_token = check_in_at(ben_phone, live_server, event, BEN)
    expect(ben_phone.locator(".profile")).to_contain_text(BEN["Links (optional)"])
    ben_phone.get_by_role("link", name="Edit my profile").first.click()
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text("Edit my profile")
    label(ben_phone, "Who sees my links").select_option(label="No one")
    button(ben_phone, "Save").click()
    expect(ben_phone.locator(".flash")).to_have_text("Profile saved.")

    # Ben scans Ana's badge: the URL comes out of what Ana's phone actually draws.
    ana_phone.goto(ana_url)
    ana_navigations: list[str] = []
    ana_phone.on("framenavigated", lambda frame: ana_navigations.append(frame.url))
    scanned = decode_qr(qr_png(ana_phone))
    assert scanned == [ana_url]
    ben_phone.goto(scanned[0])

    # Ben sees Ana's card, with what they share highlighted and her email still private.
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text("Ana Lima")
    expect(ben_phone.locator("mark.tag.shared").first).to_contain_text("marathons")
    # Her interests say to a screen reader which one is shared; "You share ..." says it itself.
    shared_in_her_interests = ben_phone.locator("dl.fields mark.tag.shared")
    assert shared_in_her_interests.all_text_contents() == ["marathons (shared)"]
    sentence = ben_phone.locator("p", has_text="You share")
    assert sentence.locator("mark.tag.shared").all_text_contents() == ["marathons"]
    expect(ben_phone.locator("span.tag")).to_have_text(["sourdough"])  # hers alone: not marked
    expect(ben_phone.locator("main")).not_to_contain_text(ANA["Email"])
    assert_no_axe_violations(ben_phone, "Ana's card as Ben sees it")
    label(ben_phone, "Note (only you see it)").fill(NOTE)
    button(ben_phone, "Connect with Ana Lima").click()
    # Said once, by the card, with the note just written.
    expect(ben_phone.locator(".pending")).to_have_text(
        "Request sent. Ana Lima will see it on their badge."
    )
    expect(ben_phone.locator(".flash")).to_have_count(0)
    expect(ben_phone.locator("main")).to_contain_text(f"Your note: {NOTE}")
    expect(ben_phone).to_have_url(ana_url)
    expect(ben_phone.locator("main")).not_to_contain_text(ANA["Email"])

    # 2. Ana's open badge page shows the request by itself, without a reload.
    requests = ana_phone.locator("#live .requests")
    expect(requests).to_contain_text("Ben Okafor wants to connect", timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(requests.locator("mark.tag.shared")).to_have_count(1)
    expect(requests.locator("mark.tag.shared")).to_contain_text("marathons")
    assert ana_navigations == []
    assert NOTE not in ana_phone.content()
    expect(ana_phone.locator("#live")).not_to_contain_text(BEN["Email"])
    assert_no_axe_violations(ana_phone, "Ana's badge page with a pending request")

    button(ana_phone, "Accept Ben Okafor").click()
    expect(ana_phone.locator(".flash")).to_have_text("You're now connected with Ben Okafor.")
    expect(ana_phone).to_have_url(ana_url)

    # Both now see each other's email (shared with connections by default) and what they
    # share; Ben's links stay hidden; Ben's note is his alone.
    ben_entry = ana_phone.locator("#live .connections li").filter(has_text="Ben Okafor")
    expect(ben_entry.get_by_role("link", name=BEN["Email"])).to_have_attribute(
        "href", f"mailto:{BEN['Email']}"
    )
    expect(ben_entry.locator("mark.tag.shared")).to_contain_text("marathons")
    expect(ana_phone.locator("main")).not_to_contain_text(BEN["Links (optional)"])
    expect(label(ana_phone, "My note about Ben Okafor (only you see it)")).to_have_value("")
    assert NOTE not in ana_phone.content()
    assert_no_axe_violations(ana_phone, "Ana's badge page with an accepted connection")

    ana_phone.goto(f"{live_server.url}/b/{ben_token}")  # Ben's card as Ana sees it
    expect(ana_phone.get_by_role("heading", level=1)).to_have_text("Ben Okafor")
    expect(ana_phone.locator(".connected")).to_have_text("✓ You're connected.")
    expect(ana_phone.get_by_role("link", name=BEN["Email"])).to_be_visible()
    expect(ana_phone.locator("mark.tag.shared")).to_contain_text(["marathons"])
    expect(ana_phone.locator("main")).not_to_contain_text(BEN["Links (optional)"])
    assert NOTE not in ana_phone.content()
    ana_phone.get_by_role("link", name="Back to my badge").click()
    expect(ana_phone).to_have_url(ana_url)

    ben_phone.reload()  # Ana's card as Ben sees it now
    expect(ben_phone.locator(".connected")).to_have_text("✓ You're connected.")
    expect(ben_phone.get_by_role("link", name=ANA["Email"])).to_have_attribute(
        "href", f"mailto:{ANA['Email']}"
    )
    expect(ben_phone.locator("mark.tag.shared")).to_contain_text(["marathons"])
    ben_phone.goto(f"{live_server.url}/b/{ben_token}")
    ana_entry = ben_phone.locator("#live .connections li").filter(has_text="Ana Lima")
    expect(ana_entry.get_by_role("link", name=ANA["Email"])).to_be_visible()
    expect(label(ben_phone, "My note about Ana Lima (only you see it)")).to_have_value(NOTE)

    # 3. Ana adds Ben to her contacts: a vCard 3.0 with what Ben shares, and no links.
    with ana_phone.expect_download() as download_info:
        ana_phone.get_by_role("link", name="Add Ben Okafor to contacts").click()
    download = download_info.value
    assert download.suggested_filename == "Ben Okafor.vcf"  # from filename*, spaces kept
    path = tmp_path / "ben.vcf"
    download.save_as(path)
    with path.open(encoding="utf-8", newline="") as file:
        card = file.read()
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n"), card
    assert card.endswith("END:VCARD\r\n"), card
    assert card.count("\n") == card.count("\r\n"), "every line ends in CRLF"
    lines = card.split("\r\n")
    assert "FN:Ben Okafor" in lines
    assert "N:Okafor;Ben;;;" in lines
    assert f"EMAIL;TYPE=INTERNET:{BEN['Email']}" in lines
    assert "NOTE:Met at Sunday brunch" in lines
    assert "URL" not in card and "ben.example.org/runs" not in card
    assert NOTE not in card


def test_in_page_scanner_reads_a_badge_through_the_camera(
    live_server, make_event, new_phone, playwright_instance, tmp_path
):
    event = make_event(name="Night market walk")
    ana_phone = new_phone()
    ana_token = check_in_at(ana_phone, live_server, event, ANA)
    ana_url = f"{live_server.url}/b/{ana_token}"
    badge = qr_png(ana_phone)
    assert decode_qr(badge) == [ana_url]

    # The camera films Ana's badge held up against a white wall.
    frame = camera_frame(badge)
    assert [r.text for r in qr_codes(frame)] == [ana_url]
    video = tmp_path / "ana-badge.y4m"
    write_y4m(frame, video)

    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--disable-gpu",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = browser.new_context(**playwright_instance.devices[PHONE], permissions=["camera"])
        context.set_default_timeout(10_000)
        cleo_phone = context.new_page()
        fetched: list[str] = []
        cleo_phone.on("request", lambda request: fetched.append(urlsplit(request.url).path))
        cleo_token = check_in_at(cleo_phone, live_server, event, CLEO)
        assert cleo_token != ana_token

        # No native detector here, so tapping the button has to fetch the vendored jsQR;
        # until then the badge page doesn't load it.
        assert cleo_phone.evaluate("'BarcodeDetector' in window") is False
        assert cleo_phone.evaluate("window.isSecureContext") is True
        scan = button(cleo_phone, "Scan a badge")
        expect(scan).to_be_visible()
        cleo_phone.wait_for_load_state("load")
        assert "/static/vendor/jsQR.js" not in fetched
        scan.click()
        expect(cleo_phone).to_have_url(ana_url, timeout=SCAN_TIMEOUT_MS)
        expect(cleo_phone.get_by_role("heading", level=1)).to_have_text("Ana Lima")
        expect(button(cleo_phone, "Connect with Ana Lima")).to_be_visible()
        assert fetched.count("/static/vendor/jsQR.js") == 1
        context.close()
    finally:
        browser.close()


def test_a_camera_refused_or_missing_is_said_where_the_scan_button_was(
    live_server, make_event, new_phone
):
    """With no camera to use, the page says so at once, in view, with no black camera view
    pushing the words below the fold; the button that opened it is gone meanwhile."""
    event = make_event(name="Night market walk")
    phone = new_phone()  # the shared browser has no camera; this phone grants none
    check_in_at(phone, live_server, event, ANA)
    scan = button(phone, "Scan a badge")
    scan.click()
    status = phone.get_by_role("status").filter(has_text="camera app")
    expect(status).to_be_visible()
    expect(status).to_contain_text(
        re.compile(r"^(Camera access is blocked for this page|The camera isn't available)")
    )
    expect(phone.locator("#scan-video")).to_be_hidden()
    expect(scan).to_be_hidden()
    box = status.bounding_box()
    assert box is not None
    assert box["y"] >= -1 and box["y"] + box["height"] <= phone.viewport_size["height"], box
    # Closed and opened again, the camera is asked for again and refused again, the same way.
    button(phone, "Close").click()
    expect(status).to_be_hidden()
    expect(scan).to_be_visible()
    scan.click()
    expect(status).to_be_visible()


def test_without_javascript_no_scan_button_shows(live_server, make_event, new_phone):
    """The in-page scanner needs JavaScript: without it, the badge offers no dead button."""
    event = make_event(name="Night market walk")
    plain = new_phone(java_script_enabled=False)
    check_in_at(plain, live_server, event, ANA)  # her own badge, with its scanner's markup
    expect(plain.get_by_role("heading", level=1)).to_have_text("Ana Lima")
    expect(plain.locator("#scan-open")).to_have_count(1)
    expect(plain.locator("#scan-open")).to_be_hidden()
    expect(plain.locator("#scanner")).to_be_hidden()


def test_a_phone_not_checked_in_checks_in_and_comes_back_to_the_card(
    live_server, make_event, new_phone
):
    event = make_event(name="Rooftop party")
    ana_phone = new_phone()
    ana_token = check_in_at(ana_phone, live_server, event, ANA)
    ana_url = f"{live_server.url}/b/{ana_token}"

    stranger = new_phone()
    stranger.goto(ana_url)
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Ana Lima")
    expect(stranger.locator("main")).not_to_contain_text("marathons")  # outsiders see a name only
    expect(button(stranger, "Connect with Ana Lima")).to_have_count(0)
    stranger.get_by_role("link", name="Check in to connect").click()
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Rooftop party")
    check_in(stranger, DEV)

    expect(stranger).to_have_url(ana_url)
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Ana Lima")
    expect(stranger.locator("mark.tag.shared")).to_contain_text(["marathons"])
    expect(button(stranger, "Connect with Ana Lima")).to_be_visible()


def assert_small(traffic: Traffic, server: LiveServer, what: str) -> int:
    """Check a page load against the phone budget, with no scanner library; return its bytes."""
    total = traffic.check(server, what, statuses=frozenset({200}))
    paths = [urlsplit(request.url).path for request in traffic.requests]
    assert not any(path.endswith("jsQR.js") for path in paths), f"{what}: {traffic.sizes}"
    return total


def test_badge_page_stays_small(live_server, make_event, make_attendee, new_phone):
    event = make_event(name="Sunday brunch")
    phone = new_phone()
    token = check_in_at(phone, live_server, event, ANA)
    badge_url = phone.url

    with Traffic(phone) as alone:
        phone.goto(badge_url)
    expect(button(phone, "Scan a badge")).to_be_visible()  # JavaScript ran
    assert_small(alone, live_server, "badge page, first to arrive")

    # A busy badge: a request waiting, a connection made, a request sent, a suggestion.
    db.session.rollback()  # a fresh transaction: the server has written since we last read
    with writing():
        ana = find_attendance_by_badge(token)
        ben = make_attendee(event, "Ben Okafor", interests=["marathons", "travel in asia"])
        cleo = make_attendee(event, "Cleo Park", interests=["sourdough"])
        dev = make_attendee(event, "Dev Rao", interests=["marathons"])
        make_attendee(event, "Eli Moss", interests=["sourdough", "marathons"])
        request_connection(ben.attendance, ana, NOTE)
        accept_connection(ana, request_connection(cleo.attendance, ana))
        request_connection(ana, dev.attendance)
        db.session.commit()

    with Traffic(phone) as busy:
        phone.goto(badge_url)
    expect(phone.locator("#live .requests")).to_contain_text("Ben Okafor wants to connect")
    expect(phone.locator("#live .connections")).to_contain_text("Cleo Park")
    expect(phone.locator("#live .connections")).to_contain_text("Dev Rao")
    expect(phone.locator("#people .suggestions")).to_contain_text("Eli Moss")
    expect(button(phone, "Scan a badge")).to_be_visible()
    assert_small(busy, live_server, "badge page with four people")


def test_my_own_list_keeps_refreshing_after_a_tap_inside_it(
    live_server, make_event, make_attendee, new_phone
):
    """A tap on a link or on "Remove or block ..." (opened, then closed) leaves the focus in
    the list; a new request must still appear by itself."""
    event = make_event(name="Sunday brunch")
    phone = new_phone()
    token = check_in_at(phone, live_server, event, ANA)
    db.session.rollback()
    with writing():
        ana = find_attendance_by_badge(token)
        cleo = make_attendee(event, "Cleo Park", interests=["sourdough"])
        accept_connection(ana, request_connection(cleo.attendance, ana))
        db.session.commit()
    phone.reload()
    entry = phone.locator("#live .connections li").filter(has_text="Cleo Park")
    summary = entry.locator("summary", has_text="Remove or block Cleo Park")
    summary.click()
    summary.click()
    assert phone.evaluate("document.activeElement.tagName") == "SUMMARY"
    with writing():
        dev = make_attendee(event, "Dev Rao", interests=["marathons"])
        request_connection(dev.attendance, find_attendance_by_badge(token))
        db.session.commit()
    expect(phone.locator("#live .requests")).to_contain_text(
        "Dev Rao wants to connect", timeout=LIVE_UPDATE_TIMEOUT_MS
    )


def _gap(first, second) -> float:
    """Return the space between two elements' boxes on screen (negative if they overlap)."""
    one, two = first.bounding_box(), second.bounding_box()
    across = max(two["x"] - (one["x"] + one["width"]), one["x"] - (two["x"] + two["width"]))
    down = max(two["y"] - (one["y"] + one["height"]), one["y"] - (two["y"] + two["height"]))
    return max(across, down)


def test_blocking_a_request_takes_a_second_tap(live_server, make_event, make_attendee, new_phone):
    """Accept and Decline stand apart, never touching, however long the name; Block, which
    cannot be undone from the badge, is behind "Don't want to hear from <name>?", so a thumb
    aiming at Accept never blocks anyone."""
    event = make_event(name="Sunday brunch")
    phone = new_phone(viewport={"width": 360, "height": 740})
    token = check_in_at(phone, live_server, event, ANA)
    db.session.rollback()
    with writing():
        for name in ("Dev Rao", "Amira Haddad-Wolfenden"):
            asker = make_attendee(event, name, interests=["marathons"])
            request_connection(asker.attendance, find_attendance_by_badge(token))
        db.session.commit()
    phone.reload()
    for name in ("Dev Rao", "Amira Haddad-Wolfenden"):
        request = phone.locator("#live .requests li").filter(has_text=f"{name} wants to connect")
        accept, decline = button(request, f"Accept {name}"), button(request, f"Decline {name}")
        expect(accept).to_be_visible()
        expect(decline).to_be_visible()
        assert _gap(accept, decline) >= 12, name
        expect(button(request, f"Block {name}")).to_be_hidden()
    request = phone.locator("#live .requests li").filter(has_text="Dev Rao wants to connect")
    request.locator("summary", has_text="Don't want to hear from Dev Rao?").click()
    expect(request).to_contain_text("Blocking hides you from each other here and at future events.")
    button(request, "Block Dev Rao").click()
    expect(phone.locator("#live")).not_to_contain_text("Dev Rao")
    assert_no_axe_violations(phone, "badge page after blocking a request")


# ---------------------------------------------------------------- small screens


LONG_NAME = "Oluwaseun Wolfeschlegelsteinhausenbergerdorff"


def test_a_name_of_one_long_word_never_widens_a_small_phone(live_server, make_event, new_phone):
    """At 360 px, a long name wraps on its badge, its card and the people to meet."""
    event = make_event(name="Internationale Konferenz für Open-Source-Kartografie")
    small = {"viewport": {"width": 360, "height": 740}}
    long_phone, ana_phone = new_phone(**small), new_phone(**small)
    long_token = check_in_at(
        long_phone,
        live_server,
        event,
        {"Name": LONG_NAME, "Email": "o@example.org", "Interests": "marathons"},
    )
    ana_token = check_in_at(ana_phone, live_server, event, ANA)
    pages = {
        "the long name's own badge": (long_phone, f"/b/{long_token}"),
        "Ana's badge, suggesting the long name": (ana_phone, f"/b/{ana_token}"),
        "the long name's card, as Ana sees it": (ana_phone, f"/b/{long_token}"),
    }
    for what, (phone, path) in pages.items():
        phone.goto(f"{live_server.url}{path}")
        expect(phone.get_by_text(LONG_NAME).first).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width == 360, what
