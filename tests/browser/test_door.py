"""The door desk in a real browser: door staff on a phone check someone in by hand and print
their badge, the desk's scanner reads a badge through a fake camera, and a laptop prints
everyone's badges with the page's own print rules."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pypdfium2
from PIL import Image
from playwright.sync_api import expect

from domain.checkin import find_attendance_by_badge
from tests.browser.support import (
    ANA,
    CHROMIUM,
    PHONE,
    Traffic,
    assert_no_axe_violations,
    button,
    camera_frame,
    check_in_at,
    decode_qr,
    label,
    log_in,
    qr_png,
    write_y4m,
)
from tests.conftest import qr_codes

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCAN_TIMEOUT_MS = 15_000
DORA = "dora@example.org"  # door staff


def badge_owner_name(server, url: str) -> str:
    """Return the name of the person whose badge a QR code's link opens."""
    assert url.startswith(f"{server.url}/b/"), url
    with server.app.app_context():
        attendance = find_attendance_by_badge(url.rsplit("/", 1)[1])
        assert attendance is not None, url
        return attendance.person.name


def pdf_pages(pdf: bytes) -> list[tuple[tuple[int, int], list[str]]]:
    """Return each page's size in points and the QR codes read off it."""
    pages = []
    for page in pypdfium2.PdfDocument(pdf):
        size = tuple(round(v) for v in page.get_size())
        codes = [r.text for r in qr_codes(page.render(scale=2).to_pil())]
        pages.append((size, codes))
    return pages


def test_door_staff_on_a_phone_check_someone_in_and_print_their_badge(
    live_server, make_event, make_organiser, make_member, new_phone
):
    event = make_event(name="Sunday brunch", venue="The corner café")
    make_member(event, "door", make_organiser(DORA, name="Dora"))
    phone = new_phone()
    log_in(phone, live_server, DORA)
    expect(phone.locator("main")).to_contain_text("you are door staff")
    phone.get_by_role("link", name="Door desk").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Door desk: Sunday brunch")
    with Traffic(phone) as desk:
        phone.reload()
    expect(button(phone, "Scan a badge")).to_be_visible()  # its script ran
    desk.check(live_server, "door desk", statuses=frozenset({200}))
    assert not any(r.url.endswith("jsQR.js") for r in desk.requests)
    assert_no_axe_violations(phone, "door desk")

    label(phone, "Name").fill("Eli Moss")
    label(phone, "Email (optional)").fill("eli@example.org")
    label(phone, "Interests").fill("jazz, chess")
    label(phone, "They agree to show their interests to the people they meet").check()
    button(phone, "Check in").click()
    expect(phone.get_by_role("heading", name="Eli Moss is checked in")).to_be_visible()
    expect(phone.locator(".door-count")).to_contain_text("1 checked in")
    assert_no_axe_violations(phone, "door desk after a check-in")
    if UPDATE:
        phone.screenshot(path=SCREENSHOT_DIR / "door.png", full_page=True)

    button(phone, "Print their badge").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("Name badges: Sunday brunch")
    expect(phone.locator(".name-badge")).to_have_count(1)
    expect(phone.locator(".badge-name")).to_have_text("Eli Moss")
    expect(phone.locator(".badge-interests li")).to_have_text(["chess", "jazz"])
    assert_no_axe_violations(phone, "badge sheet")
    [url] = decode_qr(qr_png(phone))
    assert badge_owner_name(live_server, url) == "Eli Moss"

    # Anyone who scans the printed badge sees Eli's card.
    stranger = new_phone()
    stranger.goto(url)
    expect(stranger.get_by_role("heading", level=1)).to_have_text("Eli Moss")


