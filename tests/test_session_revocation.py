"""A copy of an attendee's session cookie, taken before the phone let go of them, opens nothing:
not /me, not their data, not "delete me", and not their badge as its owner."""

from __future__ import annotations

from flask.testing import FlaskClient

from domain.checkin import find_attendance_by_badge
from domain.db import db
from tests.conftest import shown
from tests.mail_support import check_in, use_email_link
from tests.test_shared_phone import badge_of, holds, signed_in_as_ana, signed_out


def copy_of(app, phone: FlaskClient) -> FlaskClient:
    """Return a new client holding a copy of the phone's session cookie as it is now."""
    copy = app.test_client()
    with copy.session_transaction() as session, phone.session_transaction() as phones:
        session.update(phones)
    return copy


def assert_copy_opens_everything(copy: FlaskClient, ana: str) -> None:
    assert not signed_out(copy)
    assert copy.get("/me/data.json").status_code == 200
    assert copy.get("/me/delete").status_code == 200
    assert holds(copy, ana)


def assert_copy_opens_nothing(copy: FlaskClient, ana: str) -> None:
    assert signed_out(copy)
    for path in ("/me/data.json", "/me/delete", "/me/profile"):
        refused = copy.get(path)
        assert refused.status_code == 303 and refused.location == "/me/", path
    assert copy.post("/me/delete", data={"confirm": "y"}).status_code == 303
    assert not holds(copy, ana)
    assert copy.get(f"/b/{ana}/edit").status_code == 404
    assert copy.get(f"/b/{ana}/live").status_code == 404
    assert copy.post(f"/b/{ana}/forget").status_code == 404
    assert copy.post(f"/b/{ana}/connections/1/accept").status_code == 404


def test_forget_this_phone_ends_every_copy_of_the_session(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)
    assert_copy_opens_everything(copy, ana)

    assert phone.post(f"/b/{ana}/forget").status_code == 303

    assert_copy_opens_nothing(copy, ana)
    # The old badge link opens nothing at all now, not even Ana's card.
    assert app.test_client().get(f"/b/{ana}").status_code == 404
    assert find_attendance_by_badge(ana) is None


def test_sign_out_ends_every_copy_of_the_session(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)
    assert_copy_opens_everything(copy, ana)

    assert phone.post("/me/sign-out").status_code == 303

    assert_copy_opens_nothing(copy, ana)
    # The copy signing out again changes nothing and breaks nothing.
    assert copy.post("/me/sign-out").status_code == 303


def test_someone_elses_email_link_ends_every_copy_of_the_session(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)
    check_in(app.test_client(), event, "Bea", "bea@example.org", followups=False)
    assert phone.post("/me/sign-in", data={"email": "bea@example.org"}).status_code == 200
    mailbox.deliver()

    assert use_email_link(phone, mailbox.one("bea@example.org", "signin")).status_code == 303

    assert_copy_opens_nothing(copy, ana)
    # Bea's own session on the phone works.
    assert "Signed in as Bea (bea@example.org)" in shown(phone.get("/me/"))
    data = phone.get("/me/data.json").text
    assert "bea@example.org" in data and "ana@example.org" not in data


def test_someone_else_checking_in_ends_every_copy_of_the_session(app, make_event, mailbox):
    phone, ana = signed_in_as_ana(app, mailbox, make_event(name="Brunch"))
    copy = copy_of(app, phone)

    bea = check_in(phone, make_event(name="Later"), "Bea", "bea@example.org", followups=False)

    assert_copy_opens_nothing(copy, ana)
    assert holds(phone, bea)


def test_delete_me_ends_every_copy_of_the_session(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)

    assert phone.post("/me/delete", data={"confirm": "y"}).status_code == 303
    assert signed_out(phone)

    assert_copy_opens_nothing(copy, ana)


def test_forget_ends_the_persons_me_on_their_other_phones_too(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    laptop = app.test_client()
    assert laptop.post("/me/sign-in", data={"email": "ana@example.org"}).status_code == 200
    mailbox.deliver()
    assert use_email_link(laptop, mailbox.one("ana@example.org", "signin")).status_code == 303
    assert not signed_out(laptop)

    assert phone.post(f"/b/{ana}/forget").status_code == 303

    assert signed_out(laptop)


def test_after_forget_the_same_person_gets_a_working_badge_back_on_the_same_phone(
    app, make_event, mailbox
):
    event = make_event(name="Sunday brunch")
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)
    assert phone.post(f"/b/{ana}/forget").status_code == 303

    # Checking in again from the cleared phone is refused plainly, with a sign-in link offered.
    again = phone.post(
        f"/e/{event.checkin_token}", data={"name": "Ana", "email": "ana@example.org"}
    )
    assert again.status_code == 200
    assert "get a sign-in link" in again.text
    assert (
        phone.post(
            f"/e/{event.checkin_token}/sign-in", data={"email": "ana@example.org"}
        ).status_code
        == 200
    )
    mailbox.deliver()
    moved = use_email_link(phone, mailbox.one("ana@example.org", "signin"))
    assert moved.status_code == 303
    back = badge_of(moved.location)
    assert back != ana
    assert holds(phone, back)
    assert not signed_out(phone)
    db.session.rollback()
    assert find_attendance_by_badge(back).person.email == "ana@example.org"
    # A second tap on the poster takes her to that badge; the old copy still opens nothing.
    landing = phone.get(f"/e/{event.checkin_token}")
    assert landing.status_code == 303 and landing.location == f"/b/{back}"
    assert_copy_opens_nothing(copy, ana)
    assert not holds(copy, back)


def test_her_own_link_on_her_own_phone_keeps_her_sessions(app, make_event, mailbox):
    event = make_event()
    phone, ana = signed_in_as_ana(app, mailbox, event)
    copy = copy_of(app, phone)
    assert phone.post("/me/sign-in", data={"email": "ana@example.org"}).status_code == 200
    mailbox.deliver()

    assert use_email_link(phone, mailbox.one("ana@example.org", "signin")).status_code == 303

    # Signing in again as herself ends nothing: the phone and its older copy both still work.
    assert not signed_out(phone)
    assert holds(phone, ana)
    assert_copy_opens_everything(copy, ana)
