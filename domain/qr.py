"""QR codes as inline SVG with a white background, so they scan on dark pages too."""

from __future__ import annotations

import bisect
import functools
import io
import itertools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape

import qrcode
from qrcode import LUT, base, util
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError

BORDER = 4  # modules of quiet zone around the code, as the QR standard asks


class _QRCode(qrcode.QRCode):
    """qrcode's QRCode, choosing its mask and placing its data by tables made once per version.

    qrcode draws the whole matrix for each of the eight masks it tries, then once more, and
    walks it in Python each time: that was most of the cost of a badge's QR code. Here each
    try is a few operations on the matrix as one integer of a byte per module; the modules
    and the mask chosen are qrcode's own (tests/test_qr.py compares them).
    """

    _bits: tuple[list[int], bytes] | None = None

    def map_data(self, data: list[int], mask_pattern: int) -> None:
        layout = _layout_of(self)
        modules = self.modules
        for (row, col), dark, flip in zip(
            layout.cells, self._data_bits(data, layout), layout.flips[mask_pattern], strict=True
        ):
            modules[row][col] = dark != flip

    def _data_bits(self, data: list[int], layout: _Layout) -> bytes:
        """Each bit of the data (0 or 1), most significant first; light modules after its
        end."""
        if self._bits is None or self._bits[0] is not data:
            count = len(layout.cells)
            text = bin(int.from_bytes(bytes(data), "big"))[2:].zfill(8 * len(data))
            self._bits = (data, text.encode().translate(_BIT_BYTES)[:count].ljust(count, b"\0"))
        return self._bits[1]

    def best_fit(self, start: int | None = None) -> int:
        """Return (and take) the smallest version the data fits, as qrcode's best_fit does,
        its bits counted on one integer rather than bit by bit."""
        version = start or 1
        while True:
            sizes = util.mode_sizes_for_version(version)
            needed = len(_segments(self.data_list, sizes))
            fitting = bisect.bisect_left(
                util.BIT_LIMIT_TABLE[self.error_correction], needed, version
            )
            if fitting == 41:
                raise DataOverflowError
            if util.mode_sizes_for_version(fitting) is sizes:
                self.version = fitting
                return fitting
            version = fitting

    def best_mask_pattern(self) -> int:
        """Return the mask qrcode picks: the least util.lost_point of the eight matrices it
        scores (its format and version areas left light, as qrcode scores them)."""
        if self.data_cache is None:
            self.data_cache = _create_data(self.version, self.error_correction, self.data_list)
        layout = _layout_of(self)
        bits = self._data_bits(self.data_cache, layout)
        placed = [layout.place(drawing, bits) for drawing in (0, 1)]
        scores = [
            _penalty(
                *(
                    blank | (data ^ flipped)
                    for blank, data, flipped in zip(layout.blank, placed, flips, strict=True)
                ),
                layout.size,
            )
            for flips in layout.flipped
        ]
        return scores.index(min(scores))


