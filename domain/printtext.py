"""Lines of text in any script for printed PDFs: a font for each character, shaped, in order.

ReportLab's own fonts have Latin glyphs only, and no one font has every script. So each
character takes the first font of a list that has a glyph for it (read from the font's own
character map), each run of one font and one direction is shaped by HarfBuzz (Arabic letters
joined, Devanagari conjuncts formed), and the runs are put in reading order by the Unicode
bidirectional algorithm, the paragraph's direction taken from its first strong letter (as
`dir="auto"` does in a browser). Direction controls are taken out first, so what someone
typed cannot reorder a badge. A character no font has prints as that font's empty box, and
the rest of the text still prints.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from bidi import algorithm as bidi
from reportlab.lib.abag import ABag
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont, shapeFragWord
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from domain.profile import without_direction_controls

log = logging.getLogger(__name__)

NOTO = "/usr/share/fonts/truetype/noto"
# Debian's fonts-noto-core, fonts-wqy-microhei (Chinese, Japanese and Korean in TrueType
# outlines, which ReportLab can embed; Noto CJK's are PostScript outlines, which it can't)
# and fonts-symbola (emoji, in black and white); DejaVu stands in where Noto isn't installed.
SCRIPTS = ("Arabic", "Hebrew", "Devanagari", "Bengali", "Tamil", "Telugu", "Gujarati")
SCRIPTS += ("Gurmukhi", "Kannada", "Malayalam", "Sinhala", "Thai", "Lao", "Khmer", "Myanmar")
SCRIPTS += ("Georgian", "Armenian", "Ethiopic")
REGULAR_FONTS = (
    f"{NOTO}/NotoSans-Regular.ttf",
    *(f"{NOTO}/NotoSans{script}-Regular.ttf" for script in SCRIPTS),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    f"{NOTO}/NotoSansSymbols-Regular.ttf",
    f"{NOTO}/NotoSansSymbols2-Regular.ttf",
    "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
)
BOLD_FONTS = (
    f"{NOTO}/NotoSans-Bold.ttf",
    *(f"{NOTO}/NotoSans{script}-Bold.ttf" for script in SCRIPTS),
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)
# ReportLab's own Bitstream Vera, always there: Latin still prints with no font installed.
LAST_RESORT = "Vera.ttf"

# Invisible characters that shape with the one before them, whichever font has them: joiners
# and variation selectors (HarfBuzz hides them where the font lacks them).
JOINING = {"\u200c", "\u200d"} | {chr(c) for c in range(0xFE00, 0xFE10)}
# Kerning and the usual ligatures, not the discretionary ones (which add vowel marks to some
# Arabic names).
FEATURES = {"kern": True, "liga": True}


@dataclass(frozen=True)
class Run:
    """Glyphs of one font, shaped, ready to draw left to right."""

    font: str
    glyphs: str
    em_width: float  # in thousandths of the type size


@dataclass(frozen=True)
class Line:
    """A line of text as runs in the order they are drawn, left to right."""

    runs: tuple[Run, ...]
    rtl: bool

    def width(self, size: float) -> float:
        """Return the line's width in points at a type size."""
        return sum(run.em_width for run in self.runs) * size / 1000


class FontList:
    """Fonts to take glyphs from, in order of preference; each is read when first needed."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = (*(path for path in paths if os.path.isfile(path)), LAST_RESORT)

    def line(self, text: str) -> Line:
        """Return the text as one shaped line, direction controls taken out."""
        return _line(without_direction_controls(text), self.paths)

    def fit(self, text: str, size: float, width: float) -> Line:
        """Return the text as a line that fits, cut with an ellipsis at its end if need be."""
        line = self.line(text)
        if line.width(size) <= width:
            return line
        for end in range(len(text) - 1, -1, -1):
            if can_break(text, end):
                line = self.line(text[:end].rstrip() + "\u2026")
                if line.width(size) <= width:
                    return line
        return self.line("\u2026")

    def longest_start(self, text: str, size: float, width: float) -> str:
        """Return the longest start of the text that fits, ending at a space if one can."""
        fitting = [
            end
            for end in range(1, len(text) + 1)
            if can_break(text, end) and self.line(text[:end]).width(size) <= width
        ]
        if not fitting:
            return text[:1]
        # Best before a space, else after a hyphen or an address's dot or @, else anywhere.
        at_spaces = [end for end in fitting if end < len(text) and text[end].isspace()]
        at_marks = [end for end in fitting if text[end - 1] in "-‐@._/"]
        return text[: (at_spaces or at_marks or fitting)[-1]]


def can_break(text: str, end: int) -> bool:
    """Say whether a line may end before text[end]: never between a letter and its marks,
    nor either side of a joiner."""
    if end >= len(text):
        return True
    mark = _follows(text[end]) and not text[end].isspace()
    return not (mark or text[end] in JOINING or text[end - 1] in JOINING)


class _Text(PDFTextObject):
    """A PDF text object that keeps count of every baseline shift it writes.

    Marks set above or below their letter are drawn with the baseline shifted. ReportLab
    (5.1) writes two shifts in a row as one but forgets the second, so after a letter with
    stacked accents the shift is never undone: the rest of the line, and every line drawn
    after it on the page, would print raised, over the badge above and its QR code.
    """

    def setRise(self, rise: float) -> None:
        """Shift the baseline to `rise`, remembering it even when it replaces the last shift."""
        replacing = bool(self._code) and self._code[-1].endswith(" Ts")
        super().setRise(rise)
        if replacing:
            self._rise = rise
            self._y -= rise


def draw_line(canvas: Canvas, line: Line, x: float, y: float, size: float) -> None:
    """Draw a line with its left end at (x, y)."""
    for run in line.runs:
        canvas.setFont(run.font, size)
        text = _Text(canvas, x, y)
        text.textOut(run.glyphs)
        canvas.drawText(text)
        x += run.em_width * size / 1000


def _font_for(paths: tuple[str, ...], char: str) -> str:
    """Return the registered name of the first font with a glyph for the character."""
    first = None
    for path in paths:
        font = _font(path)
        if font is None:
            continue
        first = first or font
        if ord(char) in font.face.charToGlyph:
            return font.fontName
    return (first or _font(LAST_RESORT)).fontName


@cache
def _font(path: str) -> TTFont | None:
    """Return a font file read and registered with ReportLab, or None if it can't be used."""
    name = f"Print{len(pdfmetrics.getRegisteredFontNames())}-{os.path.basename(path)}"
    try:
        font = TTFont(name, path)
    except (TTFError, OSError) as error:
        log.warning("Badge font %s can't be used: %s", path, error)
        return None
    pdfmetrics.registerFont(font)
    return font


