"""QR codes as inline SVG with a white background, so they scan on dark pages too."""

from __future__ import annotations

import functools
import io
from html import escape
from itertools import groupby

import qrcode
from qrcode.constants import ERROR_CORRECT_M

BORDER = 4  # modules of quiet zone around the code, as the QR standard asks


def _matrix(url: str, border: int) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=border)
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
