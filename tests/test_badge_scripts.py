"""Printed badges in any script: the PDF draws every name and interest with real glyphs from
fonts that have them, Arabic joined and read right to left, Devanagari conjuncts formed, long
names kept inside their badge and off the QR code, direction controls taken out; every QR
still reads."""

from __future__ import annotations

import ctypes
import os
from collections import deque
from functools import lru_cache

import pypdfium2
import pypdfium2.raw as pdfium
import pytest
from reportlab.pdfbase.ttfonts import TTFontFile

from domain.badgesheet import COLUMNS, MARGIN, PAPERS, ROWS, PrintedBadge, badges_pdf
from domain.db import db, writing
from domain.models import Person
from domain.printtext import BOLD_FONTS, REGULAR_FONTS
from tests.conftest import PUBLIC_URL, login, qr_codes

SCALE = 3  # pixels a point when a page is rendered

NAMES = {
    "latin": "Zoë Ångström-Núñez",
    "greek": "Αλέξανδρος Παπαδόπουλος",
    "cyrillic": "Дмитрий Иванов",
    "arabic": "محمد عبد الله",
    "hebrew": "דוד כהן",
    "devanagari": "अक्षय क्षत्रिय",
    "thai": "สมชาย ใจดี",
    "chinese": "王小明",
    "japanese": "山田たろう",
    "korean": "김민준",
}
INTERESTS = {
    "greek": ["φιλοσοφία"],
    "arabic": ["قهوة", "شعر"],
    "hebrew": ["מוזיקה"],
    "thai": ["ดนตรี"],
    "chinese": ["书法"],
    "korean": ["등산"],
    "cyrillic": ["шахматы"],
}
LONG_NAMES = [
    "Maximiliane Alexandra Konstanze von Hohenzollern-Sigmaringen",  # 60 characters
    "Donaudampfschifffahrtsgesellschaftskapitänswitwe",
    "ana.lima.the.longest.address@conference-attendees.example.org",
    "王" * 30,
    "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
    "Ana",
]


@lru_cache
def font_file(pdf_name: str) -> TTFontFile:
    """Return the font file of a font in the PDF, by its name (a collection's adds "-0")."""
    for path in (*BOLD_FONTS, *REGULAR_FONTS):
        if os.path.isfile(path):
            font = TTFontFile(path)
            if pdf_name in (font.name.decode(), font.name.decode() + "-0"):
                return font
    raise AssertionError(f"{pdf_name} is none of the badge fonts")


def chars(page) -> list[tuple[str, str, tuple[float, float, float, float]]]:
    """Return each character on a page: the text, the font drawing it, its box in points."""
    text = page.get_textpage()
    found = []
    for index in range(text.count_chars()):
        name = ctypes.create_string_buffer(256)
        pdfium.FPDFText_GetFontInfo(text.raw, index, name, 256, None)
        char = chr(pdfium.FPDFText_GetUnicode(text.raw, index))
        if char.strip():
            found.append((char, name.value.decode(), text.get_charbox(index)))
    return found


