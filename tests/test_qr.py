"""Our QR codes are qrcode's own, module for module, however quickly they are drawn."""

from __future__ import annotations

import random
import string

import qrcode
from qrcode import util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

from domain.qr import BORDER, _create_data, _QRCode, lost_points, qr_modules

ALPHABET = string.ascii_letters + string.digits + "-_"


def qrcode_own(url: str) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=BORDER)
    code.add_data(url)
    code.make(fit=True)
    return code.get_matrix()


def test_every_length_of_link_draws_qrcodes_own_modules():
    # From a short link to one long enough for the version blocks of version 7 and up.
    chosen = random.Random(18004)
    for length in range(1, 300, 3):
        token = "".join(chosen.choice(ALPHABET) for _ in range(length))
        url = f"https://rapport.example/b/{token}"
        assert qr_modules(url) == qrcode_own(url), url


def test_a_badge_link_draws_qrcodes_own_modules_with_each_mask():
    # Badge links are all one length: enough of them land on each of the eight masks.
    chosen = random.Random(7)
    masks = set()
    for _ in range(80):
        url = "http://127.0.0.1:5000/b/" + "".join(chosen.choice(ALPHABET) for _ in range(43))
        code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=BORDER)
        code.add_data(url)
        code.make(fit=True)
        assert qr_modules(url) == code.get_matrix(), url
        masks.add(code.best_mask_pattern())
    assert masks == set(range(8))


def test_the_penalty_is_qrcodes_own_on_any_matrix():
    chosen = random.Random(40)
    for _ in range(400):
        size = chosen.choice([21, 25, 33, 45, 57])
        dark = chosen.random()
        matrix = [[chosen.random() < dark for _ in range(size)] for _ in range(size)]
        assert lost_points(matrix) == util.lost_point(matrix)


def test_the_codewords_are_qrcodes_own_in_every_mode_level_and_version():
    """Data, padding and interleaved error correction, against qrcode's util.create_data."""
    chosen = random.Random(1804)
    alphabets = ["0123456789", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", ALPHABET]
    for level in (ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q, ERROR_CORRECT_H):
        for _ in range(60):
            alphabet = chosen.choice(alphabets)
            text = "".join(chosen.choice(alphabet) for _ in range(chosen.randint(1, 700)))
            code = qrcode.QRCode(error_correction=level)
            code.add_data(text)
            try:
                version = code.best_fit()
            except DataOverflowError:
                continue
            assert _create_data(version, level, code.data_list) == util.create_data(
                version, level, code.data_list
            ), (level, text)
            fitted = _QRCode(error_correction=level)
            fitted.add_data(text)
            assert fitted.best_fit() == version
