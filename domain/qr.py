"""QR codes as inline SVG with a white background, so they scan on dark pages too."""

from __future__ import annotations

import functools
import io
import itertools
import re
from html import escape
from itertools import groupby

import qrcode
from qrcode import util
from qrcode.constants import ERROR_CORRECT_M

BORDER = 4  # modules of quiet zone around the code, as the QR standard asks


class _QRCode(qrcode.QRCode):
    """qrcode's QRCode, placing the data bits by a table made once per version.

    It places them once for each of the eight masks it tries, then once more: walking the
    matrix in Python each time was half the cost of a badge's QR code. Same modules.
    """

    _bits: tuple[list[int], list[bool]] | None = None

    def map_data(self, data: list[int], mask_pattern: int) -> None:
        cells, flips = _placement(self.version, self.modules)
        if self._bits is None or self._bits[0] is not data:
            # Each bit of the data, most significant first; light modules after its end.
            bits = [(data[i >> 3] >> (7 - (i & 7))) & 1 == 1 for i in range(8 * len(data))]
            self._bits = (data, (bits + [False] * len(cells))[: len(cells)])
        modules = self.modules
        for (row, col), dark, flip in zip(cells, self._bits[1], flips[mask_pattern], strict=True):
            modules[row][col] = dark != flip

    def best_mask_pattern(self) -> int:
        """Return the mask qrcode picks, scoring each matrix as util.lost_point does."""
        scores = []
        for pattern in range(8):
            self.makeImpl(True, pattern)
            scores.append(lost_points(self.modules))
        return scores.index(min(scores))


_Placement = tuple[list[tuple[int, int]], list[list[bool]]]
_placements: dict[int, _Placement] = {}


def _placement(version: int, modules: list[list[bool | None]]) -> _Placement:
    """Return the cells data fills in a version's matrix, in order, and which of them each
    mask flips: the walk of qrcode's own map_data, up and down two columns at a time.

    Made from the first matrix of a version met, whose empty cells are the data's: the
    fixed patterns and format cells are the same for every mask.
    """
    if version not in _placements:
        _placements[version] = _walk(modules)
    return _placements[version]


def _walk(modules: list[list[bool | None]]) -> _Placement:
    count = len(modules)
    cells = []
    row, step = count - 1, -1
    for right in range(count - 1, 0, -2):
        col = right - 1 if right <= 6 else right
        while True:
            cells.extend((row, c) for c in (col, col - 1) if modules[row][c] is None)
            row += step
            if row < 0 or count <= row:
                row -= step
                step = -step
                break
    flips = [[mask(row, col) for row, col in cells] for mask in map(util.mask_func, range(8))]
    return cells, flips


_RUN = re.compile(rb"\x00{5,}|\x01{5,}")
_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_FINDER_LIKE = (bytes([1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0]), bytes([0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1]))


def lost_points(modules: list[list[bool]]) -> int:
    """Return qrcode's util.lost_point of a matrix (its ISO 18004 penalty), computed on
    bytes and integers: rows and columns of five or more alike, 2x2 blocks alike,
    finder-like patterns, and the dark modules' departure from half."""
    count = len(modules)
    rows = [bytes(row) for row in modules]
    lines = rows + [bytes(column) for column in zip(*modules, strict=True)]
    points = sum(len(run) - 2 for line in lines for run in _RUN.findall(line))
    # 2x2 blocks: with each row as an integer, a block is alike where neither row changes
    # from one column to the next and the two rows agree.
    numbers = [int(row.translate(_DIGITS), 2) for row in rows]
    inner = (1 << (count - 1)) - 1
    for top, bottom in itertools.pairwise(numbers):
        differ = top ^ bottom
        points += 3 * (~(differ | differ >> 1 | top ^ top >> 1) & inner).bit_count()
    for line in lines:
        for pattern in _FINDER_LIKE:
            found = line.find(pattern)
            while found != -1:
                points += 40
                found = line.find(pattern, found + 1)
    dark = sum(map(sum, rows))
    return points + int(abs(dark / count**2 * 100 - 50) / 5) * 10


def _matrix(url: str, border: int) -> list[list[bool]]:
    code = _QRCode(error_correction=ERROR_CORRECT_M, border=border)
    code.add_data(url)
    code.make(fit=True)
    return code.get_matrix()


def qr_modules(url: str) -> list[list[bool]]:
    """Return the dark (True) and light modules of `url`'s QR code, quiet zone included."""
    return _matrix(url, BORDER)


@functools.lru_cache(maxsize=4096)
def qr_svg(url: str, label: str = "QR code") -> str:
    """Return an <svg class="qr"> element encoding `url`; cached per URL and label."""
    matrix = _matrix(url, BORDER)
    size = len(matrix)
    # Each row's adjacent dark modules are drawn as one run: the same picture in about a
    # third of the bytes of one square per module, which keeps the badge page small.
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        for dark, modules in groupby(row):
            width = len(list(modules))
            if dark:
                runs.append(f"M{x} {y}h{width}v1h-{width}z")
            x += width
    return (
        f'<svg class="qr" role="img" aria-label="{escape(label)}" width="{size}mm" '
        f'height="{size}mm" viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg">'
        '<rect fill="#fff" width="100%" height="100%"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )


def qr_text(url: str) -> str:
    """Return `url` as a QR code drawn with text blocks, for a terminal."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    code.add_data(url)
    code.make(fit=True)
    out = io.StringIO()
    # Inverted, so the code is dark-on-light on a terminal with a dark background.
    code.print_ascii(out=out, invert=True)
    *rows, last = out.getvalue().rstrip("\n").split("\n")
    # A code has an odd number of rows, so the last line pairs the bottom border with a row
    # past the code, which the library draws dark; that row is quiet zone too.
    return "\n".join([*rows, last.replace("\u2580", "\u2588")])
