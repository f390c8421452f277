"""Printed name badges: who gets one, the token their QR holds, and sheets of 8 as a PDF.

A badge's QR on a phone holds a token derived from that phone's secret, which the server
never keeps, so it cannot be printed; and printing must not take the badge away from the
phone. A printed badge therefore carries a token of its own, derived from the app's
secret and the check-in, of which only the hash is stored: printing again gives the same
QR, scanning it opens the person's card for anyone (as a phone badge does), and it never
makes a phone the badge's owner. Only the event's owner, co-organisers and door staff can
print (domain/team.py, Action.PRINT_BADGES).
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import selectinload

from domain.attendees import organiser_card
from domain.db import db
from domain.limits import BADGE_INTERESTS, BADGES_PER_SHEET
from domain.models import Attendance, Event
from domain.printtext import (
    BOLD_FONTS,
    REGULAR_FONTS,
    FontList,
    Line,
    draw_line,
)
from domain.profile import without_direction_controls
from domain.qr import qr_modules
from domain.tokens import derive_token, hash_token

PAPERS = {"a4": A4, "letter": LETTER}
COLUMNS, ROWS = 2, BADGES_PER_SHEET // 2
MARGIN = 10 * mm
NAME_SIZE, ONE_LINE_MIN, TWO_LINES_MAX, NAME_MIN = 30, 16, 22, 10  # type sizes, points
SHORT_NAME, LONG_NAME = 12, 24  # characters, on the HTML sheet: beyond them smaller type
LEADING = 1.2  # line height, in type sizes
DESCENT = 0.3  # room below a name's last baseline for letters that go below it


@dataclass(frozen=True)
class PrintedBadge:
    """One name badge: the name, up to three interests the person shows everyone, and the
    token its QR holds."""

    name: str
    interests: list[str]
    token: str

    @property
    def name_size(self) -> str:
        """Say how long the name is on a badge: short, long or longer (wide letters count twice)."""
        length = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in self.name)
        return "short" if length <= SHORT_NAME else "long" if length <= LONG_NAME else "longer"


def printed_token(secret: str, attendance: Attendance) -> str:
    """Return the token a printed badge of a check-in carries; the same on every print."""
    stamp = int(attendance.checked_in_at.timestamp() * 1_000_000)
    return derive_token(secret, f"printed-badge:{attendance.id}:{attendance.person_id}:{stamp}")


def print_badges(event: Event, secret: str, attendance_id: int | None = None) -> list[PrintedBadge]:
    """Return the badges to print for one person or everyone checked in, names in order.

    Their printed tokens start working now (the caller commits). An id of someone not at
    this event gives no badge.
    """
    statement = (
        sa.select(Attendance)
        .where(Attendance.event_id == event.id)
        .options(selectinload(Attendance.person), selectinload(Attendance.interests))
    )
    if attendance_id is not None:
        statement = statement.where(Attendance.id == attendance_id)
    badges = []
    for attendance in db.session.scalars(statement):
        token = printed_token(secret, attendance)
        if attendance.printed_token_hash != hash_token(token):
            attendance.printed_token_hash = hash_token(token)
        card = organiser_card(attendance)
        # Rows from before names were cleaned at input may hold direction controls.
        name = without_direction_controls(card.name)
        interests = [without_direction_controls(i) for i in card.interests[:BADGE_INTERESTS]]
        badges.append(PrintedBadge(name, interests, token))
    db.session.flush()
    return sorted(badges, key=lambda badge: (badge.name.casefold(), badge.token))


def sheets(badges: list[PrintedBadge]) -> list[list[PrintedBadge]]:
    """Split badges into sheets of eight."""
    return [badges[i : i + BADGES_PER_SHEET] for i in range(0, len(badges), BADGES_PER_SHEET)]


def badges_pdf(
    event_name: str,
    badges: list[PrintedBadge],
    url_of: Callable[[str], str],
    paper: str,
    fonts: Sequence[str] = REGULAR_FONTS,
    bold_fonts: Sequence[str] = BOLD_FONTS,
) -> bytes:
    """Return a PDF of name badges, eight to a sheet of A4 or US Letter, with cut lines.

    Text takes its glyphs from the first of the font files (bold ones for the name) that
    has them, so names print in any script those fonts cover.
    """
    type_ = Type(FontList(fonts), FontList([*bold_fonts, *fonts]))
    width, height = PAPERS[paper]
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(width, height), pageCompression=1)
    canvas.setTitle(f"Name badges: {without_direction_controls(event_name)}")
    cell_w = (width - 2 * MARGIN) / COLUMNS
    cell_h = (height - 2 * MARGIN) / ROWS
    for sheet in sheets(badges) or [[]]:
        _cut_lines(canvas, width, height, cell_w, cell_h)
        for index, badge in enumerate(sheet):
            column, row = index % COLUMNS, index // COLUMNS
            x = MARGIN + column * cell_w
            y = height - MARGIN - (row + 1) * cell_h
            box = (x, y, cell_w, cell_h)
            _draw_badge(canvas, type_, event_name, badge, url_of(badge.token), box)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


@dataclass(frozen=True)
class Type:
    """The fonts a sheet is set in: regular for the event and interests, bold for names."""

    regular: FontList
    bold: FontList


def _name_lines(name: str, fonts: FontList, width: float) -> tuple[float, list[Line]]:
    """Return the largest type size and lines, one or at most two, in which a name fits.

    One line from 30 points down to 16, else two lines from 22 points down to 10; a name
    still too long is cut with an ellipsis at the end of its second line.
    """
    line = fonts.line(name)
    one_line = min(NAME_SIZE, width / line.width(1)) if line.width(1) else NAME_SIZE
    if one_line >= ONE_LINE_MIN:
        return int(one_line * 2) / 2, [line]
    for size in range(TWO_LINES_MAX, NAME_MIN - 1, -1):
        first = fonts.longest_start(name, size, width)
        rest = name[len(first) :].strip()
        if fonts.line(rest).width(size) <= width:
            return size, [fonts.line(first.strip()), fonts.line(rest)]
    return NAME_MIN, [fonts.line(first.strip()), fonts.fit(rest, NAME_MIN, width)]


def _cut_lines(canvas: Canvas, width: float, height: float, cell_w: float, cell_h: float) -> None:
    canvas.saveState()
    canvas.setStrokeGray(0.75)
    canvas.setDash(2, 3)
    canvas.setLineWidth(0.5)
    for column in range(COLUMNS + 1):
        x = MARGIN + column * cell_w
        canvas.line(x, MARGIN, x, height - MARGIN)
    for row in range(ROWS + 1):
        y = MARGIN + row * cell_h
        canvas.line(MARGIN, y, width - MARGIN, y)
    canvas.restoreState()


def _draw_badge(
    canvas: Canvas,
    type_: Type,
    event_name: str,
    badge: PrintedBadge,
    url: str,
    box: tuple[float, float, float, float],
) -> None:
    x, y, w, h = box
    pad = 5 * mm
    text_w = w - 2 * pad
    canvas.setFillGray(0.35)
    top = y + h - pad - 9
    _draw(canvas, type_.regular.fit(event_name, 9, text_w), x + pad, top, 9, text_w)
    # The name across the whole badge, as large as fits; below it the interests and the QR.
    size, lines = _name_lines(badge.name, type_.bold, text_w)
    canvas.setFillGray(0)
    name_y = top - 4 * mm - size
    for line in lines:
        _draw(canvas, line, x + pad, name_y, size, text_w)
        name_y -= size * LEADING
    name_y += size * LEADING
    qr_size = min(name_y - size * DESCENT - 3 * mm - (y + pad), 40 * mm)
    line_y = name_y - size * DESCENT - 3 * mm - 12
    interests_w = text_w - qr_size - pad
    for interest in badge.interests:
        line = type_.regular.fit(interest, 12, interests_w)
        _draw(canvas, line, x + pad, line_y, 12, interests_w)
        line_y -= 16
    _draw_qr(canvas, url, x + w - pad - qr_size, y + pad, qr_size)


def _draw(canvas: Canvas, line: Line, x: float, y: float, size: float, width: float) -> None:
    """Draw a line from the left edge of its space, or from the right if it reads that way."""
    draw_line(canvas, line, x + width - line.width(size) if line.rtl else x, y, size)


def _draw_qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    modules = qr_modules(url)
    step = size / len(modules)
    canvas.saveState()
    canvas.setFillGray(1)
    canvas.rect(x, y, size, size, stroke=0, fill=1)
    canvas.setFillGray(0)
    path = canvas.beginPath()
    for row, line in enumerate(modules):
        for column, dark in enumerate(line):
            if dark:
                # Drawn a hair wide, so neighbouring modules leave no hairline gaps.
                path.rect(x + column * step, y + size - (row + 1) * step, step * 1.02, step * 1.02)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()