def codes(page) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Return each QR code on a page: its text and its box in points."""
    height = page.get_size()[1]
    found = []
    for result in qr_codes(page.render(scale=SCALE).to_pil()):
        corners = [result.position.top_left, result.position.top_right]
        corners += [result.position.bottom_left, result.position.bottom_right]
        xs = [corner.x / SCALE for corner in corners]
        ys = [height - corner.y / SCALE for corner in corners]
        found.append((result.text, (min(xs), min(ys), max(xs), max(ys))))
    return found


def print_pdf(client, event, paper: str = "a4") -> pypdfium2.PdfDocument:
    response = client.post(f"/organiser/events/{event.id}/badges.pdf", data={"paper": paper})
    assert response.status_code == 200, response.text
    return pypdfium2.PdfDocument(response.data)


def private_use(char: str) -> bool:
    """Say whether a character stands for a glyph a font has no character for (a shaped form)."""
    return "\ue000" <= char <= "\uf8ff"


@pytest.fixture
def organiser_client(client, make_organiser):
    owner = make_organiser()
    login(client, owner)
    return client, owner


def test_names_and_interests_in_every_script_print_with_real_glyphs_and_qrs_still_read(
    organiser_client, make_event, make_attendee
):
    client, owner = organiser_client
    event = make_event(owner, name="Café de la Gare ☕")
    for script, name in NAMES.items():
        make_attendee(event, name, interests=INTERESTS.get(script, ["chess"]))
    document = print_pdf(client, event)
    assert len(document) == 2
    if os.environ.get("BADGE_PICTURES"):  # to look at: pictures of the pages
        for number, page in enumerate(document):
            page.render(scale=2).to_pil().save(f"{os.environ['BADGE_PICTURES']}-{number}.png")
    text = ""
    for page in document:
        for char, font, _ in chars(page):
            # Each character drawn comes from a font whose own map has it: no empty boxes.
            if not private_use(char):
                assert font_file(font).charToGlyph.get(ord(char)), (char, font)
        text += page.get_textpage().get_text_range()
    assert [len(codes(page)) for page in document] == [8, 2]
    for script, name in NAMES.items():
        if script != "devanagari":  # its conjuncts are glyphs of their own
            assert name in text, script
    for interests in INTERESTS.values():
        assert all(interest in text for interest in interests), (interests, text)


def dark_shapes(image) -> int:
    """Count the separate dark shapes in a picture (pixels touching side to side)."""
    pixels = image.convert("L").load()
    width, height = image.size
    seen = set()
    shapes = 0
    for start in ((x, y) for x in range(width) for y in range(height)):
        if start in seen or pixels[start] > 128:
            continue
        shapes += 1
        queue = deque([start])
        seen.add(start)
        while queue:
            x, y = queue.popleft()
            for near in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if near in seen or not (0 <= near[0] < width and 0 <= near[1] < height):
                    continue
                if pixels[near] <= 128:
                    seen.add(near)
                    queue.append(near)
    return shapes


def name_picture(page, name_chars):
    """Return the rendered picture of the characters' boxes on a page."""
    height = page.get_size()[1]
    left = min(box[0] for _, _, box in name_chars) - 1
    right = max(box[2] for _, _, box in name_chars) + 1
    bottom = min(box[1] for _, _, box in name_chars) - 1
    top = max(box[3] for _, _, box in name_chars) + 1
    picture = page.render(scale=SCALE).to_pil()
    return picture.crop(
        (
            int(left * SCALE),
            int((height - top) * SCALE),
            int(right * SCALE),
            int((height - bottom) * SCALE),
        )
    )


@pytest.mark.parametrize(
    ("typed", "joined"),
    [("محمد", 1), ("م ح م د", 4)],  # joined letters are one shape; apart, four
)
def test_arabic_letters_join_and_read_right_to_left(
    organiser_client, make_event, make_attendee, typed, joined
):
    client, owner = organiser_client
    event = make_event(owner, name="Supper")
    make_attendee(event, typed, interests=["chess"])
    page = print_pdf(client, event)[0]
    letters = [(c, f, box) for c, f, box in chars(page) if "\u0600" <= c <= "\u06ff"]
    assert "".join(c for c, _, _ in letters) == typed.replace(" ", "")
    # Read in order, each letter sits left of the one before: right to left.
    lefts = [box[0] for _, _, box in letters]
    assert lefts == sorted(lefts, reverse=True)
    assert dark_shapes(name_picture(page, letters)) == joined


def test_devanagari_conjuncts_are_formed(organiser_client, make_event, make_attendee):
    client, owner = organiser_client
    event = make_event(owner, name="Supper")
    make_attendee(event, "क्षमा", interests=["chess"])  # ksha: ka, virama, ssa as one letter
    page = print_pdf(client, event)[0]
    drawn = [c for c, font, _ in chars(page) if "Devanagari" in font]
    # Five characters typed, three glyphs drawn: the conjunct, ma, and the vowel sign aa.
    assert len(drawn) == 3
    assert drawn[1:] == ["म", "ा"] and private_use(drawn[0])


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def inside(box, cell) -> bool:
    return cell[0] <= box[0] and box[2] <= cell[2] and cell[1] <= box[1] and box[3] <= cell[3]


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_long_names_stay_inside_their_badge_and_off_the_qr_code(
    organiser_client, make_event, make_attendee, paper
):
    client, owner = organiser_client
    event = make_event(owner, name="Annual general meeting of the Ruritanian Philatelic Society")
    for name in LONG_NAMES:
        make_attendee(event, name, interests=["a-very-long-interest-without-spaces", "jazz"])
    page = print_pdf(client, event, paper)[0]
    if os.environ.get("BADGE_PICTURES"):
        page.render(scale=2).to_pil().save(f"{os.environ['BADGE_PICTURES']}-long-{paper}.png")
    width, height = PAPERS[paper]
    cell_w, cell_h = (width - 2 * MARGIN) / COLUMNS, (height - 2 * MARGIN) / ROWS
    cells = [
        (MARGIN + c * cell_w, height - MARGIN - (r + 1) * cell_h)
        for r in range(ROWS)
        for c in range(COLUMNS)
    ]
    cells = [(x, y, x + cell_w, y + cell_h) for x, y in cells]
    found = codes(page)
    assert len(found) == len(LONG_NAMES)
    drawn = chars(page)
    text = page.get_textpage().get_text_range()
    for name in LONG_NAMES[:3]:
        # Cut into at most two lines, the name is all there.
        assert name.replace(" ", "") in text.replace("\r\n", "").replace(" ", "")
    for char, _, box in drawn:
        assert any(inside(box, cell) for cell in cells), char  # inside its badge
        assert not any(overlaps(box, qr) for _, qr in found), char


