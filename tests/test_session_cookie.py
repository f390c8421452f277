"""A phone's session cookie is sent when it changes, and once a day when it does not: every
page need not carry it, and it still lives 90 days from the phone's last visit."""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import TimestampSigner

from domain.db import utcnow
from domain.limits import SESSION_COOKIE_RESENT_AFTER_SECONDS
from tests.test_rate_limits import guest


def session_cookie(response) -> str | None:
    """Return the session cookie a response sets, or None."""
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == "session":
            return rest
    return None


def test_an_unchanged_session_is_not_sent_with_every_page(app, make_event):
    event = make_event()
    phone = app.test_client()
    first = phone.get(f"/e/{event.checkin_token}")
    assert session_cookie(first) is not None  # a new phone's secret and form token
    checked_in = phone.post(f"/e/{event.checkin_token}", data=guest(1))
    assert checked_in.status_code == 303
    assert session_cookie(checked_in) is not None  # it now holds a badge
    badge = checked_in.headers["Location"]
    # The first view shows (and so takes out) the message saying she is checked in.
    assert session_cookie(phone.get(badge)) is not None
    for _ in range(3):
        page = phone.get(badge)
        assert page.status_code == 200
        assert "Badge QR code for Guest 1" in page.text  # her own badge: the phone is hers
        assert session_cookie(page) is None


def test_a_day_old_cookie_is_sent_again_to_last_another_90_days(app, make_event, monkeypatch):
    event = make_event()
    phone = app.test_client()
    phone.get(f"/e/{event.checkin_token}")
    badge = phone.post(f"/e/{event.checkin_token}", data=guest(1)).headers["Location"]
    phone.get(badge)  # the message saying she is checked in is shown, and goes
    with phone.session_transaction() as session:
        held = dict(session)
    signed = utcnow() - timedelta(seconds=SESSION_COOKIE_RESENT_AFTER_SECONDS + 60)
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(signed.timestamp()))
        old = app.session_interface.get_signing_serializer(app).dumps(held)
    phone.set_cookie("session", old)

    page = phone.get(badge)
    assert page.status_code == 200
    fresh = session_cookie(page)
    assert fresh is not None and fresh.split(";")[0] != old
    assert "Expires=" in fresh  # a lasting cookie, 90 days from now
    assert session_cookie(phone.get(badge)) is None  # and not again the same day


def test_a_cookie_signed_an_hour_ago_is_not_sent_again(app, make_event, monkeypatch):
    event = make_event()
    phone = app.test_client()
    phone.get(f"/e/{event.checkin_token}")
    badge = phone.post(f"/e/{event.checkin_token}", data=guest(1)).headers["Location"]
    phone.get(badge)  # the message saying she is checked in is shown, and goes
    with phone.session_transaction() as session:
        held = dict(session)
    signed = utcnow() - timedelta(hours=1)
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda _self: int(signed.timestamp()))
        phone.set_cookie("session", app.session_interface.get_signing_serializer(app).dumps(held))
    page = phone.get(badge)
    assert page.status_code == 200 and session_cookie(page) is None