class _Bits:
    """The part of qrcode's BitBuffer its data segments write to, on one integer."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, number: int, length: int) -> None:
        self.value = (self.value << length) | (number & ((1 << length) - 1))
        self.length += length

    def __len__(self) -> int:
        return self.length


def _segments(data_list: list[util.QRData], sizes: dict[int, int]) -> _Bits:
    """Return the data's segments as bits: each one's mode, length and data."""
    bits = _Bits()
    for data in data_list:
        bits.put(data.mode, 4)
        bits.put(len(data), sizes[data.mode])
        data.write(bits)
    return bits


def _create_data(version: int, error_correction: int, data_list: list[util.QRData]) -> list[int]:
    """Return the codewords qrcode's util.create_data makes: the data, terminated and
    padded to the version's capacity, in blocks each followed by its error correction,
    interleaved."""
    bits = _segments(data_list, util.mode_sizes_for_version(version))
    blocks = base.rs_blocks(version, error_correction)
    limit = sum(block.data_count * 8 for block in blocks)
    if len(bits) > limit:
        raise DataOverflowError(f"Code length overflow. Data size ({len(bits)}) > {limit}")
    bits.put(0, min(limit - len(bits), 4))  # the terminator
    bits.put(0, -len(bits) % 8)
    filled = bits.length // 8
    data = list(bits.value.to_bytes(filled, "big"))
    data += [(util.PAD0, util.PAD1)[i % 2] for i in range(limit // 8 - filled)]
    data_blocks, ec_blocks = [], []
    offset = 0
    for block in blocks:
        data_blocks.append(data[offset : offset + block.data_count])
        offset += block.data_count
        ec_blocks.append(_error_correction(data_blocks[-1], block.total_count - block.data_count))
    return [
        codeword
        for part in (data_blocks, ec_blocks)
        for column in itertools.zip_longest(*part)
        for codeword in column
        if codeword is not None
    ]


# GF(256) as QR codes use it (x^8 + x^4 + x^3 + x^2 + 1): powers of 2 and their logarithms.
_EXP = [0] * 510
_LOG = [0] * 256
_power = 1
for _exponent in range(255):
    _EXP[_exponent] = _EXP[_exponent + 255] = _power
    _LOG[_power] = _exponent
    _power <<= 1
    if _power & 0x100:
        _power ^= 0x11D


@functools.cache
def _products(count: int) -> tuple[int, ...]:
    """Return, for each byte, its product with the error-correction generator's coefficients
    after its leading 1 (as qrcode builds the polynomial), as one integer of `count` bytes."""
    if count in LUT.rsPoly_LUT:
        coefficients = LUT.rsPoly_LUT[count]
    else:
        polynomial = base.Polynomial([1], 0)
        for i in range(count):
            polynomial = polynomial * base.Polynomial([1, base.gexp(i)], 0)
        coefficients = list(polynomial)
    logs = [_LOG[c] if c else -1 for c in coefficients[1:]]
    products = [0]
    for factor in range(1, 256):
        shift = _LOG[factor]
        row = bytes(_EXP[log + shift] if log >= 0 else 0 for log in logs)
        products.append(int.from_bytes(row, "big"))
    return tuple(products)


def _error_correction(data: list[int], count: int) -> list[int]:
    """Return a block's error-correction codewords: the remainder of its data, shifted by
    `count`, divided by the generator (qrcode divides Polynomials to the same result).

    The remainder is kept as one integer of `count` bytes: each codeword shifts it by a
    byte and adds (XOR) the generator times the byte that left it.
    """
    products = _products(count)
    top = 8 * (count - 1)
    keep = (1 << (8 * count)) - 1
    remainder = 0
    for codeword in data:
        remainder = ((remainder << 8) & keep) ^ products[codeword ^ (remainder >> top)]
    return list(remainder.to_bytes(count, "big"))


@dataclass(frozen=True)
class _Layout:
    """Where a version's data goes, and what the masks do to it.

    `cells` are the (row, column) the data fills, in order (the walk of qrcode's own
    map_data: up and down two columns at a time), and `flips` which of them each mask flips.

    For scoring, a matrix is drawn twice, as its rows and as its columns, each an integer
    of one byte per module (0 light, 1 dark), every line led by a SEPARATOR byte and the
    whole led by a line of them: `gathers` put the data cells' modules where each drawing
    has them, `blank` is the function patterns in each, and `flipped` each mask's flips in
    each.
    """

    size: int
    cells: list[tuple[int, int]]
    flips: list[list[bool]]
    gathers: tuple[Callable[[bytes], tuple[int, ...]], Callable[[bytes], tuple[int, ...]]]
    blank: tuple[int, int]
    flipped: list[tuple[int, int]]

    def place(self, drawing: int, modules: bytes) -> int:
        """Return the data cells' modules (0 or 1 each, in `cells` order) in the rows' (0)
        or the columns' (1) drawing, as its integer; light everywhere else."""
        return _placed(self.gathers[drawing], modules)


def _placed(gather: Callable[[bytes], tuple[int, ...]], modules: bytes) -> int:
    return int.from_bytes(bytes(gather(modules + b"\0")), "big")


SEPARATOR = 2  # neither light nor dark: no run, block or pattern goes across it


def _drawn(lines: Iterable[Iterable[int]], size: int) -> bytes:
    """Return lines of modules as one string: a line of separators, then each line after
    a separator."""
    return bytes([SEPARATOR] * (size + 1)) + b"".join(bytes([SEPARATOR, *line]) for line in lines)


_layouts: dict[int, _Layout] = {}


def _layout_of(code: _QRCode) -> _Layout:
    if code.version not in _layouts:
        _layouts[code.version] = _make_layout(_scored_blank(code.version, code.error_correction))
    return _layouts[code.version]


