"""A phone passed from friend to friend: forgetting it, a second person checking in on it, and
an email link opened on it each leave nothing of the previous person behind."""

from __future__ import annotations

import re

import sqlalchemy as sa

from domain.checkin import find_attendance_by_badge
from domain.db import db
from domain.models import Attendance
from tests.conftest import csrf_token_from, shown
from tests.mail_support import check_in, person, use_email_link


def badge_of(location: str) -> str:
    match = re.fullmatch(r"/b/([\w-]{43})", location)
    assert match, location
    return match.group(1)


def signed_out(phone) -> bool:
    """Tell whether /me offers a sign-in link rather than someone's connections."""
    page = phone.get("/me/")
    return page.status_code == 200 and "Email me a sign-in link" in page.text


def holds(phone, token: str) -> bool:
    """Tell whether a phone opens a badge as its owner's (with the owner's own controls)."""
    return "Edit my profile" in phone.get(f"/b/{token}").text


def signed_in_as_ana(app, mailbox, event):
    """A phone on which Ana checked in and then signed in to /me with her confirmation link."""
    phone = app.test_client()
    token = check_in(phone, event, "Ana", "ana@example.org")
    mailbox.deliver()
    assert use_email_link(phone, mailbox.one("ana@example.org", "confirm")).status_code == 303
    assert not signed_out(phone)
    assert phone.get("/me/data.json").status_code == 200
    assert holds(phone, token)
    return phone, token


def assert_nothing_of_ana(phone, ana_token: str) -> None:
    assert signed_out(phone)
    assert not holds(phone, ana_token)
    assert phone.get(f"/b/{ana_token}/edit").status_code == 404
    refused = phone.get("/me/data.json")
    assert refused.status_code == 303 and refused.location == "/me/"


# ---------------------------------------------------------------- a second person at the same event


def test_after_forget_a_second_person_checks_in_at_the_same_event(app, make_event):
    event = make_event()
    phone = app.test_client()
    ana = check_in(phone, event, "Ana", "ana@example.org", followups=False)
    assert phone.post(f"/b/{ana}/forget").status_code == 303

    response = phone.post(
        f"/e/{event.checkin_token}", data={"name": "Bea", "email": "bea@example.org"}
    )
    assert response.status_code == 303
    bea = badge_of(response.location)
    assert bea != ana
    page = phone.get(f"/b/{bea}")
    assert page.status_code == 200
    assert 'aria-label="Badge QR code for Bea"' in page.text
    # The badge link this phone held for Ana opens nothing now; her check-in stays.
    assert find_attendance_by_badge(ana) is None
    assert find_attendance_by_badge(bea).person.name == "Bea"
    assert app.test_client().get(f"/b/{ana}").status_code == 404
    db.session.rollback()
    assert len(db.session.scalars(sa.select(Attendance)).all()) == 2


def test_sign_in_link_for_someone_else_on_a_phone_holding_a_badge_here(app, make_event, mailbox):
    event = make_event(name="Sunday brunch")
    phone, beas_old_phone, anas_laptop = (app.test_client() for _ in range(3))
    ana = check_in(phone, event, "Ana", "ana@example.org", followups=False)
    bea_old = check_in(beas_old_phone, event, "Bea", "bea@example.org", followups=False)
    # Another device of Ana's holds the same badge link (she sent it to herself, say).
    with anas_laptop.session_transaction() as session, phone.session_transaction() as phones:
        session.update(phones)

    sent = phone.post(f"/e/{event.checkin_token}/sign-in", data={"email": "bea@example.org"})
    assert sent.status_code == 200
    mailbox.deliver()
    moved = use_email_link(phone, mailbox.one("bea@example.org", "signin"))
    assert moved.status_code == 303
    bea = badge_of(moved.location)
    assert bea not in (ana, bea_old)
    page = phone.get(f"/b/{bea}")
    assert 'aria-label="Badge QR code for Bea"' in page.text
    assert beas_old_phone.get(f"/b/{bea_old}").status_code == 404

    # The phone let go of Ana: her badge link from it opens nothing, on any copy of it.
    assert not holds(anas_laptop, ana)
    assert find_attendance_by_badge(ana) is None
    assert not holds(phone, ana)
    with phone.session_transaction() as session:
        assert list(session["badges"].values()) == [bea]
    data = phone.get("/me/data.json").text
    assert "bea@example.org" in data and "ana@example.org" not in data


