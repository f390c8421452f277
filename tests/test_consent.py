"""Consent that makes sense: a per-connection email share, and my card as others see it."""

from __future__ import annotations

import re

import pytest

from domain.connections import accept_connection, request_connection
from domain.db import db, writing
from domain.models import Attendance
from domain.profile import update_profile
from tests.conftest import shown
from tests.test_http_connect import Phone


def fields_block(page_html: str) -> list[str]:
    """Return each <dl class="fields"> block of a page, as served."""
    return re.findall(r'<dl class="fields">.*?</dl>', page_html, flags=re.S)


def connect(a, b) -> int:
    with writing():
        connection = request_connection(a.attendance, b.attendance)
        accept_connection(b.attendance, connection)
        db.session.commit()
        return connection.id


@pytest.fixture
def quiet_ana(app, make_event, make_attendee):
    """Ana shares nothing at the event; Ben and Cleo are her connections, Dan a stranger."""
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org", share_profile=False)
    ben = make_attendee(event, "Ben", "ben@example.org")
    cleo = make_attendee(event, "Cleo", "cleo@example.org")
    ben_id, cleo_id = connect(ben, ana), connect(cleo, ana)
    return {
        "ana": Phone(app, ana),
        "ben": Phone(app, ben),
        "cleo": Phone(app, cleo),
        "ben_connection": ben_id,
        "cleo_connection": cleo_id,
    }


def test_a_connection_who_shares_nothing_says_so(quiet_ana):
    ben = quiet_ana["ben"]
    page = shown(ben.get(f"/b/{ben.token}"))
    assert "Ana hasn't shared contact details yet." in page
    assert "Ben hasn't shared" not in shown(quiet_ana["ana"].get(f"/b/{quiet_ana['ana'].token}"))


def test_sharing_my_email_with_one_connection_leaves_my_choices_alone(quiet_ana):
    ana, ben, cleo = quiet_ana["ana"], quiet_ana["ben"], quiet_ana["cleo"]
    mine = shown(ana.get(f"/b/{ana.token}"))
    assert "Share my email with Ben" in mine and "Share my email with Cleo" in mine
    path = f"/b/{ana.token}/connections/{quiet_ana['ben_connection']}/share-email"
    done = ana.post(path, follow_redirects=True)
    assert "Ben now sees your email." in shown(done)
    assert "Ben sees your email." in shown(done)
    # Ben sees it on his badge, on Ana's card and in her vCard; Cleo does not.
    assert "ana@example.org" in shown(ben.get(f"/b/{ben.token}"))
    assert "ana@example.org" in shown(ben.get(f"/b/{ana.token}"))
    vcard = ben.get(f"/b/{ben.token}/connections/{quiet_ana['ben_connection']}/contact.vcf")
    assert "ana@example.org" in vcard.text
    assert "ana@example.org" not in shown(cleo.get(f"/b/{cleo.token}"))
    assert "ana@example.org" not in shown(cleo.get(f"/b/{ana.token}"))
    db.session.rollback()
    settings = db.session.get(Attendance, ana.result.attendance.id)
    assert settings.email_visibility == "nobody"  # the event-wide choice is unchanged
    assert settings.profile_consent_at is None

    stop = f"/b/{ana.token}/connections/{quiet_ana['ben_connection']}/stop-sharing-email"
    ana.post(stop)
    assert "ana@example.org" not in shown(ben.get(f"/b/{ben.token}"))


def test_no_share_offer_when_my_choice_already_shows_my_email(quiet_ana):
    ben = quiet_ana["ben"]
    assert "Share my email with Ana" not in shown(ben.get(f"/b/{ben.token}"))


def test_sharing_needs_an_accepted_connection(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org", share_profile=False)
    ben = make_attendee(event, "Ben", "ben@example.org")
    with writing():
        connection = request_connection(ben.attendance, ana.attendance)
        db.session.commit()
        connection_id = connection.id
    phone = Phone(app, ana)
    page = phone.post(
        f"/b/{ana.badge_token}/connections/{connection_id}/share-email", follow_redirects=True
    )
    assert "once you're connected" in shown(page)
    # Someone else's phone gets nothing at all.
    stranger = Phone(app, ben)
    path = f"/b/{ana.badge_token}/connections/{connection_id}/share-email"
    assert stranger.post(path).status_code == 404


def test_the_preview_is_what_a_stranger_and_a_connection_really_get(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(
        event,
        "Ana",
        "ana@example.org",
        about="Baker by night",
        talk_about="Hanoi night markets",
        interests=["sourdough", "marathons"],
        links=["https://ana.example/blog"],
    )
    with writing():
        update_profile(
            ana.attendance,
            name="Ana",
            about="Baker by night",
            talk_about="Hanoi night markets",
            interests=["sourdough", "marathons"],
            links=["https://ana.example/blog"],
            visibility={
                "about": "everyone",
                "interests": "connections",
                "talk": "everyone",
                "links": "nobody",
                "email": "connections",
            },
        )
        db.session.commit()
    # Neither shares an interest with Ana, so nothing on their view of her is highlighted.
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["chess"])
    dan = make_attendee(event, "Dan", "dan@example.org", interests=["jazz"])
    connect(ben, ana)

    preview = Phone(app, ana).get(f"/b/{ana.badge_token}/preview")
    assert preview.status_code == 200
    as_stranger, as_connection = fields_block(preview.text)
    (dan_sees,) = fields_block(Phone(app, dan).get(f"/b/{ana.badge_token}").text)
    (ben_sees,) = fields_block(Phone(app, ben).get(f"/b/{ana.badge_token}").text)
    assert as_stranger == dan_sees
    assert as_connection == ben_sees
    assert "Baker by night" in as_stranger and "sourdough" not in as_stranger
    assert "sourdough" in as_connection and "ana@example.org" in as_connection
    assert "ana.example/blog" not in as_connection


def test_only_my_phone_sees_my_preview(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org")
    assert app.test_client().get(f"/b/{ana.badge_token}/preview").status_code == 404


def test_sharing_moves_both_badges_on(quiet_ana):
    from domain.versions import badge_tag

    ana, ben = quiet_ana["ana"], quiet_ana["ben"]
    ids = (ana.result.attendance_id, ben.result.attendance_id)
    before = [badge_tag(i) for i in ids]
    ana.post(f"/b/{ana.token}/connections/{quiet_ana['ben_connection']}/share-email")
    db.session.rollback()
    after = [badge_tag(i) for i in ids]
    assert all(b != a for b, a in zip(before, after, strict=True))