def test_direction_controls_in_an_old_name_do_not_reorder_its_badge(
    organiser_client, make_event, make_attendee
):
    client, owner = organiser_client
    event = make_event(owner, name="Supper")
    ana = make_attendee(event, "Ana Lima", interests=["chess"])
    with writing():  # a row from before names were cleaned as they are typed
        db.session.get(Person, ana.attendance.person_id).name = "Ana \u202eLima\u2066"
        db.session.commit()
    page = print_pdf(client, event)[0]
    letters = [(c, box) for c, _, box in chars(page) if c in "AnaLim\u202e\u2066"]
    assert "".join(c for c, _ in letters) == "AnaLima"
    lefts = [box[0] for _, box in letters]
    assert lefts == sorted(lefts)  # left to right, as typed
    sheet = client.post(f"/organiser/events/{event.id}/badges").text
    assert '<h2 class="badge-name" dir="auto">Ana Lima</h2>' in sheet
    assert "\u202e" not in sheet and "\u2066" not in sheet


def test_a_letter_no_font_has_still_prints_the_rest(organiser_client, make_event, make_attendee):
    client, owner = organiser_client
    event = make_event(owner, name="Supper")
    make_attendee(event, "Ana \U00011005\U00011013", interests=["chess"])  # Brahmi
    page = print_pdf(client, event)[0]
    assert "Ana" in page.get_textpage().get_text_range()
    assert len(codes(page)) == 1
    sheet = client.post(f"/organiser/events/{event.id}/badges").text
    assert "Ana \U00011005\U00011013" in sheet  # the browser may have a font for it


def test_a_character_newer_than_the_servers_unicode_still_prints(
    organiser_client, make_event, make_attendee
):
    client, owner = organiser_client
    event = make_event(owner, name="Supper")
    # A shaking face (Unicode 15), which phones type and this Python's tables don't know yet.
    make_attendee(event, "Ana 🫨", interests=["chess 🫨"])
    page = print_pdf(client, event)[0]
    assert "Ana" in page.get_textpage().get_text_range()
    assert [text.startswith(f"{PUBLIC_URL}/b/") for text, _ in codes(page)] == [True]


def test_stacked_accents_leave_the_rest_of_the_sheet_on_its_lines(
    organiser_client, make_event, make_attendee
):
    client, owner = organiser_client

    def lines_of(first_name: str) -> list[int]:
        event = make_event(owner, name="Supper")
        make_attendee(event, f"{first_name} Lima", interests=["chess"])
        make_attendee(event, "Bea Lima", interests=["chess"])
        page = print_pdf(client, event)[0]
        assert len(codes(page)) == 2
        text, bottoms = page.get_textpage(), []
        for word in ("Lima", "chess"):
            search = text.search(word)
            while found := search.get_next():
                bottoms.append(round(text.get_charbox(found[0])[1]))
        return bottoms

    # Three accents on a letter, each set higher than the last (the most a name may carry),
    # move neither the rest of the name nor anything after it off its line.
    assert lines_of("Ana\u0301\u0301\u0301") == lines_of("Ana")


def test_without_any_of_its_fonts_a_sheet_prints_latin_names_in_reportlabs_own(app):
    badge = PrintedBadge("Zoë Lima", ["chess"], "t" * 43)
    pdf = badges_pdf("Supper", [badge], lambda token: f"{PUBLIC_URL}/b/{token}", "a4", [], [])
    page = pypdfium2.PdfDocument(pdf)[0]
    assert {font for _, font, _ in chars(page)} == {"BitstreamVeraSans-Roman"}
    assert "Zoë Lima" in page.get_textpage().get_text_range()
    assert [text for text, _ in codes(page)] == [f"{PUBLIC_URL}/b/{'t' * 43}"]


def test_badge_fonts_come_from_the_environment_as_a_path_list(app_factory):
    app = app_factory(BADGE_FONTS="/fonts/a.ttf:/fonts/b.ttc:", BADGE_BOLD_FONTS="")
    assert app.config["BADGE_FONTS"] == ["/fonts/a.ttf", "/fonts/b.ttc"]
    assert app.config["BADGE_BOLD_FONTS"] == []
