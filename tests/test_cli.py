"""The `flask` commands: organiser accounts and the demo event."""

from __future__ import annotations

import sqlalchemy as sa

from domain.db import db
from domain.models import Event, Organiser
from domain.organisers import authenticate
from tests.conftest import PUBLIC_URL, qr_codes


def test_organiser_create_reads_the_password_from_stdin(runner):
    result = runner.invoke(
        args=["organiser", "create", "Olu@Example.org", "--name", "Olu"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created organiser olu@example.org." in result.output
    db.session.rollback()
    assert authenticate("olu@example.org", "a long enough password") is not None


def test_organiser_create_refuses_duplicates_and_short_passwords(runner):
    runner.invoke(args=["organiser", "create", "olu@example.org"], input="a long enough password\n")
    again = runner.invoke(args=["organiser", "create", "olu@example.org"], input="another one!!\n")
    assert again.exit_code != 0
    assert "already exists" in again.output
    short = runner.invoke(args=["organiser", "create", "new@example.org"], input="short\n")
    assert short.exit_code != 0
    assert "at least 10 characters" in short.output
    db.session.rollback()
    assert db.session.scalars(sa.select(Organiser.email)).all() == ["olu@example.org"]


def test_set_password(runner, make_organiser):
    organiser = make_organiser("olu@example.org")
    result = runner.invoke(
        args=["organiser", "set-password", "olu@example.org"], input="a brand new password\n"
    )
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert authenticate(organiser.email, "a brand new password") is not None
    missing = runner.invoke(args=["organiser", "set-password", "who@example.org"], input="x" * 12)
    assert missing.exit_code != 0 and "No organiser" in missing.output


def test_demo_seeds_once_and_prints_how_to_reach_it(runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    db.session.rollback()
    event = db.session.scalars(sa.select(Event)).one()
    url = f"{PUBLIC_URL}/e/{event.checkin_token}"
    assert url in first.output
    assert "password:" in first.output and "shown once" in first.output
    assert "\u2588" in first.output  # the QR code, drawn in the terminal
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0
    assert url in second.output and "shown once" not in second.output
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == 1


def test_the_terminal_qr_code_decodes_to_the_check_in_url(runner):
    from PIL import Image

    output = runner.invoke(args=["demo"]).output
    db.session.rollback()
    event = db.session.scalars(sa.select(Event)).one()
    rows = [
        line for line in output.splitlines() if line and set(line) <= set("\u2588\u2580\u2584\xa0 ")
    ]
    # Each character is two modules, top and bottom; the block glyphs are the light ones,
    # and a blank (a space or a no-break space) is two dark ones.
    dark_top = {"\xa0": True, " ": True, "\u2584": True, "\u2580": False, "\u2588": False}
    dark_bottom = {"\xa0": True, " ": True, "\u2580": True, "\u2584": False, "\u2588": False}
    scale, width = 8, len(rows[0])
    image = Image.new("L", (width * scale, len(rows) * 2 * scale), 255)
    for y, line in enumerate(rows):
        for x, char in enumerate(line):
            for half, dark in ((0, dark_top[char]), (1, dark_bottom[char])):
                if dark:
                    top = (2 * y + half) * scale
                    image.paste(0, (x * scale, top, (x + 1) * scale, top + scale))
    padded = Image.new("L", (image.width + 8 * scale, image.height + 8 * scale), 255)
    padded.paste(image, (4 * scale, 4 * scale))
    decoded = [result.text for result in qr_codes(padded)]
    assert decoded == [f"{PUBLIC_URL}/e/{event.checkin_token}"]
