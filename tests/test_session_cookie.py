"""A phone's session cookie is sent when it changes, and once a day when it does not: every
page need not carry it, and it still lives at least 89 of its 90 days from the phone's last
visit."""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import TimestampSigner

from domain.db import utcnow
from domain.limits import SESSION_COOKIE_RESENT_AFTER_SECONDS
from tests.conftest import login
from tests.test_rate_limits import guest


def signed_ago(app, phone, seconds: float) -> str:
    """Return the phone's session signed `seconds` ago, as its cookie would be."""
    with phone.session_transaction() as session:
        held = dict(session)
    signed = utcnow() - timedelta(seconds=seconds)
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda _self: int(signed.timestamp())  # type: ignore[method-assign]
    try:
        return app.session_interface.get_signing_serializer(app).dumps(held)
    finally:
        TimestampSigner.get_timestamp = original  # type: ignore[method-assign]


def checked_in(app, event) -> tuple[object, str]:
    """Return a new phone checked in at the event, its badge seen once, and its badge's path.

    (The first view shows, and so takes out, the message saying she is checked in.)
    """
    phone = app.test_client()
    phone.get(f"/e/{event.checkin_token}")
    badge = phone.post(f"/e/{event.checkin_token}", data=guest(1)).headers["Location"]
    phone.get(badge)
    return phone, badge


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


def test_a_day_old_cookie_is_sent_again_to_last_another_90_days(app, make_event):
    event = make_event()
    phone, badge = checked_in(app, event)
    old = signed_ago(app, phone, SESSION_COOKIE_RESENT_AFTER_SECONDS + 60)
    phone.set_cookie("session", old)

    page = phone.get(badge)
    assert page.status_code == 200
    fresh = session_cookie(page)
    assert fresh is not None and fresh.split(";")[0] != old
    assert "Expires=" in fresh  # a lasting cookie, 90 days from now
    assert session_cookie(phone.get(badge)) is None  # and not again the same day


def test_a_cookie_signed_an_hour_ago_is_not_sent_again(app, make_event):
    event = make_event()
    phone, badge = checked_in(app, event)
    phone.set_cookie("session", signed_ago(app, phone, 60 * 60))
    page = phone.get(badge)
    assert page.status_code == 200 and session_cookie(page) is None


def test_a_short_lived_session_is_sent_again_well_before_it_ends(app_factory, make_event):
    """With sessions set to last an hour, an unchanged one is sent again after six minutes
    (a tenth of its life), not after a day it would never reach."""
    hourly = app_factory(PERMANENT_SESSION_LIFETIME=3600)
    with hourly.app_context():
        event = make_event()
        phone, badge = checked_in(hourly, event)
        phone.set_cookie("session", signed_ago(hourly, phone, 5 * 60))
        assert session_cookie(phone.get(badge)) is None
        phone.set_cookie("session", signed_ago(hourly, phone, 7 * 60))
        page = phone.get(badge)
        assert "Badge QR code for Guest 1" in page.text
        assert session_cookie(page) is not None


def test_an_organiser_signing_in_on_a_phone_keeps_its_lasting_badge(
    app, make_event, make_organiser
):
    event = make_event()
    phone = app.test_client()
    phone.get(f"/e/{event.checkin_token}")
    badge = phone.post(f"/e/{event.checkin_token}", data=guest(1)).headers["Location"]
    login(phone, make_organiser())
    with phone.session_transaction() as session:
        assert session.permanent  # not a cookie that ends when the browser closes
        assert {"device", "phone", "badges"} <= set(session)
    assert "Badge QR code for Guest 1" in phone.get(badge).text
