"""QR codes as inline SVG with a white background, so they scan on dark pages too."""

from __future__ import annotations

import functools
import re

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathFillImage

_SQUARE = re.compile(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z")


class RunLengthSvgImage(SvgPathFillImage):
    """The white-background path image, with each row's adjacent modules drawn as one run.

    The picture is the same; the path is about a third of the size, which keeps the
    badge page small on a phone.
    """

    def process(self) -> None:
        runs: list[list[int]] = []
        for square in self._subpaths:
            match = _SQUARE.fullmatch(square)
            if match is None:  # not a unit square: keep the library's path as it is
                return super().process()
            x0, y0, x1, _ = (int(value) for value in match.groups())
            if runs and runs[-1][1] == y0 and runs[-1][2] == x0:
                runs[-1][2] = x1
            else:
                runs.append([x0, y0, x1])
        self._subpaths = [f"M{x0} {y0}h{x1 - x0}v1h-{x1 - x0}z" for x0, y0, x1 in runs]
        return super().process()


@functools.lru_cache(maxsize=4096)
def qr_svg(url: str, label: str = "QR code") -> str:
    """Return an <svg class="qr"> element encoding `url`; cached per URL and label."""
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M, border=4, image_factory=RunLengthSvgImage
    )
    code.add_data(url)
    code.make(fit=True)
    image = code.make_image(attrib={"class": "qr", "role": "img", "aria-label": label})
    svg = image.to_string(encoding="unicode")
    # Inline SVG in HTML needs no XML declaration.
    if svg.startswith("<?xml"):
        svg = svg[svg.index("?>") + 2 :].lstrip()
    return svg


def qr_text(url: str) -> str:
    """Return `url` as a QR code drawn with text blocks, for a terminal."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    code.add_data(url)
    code.make(fit=True)
    lines = []
    matrix = code.get_matrix()
    # Two rows of modules per line of text, drawn dark-on-light whatever the terminal theme.
    for top, bottom in zip(matrix[0::2], [*matrix[1::2], [False] * len(matrix[0])], strict=True):
        row = []
        for upper, lower in zip(top, bottom, strict=True):
            row.append(
                {
                    (False, False): "\u2588",
                    (True, False): "\u2584",
                    (False, True): "\u2580",
                    (True, True): " ",
                }[(upper, lower)]
            )
        lines.append("".join(row))
    return "\n".join(lines)