# ---------------------------------------------------------------- each starts a clean session


def test_forget_this_phone_signs_the_owner_out(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    with phone.session_transaction() as session:
        old_secret = session["device"]
    assert phone.post(f"/b/{ana}/forget").status_code == 303
    assert_nothing_of_ana(phone, ana)
    with phone.session_transaction() as session:
        assert session["device"] != old_secret
        assert not ({"me", "person", "badges"} & set(session))


def test_check_in_as_someone_new_signs_the_owner_out(app, make_event, mailbox):
    phone, ana = signed_in_as_ana(app, mailbox, make_event(name="Brunch"))
    later = make_event(name="Later")
    bea = check_in(phone, later, "Bea", "bea@example.org", followups=False)
    assert_nothing_of_ana(phone, ana)
    assert holds(phone, bea)
    # The badge link the phone held for Ana opens nothing; a sign-in link brings it back.
    assert find_attendance_by_badge(ana) is None


def test_email_link_sign_in_as_someone_else_signs_the_owner_out(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    check_in(app.test_client(), event, "Bea", "bea@example.org", followups=False)
    assert phone.post("/me/sign-in", data={"email": "bea@example.org"}).status_code == 200
    mailbox.deliver()
    assert use_email_link(phone, mailbox.one("bea@example.org", "signin")).status_code == 303
    page = phone.get("/me/")
    assert "Signed in as Bea (bea@example.org)" in shown(page)
    assert "ana@example.org" not in page.text
    assert not holds(phone, ana)
    assert phone.get(f"/b/{ana}/edit").status_code == 404
    data = phone.get("/me/data.json").text
    assert "bea@example.org" in data and "ana@example.org" not in data


def test_signing_in_again_as_the_same_person_keeps_her_badges(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    assert phone.post("/me/sign-in", data={"email": "ana@example.org"}).status_code == 200
    mailbox.deliver()
    assert use_email_link(phone, mailbox.one("ana@example.org", "signin")).status_code == 303
    assert "Signed in as Ana" in shown(phone.get("/me/"))
    assert holds(phone, ana)


def test_forms_keep_working_after_a_clean_session(app_factory, make_event):
    app = app_factory(WTF_CSRF_ENABLED=True)
    event = make_event()
    phone = app.test_client()

    def check_in_with_form(name: str, email: str) -> str:
        form = phone.get(f"/e/{event.checkin_token}").text
        response = phone.post(
            f"/e/{event.checkin_token}",
            data={"name": name, "email": email, "csrf_token": csrf_token_from(form)},
        )
        assert response.status_code == 303, response.text
        return badge_of(response.location)

    ana = check_in_with_form("Ana", "ana@example.org")
    badge = phone.get(f"/b/{ana}").text
    forgot = phone.post(f"/b/{ana}/forget", data={"csrf_token": csrf_token_from(badge)})
    assert forgot.status_code == 303
    bea = check_in_with_form("Bea", "bea@example.org")
    assert holds(phone, bea) and not holds(phone, ana)
    db.session.rollback()
    assert person("bea@example.org").name == "Bea"


def test_checking_in_someone_else_says_whose_badges_it_lets_go(app, make_event):
    brunch, run_club = make_event(name="Brunch"), make_event(name="Run club")
    phone = app.test_client()
    check_in(phone, brunch, "Ana", "ana@example.org", followups=False)
    page = " ".join(phone.get(f"/e/{run_club.checkin_token}?new=1").text.split())
    page = page.replace("&#39;", "'")
    assert "This phone holds Ana's badges." in page
    assert "gets them back on any phone with a sign-in link" in page
    # A phone that belongs to no one has nothing to let go of.
    fresh = app.test_client().get(f"/e/{run_club.checkin_token}?new=1").text
    assert "This phone holds" not in fresh