def test_the_door_scanner_reads_a_badge_through_the_camera(
    live_server, make_event, make_organiser, make_member, new_phone, playwright_instance, tmp_path
):
    event = make_event(name="Night market walk")
    make_member(event, "door", make_organiser(DORA))
    ana_phone = new_phone()
    check_in_at(ana_phone, live_server, event, ANA)
    frame = camera_frame(qr_png(ana_phone))
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
        desk = context.new_page()
        log_in(desk, live_server, DORA)
        desk.goto(f"{live_server.url}/organiser/events/{event.id}/door")
        button(desk, "Scan a badge").click()
        answer = desk.locator("#scanned")
        expect(answer.get_by_role("heading", name="Ana Lima")).to_be_visible(
            timeout=SCAN_TIMEOUT_MS
        )
        expect(answer).to_contain_text("First time")
        expect(answer.locator(".tag")).to_have_text(["marathons", "sourdough"])
        expect(button(desk, "Print their badge")).to_be_visible()
        assert_no_axe_violations(desk, "door desk with a scanned badge")
        context.close()
    finally:
        browser.close()


def test_a_laptop_prints_everyones_badges_eight_to_a_sheet(
    live_server, make_event, make_organiser, make_attendee, laptop
):
    owner = make_organiser("maya@example.org", name="Maya")
    event = make_event(owner, name="Sunday brunch")
    names = ["Ana Lima", "Ben Okafor", "Cleo Park", "Dev Rao", "Eli Moss", "Fay Wong"]
    names += ["Gus Hale", "Hana Ito", "Ivo Petrov"]
    interests = [["marathons", "sourdough"], ["travel in asia"], ["climbing", "jazz", "chess"]]
    for number, name in enumerate(names):
        make_attendee(event, name, interests=interests[number % 3])
    log_in(laptop, live_server, "maya@example.org")
    laptop.goto(f"{live_server.url}/organiser/events/{event.id}/door")
    label(laptop, "Paper").select_option(label="US Letter")
    button(laptop, "Print badges").click()
    expect(laptop.locator(".sheet")).to_have_count(2)
    expect(laptop.locator(".sheet").first.locator(".name-badge")).to_have_count(8)
    assert_no_axe_violations(laptop, "badge sheets")
    if UPDATE:
        laptop.locator(".sheet").first.screenshot(path=SCREENSHOT_DIR / "badges.png")

    # Printed with the page's own print rules: one US Letter page a sheet, every QR whole.
    pages = pdf_pages(laptop.pdf(prefer_css_page_size=True, print_background=True))
    assert [(size, len(codes)) for size, codes in pages] == [((612, 792), 8), ((612, 792), 1)]
    printed = sorted(badge_owner_name(live_server, url) for _, codes in pages for url in codes)
    assert printed == sorted(names)


def test_door_documentation_screenshots():
    """The README's pictures of the door desk and a badge sheet (retaken with
    UPDATE_SCREENSHOTS=1 by the tests above): whole PNGs, the sheet's codes scan."""
    for name in ("door.png", "badges.png"):
        path = SCREENSHOT_DIR / name
        assert path.is_file(), f"{path} is missing: run `make screenshots`"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, path
        with Image.open(path) as picture:
            picture.load()
    sheet = Image.open(io.BytesIO((SCREENSHOT_DIR / "badges.png").read_bytes()))
    assert len(qr_codes(sheet)) == 8


def test_the_badge_sheet_fits_a_small_phone(
    live_server, browser, make_event, make_organiser, make_attendee
):
    owner = make_organiser("maya@example.org", name="Maya")
    event = make_event(owner, name="Sunday brunch")
    make_attendee(event, "Eli Moss", interests=["jazz"])
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        log_in(page, live_server, "maya@example.org")
        page.goto(f"{live_server.url}/organiser/events/{event.id}/door")
        for paper in ("A4", "US Letter"):
            label(page, "Paper").select_option(label=paper)
            button(page, "Print badges").click()
            expect(page.locator(".name-badge")).to_have_count(1)
            # The whole sheet shows, smaller: nothing scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") == 360, paper
            page.go_back()
    finally:
        context.close()
