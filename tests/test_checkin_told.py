"""Told what happened: the badge says the check-in worked and which confirmation waits."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import sqlalchemy as sa

from domain.checkin import find_attendance_by_badge
from domain.db import db, writing
from domain.models import OutboxMessage
from tests.conftest import shown
from tests.mail_support import check_in, confirm_directly

NOTICE = "We sent a confirmation to a\u2026@example.org: tap the link in it to get your follow-ups."


def confirmations() -> int:
    db.session.rollback()
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "confirm")
    )


def test_the_badge_says_checked_in_and_which_address_to_confirm(app, make_event):
    event = make_event()
    phone = app.test_client()
    data = {"name": "Ana", "email": "ana@example.org", "want_followups": "y"}
    page = phone.post(f"/e/{event.checkin_token}", data=data, follow_redirects=True)
    assert "You're checked in." in shown(page)
    assert NOTICE in shown(page)
    assert "ana@example.org" not in shown(page).split('<section class="badge"')[0]
    # The notice stays until the address is confirmed; the flash does not.
    again = phone.get(page.request.path)
    assert NOTICE in shown(again) and "You're checked in." not in shown(again)


def test_no_notice_without_follow_ups_or_once_confirmed(app, make_event, make_attendee):
    event = make_event()
    phone = app.test_client()
    page = phone.post(
        f"/e/{event.checkin_token}",
        data={"name": "Ben", "email": "ben@example.org"},
        follow_redirects=True,
    )
    assert "You're checked in." in shown(page) and "confirmation" not in shown(page)

    cleo_phone = app.test_client()
    badge = check_in(cleo_phone, event, "Cleo", "cleo@example.org")
    confirm_directly(SimpleNamespace(attendance=find_attendance_by_badge(badge)))
    assert "confirmation" not in shown(cleo_phone.get(f"/b/{badge}"))


def test_resend_stays_within_the_confirmation_limits(app, make_event):
    event = make_event()
    phone = app.test_client()
    badge = check_in(phone, event, "Ana", "ana@example.org")
    assert confirmations() == 1
    page = phone.post(f"/b/{badge}/confirmation", follow_redirects=True)
    assert "We sent one recently" in shown(page)
    assert confirmations() == 1  # one a day, as ever
    # A day later the button sends another.
    db.session.rollback()
    with writing():
        for message in db.session.scalars(sa.select(OutboxMessage)):
            message.created_at -= timedelta(days=1, minutes=1)
            message.dedupe_key += ":yesterday"
        db.session.commit()
    page = phone.post(f"/b/{badge}/confirmation", follow_redirects=True)
    assert "We sent the confirmation again" in shown(page)
    assert confirmations() == 2


def test_a_stranger_cannot_resend(app, make_event):
    event = make_event()
    badge = check_in(app.test_client(), event, "Ana", "ana@example.org")
    assert app.test_client().post(f"/b/{badge}/confirmation").status_code == 404
    assert confirmations() == 1
