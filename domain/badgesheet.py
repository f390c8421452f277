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
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import selectinload

from domain.attendees import organiser_card
from domain.db import db
from domain.limits import BADGE_INTERESTS, BADGES_PER_SHEET
from domain.models import Attendance, Event
from domain.qr import qr_modules
from domain.tokens import derive_token, hash_token

PAPERS = {"a4": A4, "letter": LETTER}
COLUMNS, ROWS = 2, BADGES_PER_SHEET // 2
MARGIN = 10 * mm
FONT, BOLD = "RapportSans", "RapportSans-Bold"


@dataclass(frozen=True)
class PrintedBadge:
    """One name badge: the name, up to three interests the person shows everyone, and the
    token its QR holds."""

    name: str
    interests: list[str]
    token: str


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
        badges.append(PrintedBadge(card.name, card.interests[:BADGE_INTERESTS], token))
    db.session.flush()
    return sorted(badges, key=lambda badge: (badge.name.casefold(), badge.token))


def sheets(badges: list[PrintedBadge]) -> list[list[PrintedBadge]]:
    """Split badges into sheets of eight."""
    return [badges[i : i + BADGES_PER_SHEET] for i in range(0, len(badges), BADGES_PER_SHEET)]


def badges_pdf(
    event_name: str, badges: list[PrintedBadge], url_of: Callable[[str], str], paper: str
) -> bytes:
    """Return a PDF of name badges, eight to a sheet of A4 or US Letter, with cut lines."""
    _register_fonts()
    width, height = PAPERS[paper]
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(width, height), pageCompression=1)
    canvas.setTitle(f"Name badges: {event_name}")
    cell_w = (width - 2 * MARGIN) / COLUMNS
    cell_h = (height - 2 * MARGIN) / ROWS
    for sheet in sheets(badges) or [[]]:
        _cut_lines(canvas, width, height, cell_w, cell_h)
        for index, badge in enumerate(sheet):
            column, row = index % COLUMNS, index // COLUMNS
            x = MARGIN + column * cell_w
            y = height - MARGIN - (row + 1) * cell_h
            _draw_badge(canvas, event_name, badge, url_of(badge.token), x, y, cell_w, cell_h)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _register_fonts() -> None:
    # ReportLab's own Bitstream Vera: embedded, so a name prints the same on every printer.
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
        pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))


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
    event_name: str,
    badge: PrintedBadge,
    url: str,
    x: float,
    y: float,
    w: float,
    h: float,
) -> None:
    pad = 5 * mm
    text_w = w - 2 * pad
    canvas.setFillGray(0.35)
    canvas.setFont(FONT, 9)
    top = y + h - pad - 9
    canvas.drawString(x + pad, top, _fit(event_name, FONT, 9, text_w))
    # The name across the whole badge, as large as fits; below it the interests and the QR.
    size = _name_size(badge.name, text_w)
    name_y = top - 4 * mm - size
    canvas.setFillGray(0)
    canvas.setFont(BOLD, size)
    canvas.drawString(x + pad, name_y, _fit(badge.name, BOLD, size, text_w))
    qr_size = min(name_y - 3 * mm - (y + pad), 40 * mm)
    canvas.setFont(FONT, 12)
    line_y = name_y - 3 * mm - 12
    for interest in badge.interests:
        canvas.drawString(x + pad, line_y, _fit(interest, FONT, 12, text_w - qr_size - pad))
        line_y -= 16
    _draw_qr(canvas, url, x + w - pad - qr_size, y + pad, qr_size)


def _name_size(name: str, width: float) -> float:
    """The largest type, up to 30 points, in which the name fits its line."""
    size = 30.0
    while size > 14 and pdfmetrics.stringWidth(name, BOLD, size) > width:
        size -= 1
    return size


def _fit(text: str, font: str, size: float, width: float) -> str:
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text + "\u2026"


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