def _scored_blank(version: int, error_correction: int) -> list[list[bool | None]]:
    """Return the matrix qrcode scores a mask on before its data is placed (the first part
    of its makeImpl, in test mode): finder, alignment and timing patterns, format and
    version areas light, and None in every cell the data fills."""
    code = qrcode.QRCode(version=version, error_correction=error_correction)
    code.modules_count = size = version * 4 + 17
    code.modules = [[None] * size for _ in range(size)]
    code.setup_position_probe_pattern(0, 0)
    code.setup_position_probe_pattern(size - 7, 0)
    code.setup_position_probe_pattern(0, size - 7)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(True, 0)
    if version >= 7:
        code.setup_type_number(True)
    return code.modules


def _make_layout(blank: list[list[bool | None]]) -> _Layout:
    size = len(blank)
    cells = []
    row, step = size - 1, -1
    for right in range(size - 1, 0, -2):
        col = right - 1 if right <= 6 else right
        while True:
            cells.extend((row, c) for c in (col, col - 1) if blank[row][c] is None)
            row += step
            if row < 0 or size <= row:
                row -= step
                step = -step
                break
    width = size + 1
    # Each byte of a drawing takes its data cell's module, or the light one past the end.
    gathers = []
    for position in (
        lambda row, col: (row + 1) * width + col + 1,
        lambda row, col: (col + 1) * width + row + 1,
    ):
        source = [len(cells)] * width**2
        for index, (row, col) in enumerate(cells):
            source[position(row, col)] = index
        gathers.append(operator.itemgetter(*source))
    flips = [[mask(row, col) for row, col in cells] for mask in map(util.mask_func, range(8))]
    fixed = [[module is True for module in line] for line in blank]
    return _Layout(
        size,
        cells,
        flips,
        (gathers[0], gathers[1]),
        (
            int.from_bytes(_drawn(fixed, size), "big"),
            int.from_bytes(_drawn(zip(*fixed, strict=True), size), "big"),
        ),
        [(_placed(gathers[0], bytes(f)), _placed(gathers[1], bytes(f))) for f in flips],
    )


# Runs of five or more alike, light then dark: two searches with a literal start are
# several times quicker than one alternation.
_RUNS = (re.compile(rb"\x00\x00\x00\x00\x00+"), re.compile(rb"\x01\x01\x01\x01\x01+"))
_DARK_RUN = re.compile(rb"\x01+")
_BIT_BYTES = bytes.maketrans(b"01", b"\x00\x01")
_FINDER_LIKE = (bytes([1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0]), bytes([0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1]))


def lost_points(modules: list[list[bool]]) -> int:
    """Return qrcode's util.lost_point of a matrix (its ISO 18004 penalty)."""
    size = len(modules)
    return _penalty(
        int.from_bytes(_drawn(modules, size), "big"),
        int.from_bytes(_drawn(zip(*modules, strict=True), size), "big"),
        size,
    )


def _penalty(rows: int, columns: int, size: int) -> int:
    """Return the penalty of a matrix given as its rows and its columns, each drawn as one
    integer (see _Layout): lines of five or more alike, 2x2 blocks alike, finder-like
    patterns, and the dark modules' departure from half.

    Neither finder-like pattern can overlap itself, so counting them counts every one
    util.lost_point finds.
    """
    length = (size + 1) ** 2
    lines = rows.to_bytes(length, "big") + columns.to_bytes(length, "big")
    runs = [run for search in _RUNS for run in search.findall(lines)]
    points = sum(map(len, runs)) - 2 * len(runs)
    # A 2x2 block is alike where a module equals the one before it, the one above it and
    # the one above that: where no byte differs from those three.
    line = 8 * (size + 1)
    differs = (rows ^ rows >> 8) | (rows ^ rows >> line) | (rows ^ rows >> (line + 8))
    points += 3 * differs.to_bytes(length, "big").count(0)
    points += 40 * sum(lines.count(pattern) for pattern in _FINDER_LIKE)
    dark = lines.count(1) // 2  # each module is in one row and one column
    return points + int(abs(dark / size**2 * 100 - 50) / 5) * 10


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
    runs = [
        f"M{run.start()} {y}h{len(run[0])}v1h-{len(run[0])}z"
        for y, row in enumerate(matrix)
        for run in _DARK_RUN.finditer(bytes(row))
    ]
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