@lru_cache(maxsize=4096)
def _line(text: str, paths: tuple[str, ...]) -> Line:
    levels, base = _levels(text)
    chosen: list[str] = []
    for char in text:
        previous = chosen[-1] if chosen else None
        if previous and (char in JOINING or _has(previous, char) and _follows(char)):
            chosen.append(previous)  # marks and spaces keep the run they are in whole
        else:
            chosen.append(_font_for(paths, char))
    segments: list[tuple[int, str, str]] = []  # level, font, logical text
    for char, level, font in zip(text, levels, chosen, strict=True):
        if segments and segments[-1][:2] == (level, font):
            segments[-1] = (level, font, segments[-1][2] + char)
        else:
            segments.append((level, font, char))
    runs = [_shape(part, font) for _, font, part in segments]
    return Line(tuple(_visual_order(runs, [level for level, _, _ in segments])), base == 1)


def _has(font: str, char: str) -> bool:
    return ord(char) in pdfmetrics.getFont(font).face.charToGlyph


def _follows(char: str) -> bool:
    """Say whether a character goes with the one before: a space, a mark or a skin tone."""
    mark = unicodedata.category(char).startswith("M")
    return char.isspace() or mark or "\U0001f3fb" <= char <= "\U0001f3ff"


def _shape(text: str, font: str) -> Run:
    word = [0, (ABag(fontName=font, fontSize=1000), text)]
    glyphs = shapeFragWord(word, features=FEATURES, force=True)[1][1]
    em_width = sum(glyph.x_advance for glyph in glyphs.__shapeData__)
    return Run(font, glyphs, em_width)


def _levels(text: str) -> tuple[list[int], int]:
    """Return each character's embedding level and the paragraph's (0 left to right)."""
    storage = bidi.get_empty_storage()
    base = bidi.get_base_level(text)
    storage["base_level"] = base
    storage["base_dir"] = ("L", "R")[base]
    storage["chars"] = [
        {"ch": char, "level": base, "type": t, "orig": t, "index": index}
        for index, char in enumerate(text)
        # A character newer than this Python's tables (a new emoji) has no class: as the
        # bidi algorithm says of unassigned ones, it runs left to right.
        for t in [unicodedata.bidirectional(char) or "L"]
    ]
    bidi.explicit_embed_and_overrides(storage)
    bidi.resolve_weak_types(storage, False)
    bidi.resolve_neutral_types(storage, False)
    bidi.resolve_implicit_levels(storage, False)
    levels = [base] * len(text)
    known = [False] * len(text)
    for char in storage["chars"]:
        levels[char["index"]] = char["level"]
        known[char["index"]] = True
    # Characters the algorithm sets aside (joiners) take the level of the one before.
    for index in range(1, len(text)):
        if not known[index]:
            levels[index] = levels[index - 1]
    return levels, base


def _visual_order(runs: list[Run], levels: list[int]) -> list[Run]:
    """Reverse each stretch of runs at a level or above, highest level first (rule L2)."""
    order = list(range(len(runs)))
    if not levels:
        return []
    lowest_odd = min(level for level in levels) | 1
    for level in range(max(levels), lowest_odd - 1, -1):
        start = None
        for position in range(len(order) + 1):
            inside = position < len(order) and levels[order[position]] >= level
            if inside and start is None:
                start = position
            elif not inside and start is not None:
                order[start:position] = reversed(order[start:position])
                start = None
    return [runs[index] for index in order]
