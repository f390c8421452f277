"""/me (signing in by email, my connections across events, profile, data, deletion), moving a
badge to a new phone from check-in, and the organiser's emails page."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.followups import revive_after_confirmation, update_followup_settings
from domain.models import (
    Attendance,
    Connection,
    EmailLink,
    Event,
    OutboxMessage,
    Person,
    Suppression,
)
from domain.suppression import email_hash, suppress
from tests.conftest import login, shown
from tests.mail_support import (
    Mailbox,
    check_in,
    end_now,
    messages,
    person,
    states,
    use_email_link,
)
from tests.test_http_connect import Phone


def sign_in(client, mailbox: Mailbox, address: str) -> None:
    """Sign a device in to /me through the emailed link."""
    assert client.post("/me/sign-in", data={"email": address}).status_code == 200
    mailbox.deliver()
    response = use_email_link(client, mailbox.sent(address, "signin")[-1])
    assert response.status_code == 303
    assert response.location == "/me/"


# ---------------------------------------------------------------- signing in to /me


def test_signed_out_me_offers_a_link_and_never_says_who_is_known(
    app, make_event, make_attendee, mailbox
):
    make_attendee(make_event(), "Ana", "ana@example.org")
    phone = app.test_client()
    page = phone.get("/me/")
    assert page.status_code == 200
    assert "Email me a sign-in link" in page.text
    assert "Signed in as" not in page.text

    known = phone.post("/me/sign-in", data={"email": "ana@example.org"})
    unknown = phone.post("/me/sign-in", data={"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("ana@example.org", "ADDRESS") == unknown.text.replace(
        "nobody@example.org", "ADDRESS"
    )
    assert "a sign-in link is on its way" in known.text
    assert [(m.kind, m.to_email, m.event_id) for m in messages()] == [
        ("signin", "ana@example.org", None)
    ]
    assert phone.post("/me/sign-in", data={"email": "not an address"}).status_code == 400

    mailbox.deliver()
    assert [e.to for e in mailbox.emails] == ["ana@example.org"]
    assert mailbox.one("ana@example.org", "signin").subject == "Your Rapport sign-in link"


@pytest.fixture
def ana_across_two_events(app, make_event, make_attendee):
    """Ana met Ben at one event and Cleo at another; Dan was there too and never connected."""
    bakers = make_event(name="Bakers evening")
    track = make_event(name="Track club")
    ana = make_attendee(bakers, "Ana", "ana@example.org", interests=["sourdough", "marathons"])
    ben = make_attendee(bakers, "Ben", "ben@example.org", interests=["sourdough"])
    make_attendee(bakers, "Dan", "dan@example.org", interests=["sourdough"])
    ana_again = make_attendee(
        track,
        "Ana",
        "ana@example.org",
        person_id=ana.attendance.person_id,
        interests=["marathons"],
    )
    cleo = make_attendee(track, "Cleo", "cleo@example.org", interests=["marathons"])
    with writing():
        db.session.get_one(Attendance, cleo.attendance.id).email_visibility = "nobody"
        request_connection(ana.attendance, ben.attendance, "bread swap on Friday")
        request_connection(ben.attendance, ana.attendance, "her blog about ovens")
        request_connection(cleo.attendance, ana_again.attendance, "pacer for 10k")
        request_connection(ana_again.attendance, cleo.attendance, "runs at dawn")
        db.session.commit()
    return ana, ben, cleo


def test_me_lists_my_connections_across_events(app, ana_across_two_events, mailbox):
    phone = app.test_client()
    sign_in(phone, mailbox, "ana@example.org")
    page = phone.get("/me/")
    assert page.status_code == 200
    assert "Signed in as Ana (ana@example.org)" in shown(page)
    people = {
        re.search(r"<strong>(\w+)</strong>", item).group(1): item
        for item in shown(page).split("<li>")[1:]
        if "Met at" in item
    }
    assert set(people) == {"Ben", "Cleo"}
    assert "Met at Bakers evening" in people["Ben"]
    assert "sourdough" in people["Ben"]
    assert "My note: bread swap on Friday" in people["Ben"]
    assert "Met at Track club" in people["Cleo"]
    assert "marathons" in people["Cleo"]
    assert "My note: runs at dawn" in people["Cleo"]
    # Their notes about me are theirs.
    assert "her blog about ovens" not in page.text
    assert "pacer for 10k" not in page.text


def test_profile_edit_validates(app, ana_across_two_events, mailbox):
    phone = app.test_client()
    sign_in(phone, mailbox, "ana@example.org")
    assert phone.get("/me/profile").status_code == 200
    base = {"name": "Ana", "about": "", "talk_about": ""}
    for bad in (
        {"links": "javascript:alert(1)"},
        {"about": "line one\r\nBcc: x@example.net"},
        {"name": ""},
    ):
        response = phone.post("/me/profile", data={**base, "links": "", **bad})
        assert response.status_code == 200, bad
        assert "Edit my profile" in response.text
    db.session.rollback()
    ana = person("ana@example.org")
    assert (ana.name, ana.about, ana.links) == ("Ana", "", [])

    saved = phone.post(
        "/me/profile",
        data={"name": "Ana B", "about": "Baker", "talk_about": "", "links": "ana.example/blog"},
    )
    assert saved.status_code == 303
    db.session.rollback()
    ana = person("ana@example.org")
    assert (ana.name, ana.about, ana.links) == ("Ana B", "Baker", ["https://ana.example/blog"])


def test_my_data_holds_my_things_and_no_one_elses_address(app, ana_across_two_events, mailbox):
    phone = app.test_client()
    assert phone.get("/me/data.json").status_code == 303  # signed out: nothing to download
    sign_in(phone, mailbox, "ana@example.org")
    response = phone.get("/me/data.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(response.text)
    assert data["profile"]["email"] == "ana@example.org"
    assert data["profile"]["email_confirmed_at"] is not None  # the sign-in link proved it
    assert {e["event"] for e in data["events"]} == {"Bakers evening", "Track club"}
    assert {(c["name"], c["met_at"], c["my_note"]) for c in data["connections"]} == {
        ("Ben", "Bakers evening", "bread swap on Friday"),
        ("Cleo", "Track club", "runs at dawn"),
    }
    shared = {c["name"]: c["shared_interests"] for c in data["connections"]}
    assert shared == {"Ben": ["sourdough"], "Cleo": ["marathons"]}
    assert "signin" in [m["kind"] for m in data["emails"]]
    text = response.text
    assert "cleo@example.org" not in text  # Cleo shows her address to no one
    assert "dan@example.org" not in text  # never connected
    assert "her blog about ovens" not in text  # Ben's note is Ben's


def all_rows_text() -> str:
    """Every value in every table, as one string."""
    parts = []
    for table in db.metadata.sorted_tables:
        parts.extend(repr(tuple(row)) for row in db.session.execute(sa.select(table)))
    return "\n".join(parts)


def test_delete_me_erases_me_everywhere_but_the_suppression_hash(app, met, mailbox):
    end_now(met.event)
    mailbox.deliver()  # digests sent, nudges waiting
    phone = Phone(app, met.ana)
    sign_in(phone.client, mailbox, "ana@example.org")
    ana_id, ben_id = met.ana.attendance.person_id, met.ben.attendance.person_id
    connection_id = met.connection.id
    assert {m.status for m in messages(person_id=ana_id)} == {"sent", "pending"}
    assert "ana@example.org" in all_rows_text()

    page = phone.get("/me/delete")
    assert page.status_code == 200
    unticked = phone.post("/me/delete", data={})
    assert unticked.status_code == 200
    assert "Tick the box to confirm." in unticked.text
    db.session.rollback()
    assert db.session.get(Person, ana_id) is not None

    deleted = phone.post("/me/delete", data={"confirm": "y"})
    assert deleted.status_code == 303
    assert deleted.location == "/"
    db.session.rollback()
    assert db.session.get(Person, ana_id) is None
    assert (
        db.session.scalars(sa.select(Attendance).where(Attendance.person_id == ana_id)).all() == []
    )
    assert db.session.scalars(sa.select(Connection)).all() == []
    assert db.session.scalars(sa.select(EmailLink).where(EmailLink.person_id == ana_id)).all() == []
    assert messages(person_id=ana_id) == []
    # Ben keeps his own emails, but none about his connection with Ana.
    assert {m.kind for m in messages(person_id=ben_id)} == {"confirm", "digest"}
    assert messages(connection_id=connection_id) == []
    assert db.session.get(Suppression, email_hash("ana@example.org")).reason == "deleted"
    assert "ana@example.org" not in all_rows_text()
    assert "ben@example.org" in all_rows_text()

    # The device is signed out and holds no badge.
    assert "Email me a sign-in link" in phone.get("/me/").text
    assert phone.get(f"/b/{met.ana.badge_token}").status_code == 404
    with phone.client.session_transaction() as session:
        assert not ({"me", "person", "badges"} & set(session))


# ---------------------------------------------------------------- moving a badge to a new phone


def test_sign_in_link_from_check_in_moves_the_badge(app, make_event, mailbox):
    event = make_event(name="Sunday brunch")
    old_phone, new_phone = app.test_client(), app.test_client()
    old_badge = check_in(old_phone, event, "Ana", "ana@example.org", followups=False)

    refused = new_phone.post(
        f"/e/{event.checkin_token}",
        data={"name": "Ana", "email": "ana@example.org", "share_profile": "y"},
    )
    assert refused.status_code == 200
    assert "already belongs to someone on Rapport" in refused.text
    assert "Get a sign-in link" in refused.text
    assert f'action="/e/{event.checkin_token}/sign-in"' in refused.text

    sent = new_phone.post(f"/e/{event.checkin_token}/sign-in", data={"email": "ana@example.org"})
    assert sent.status_code == 200
    assert "a sign-in link is on its way" in sent.text
    unknown = new_phone.post(
        f"/e/{event.checkin_token}/sign-in", data={"email": "nobody@example.org"}
    )
    assert unknown.status_code == 200
    assert [(m.kind, m.to_email, m.event_id) for m in messages()] == [
        ("signin", "ana@example.org", event.id)
    ]

    mailbox.deliver()
    link = mailbox.one("ana@example.org", "signin")
    path = re.search(r"http://rapport\.test(/m/\S+)", link.text).group(1)
    page = new_phone.get(path)
    assert page.status_code == 200
    assert "move your badge for Sunday brunch" in shown(page)
    assert old_phone.get(f"/b/{old_badge}").status_code == 200  # a GET moves nothing

    moved = new_phone.post(path)
    assert moved.status_code == 303
    new_badge = re.fullmatch(r"/b/([\w-]{43})", moved.location).group(1)
    assert new_badge != old_badge
    badge = new_phone.get(moved.location)
    assert badge.status_code == 200
    assert 'aria-label="Badge QR code for Ana"' in badge.text
    assert old_phone.get(f"/b/{old_badge}").status_code == 404
    assert new_phone.post(path).status_code == 410
    db.session.rollback()
    assert len(db.session.scalars(sa.select(Attendance)).all()) == 1


# ---------------------------------------------------------------- the organiser's emails page


def counts_on(page: str) -> dict[str, int]:
    return {
        state: int(number)
        for number, state in re.findall(r"<li><strong>(\d+)</strong> ([^<]+)</li>", page)
    }


@pytest.fixture
def desk(app, met, mailbox):
    """The organiser's laptop, after the confirmations went out and Ben's then failed."""
    mailbox.deliver()
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.kind == "confirm", OutboxMessage.to_email == "ben@example.org")
            .values(status="failed", last_error="400 invalid address")
        )
        db.session.commit()
    client = app.test_client()
    login(client, db.session.get_one(Event, met.event.id).organiser)
    return client


def only(kind: str, address: str) -> OutboxMessage:
    (message,) = [m for m in messages(kind=kind) if m.to_email == address]
    return message


def test_emails_page_counts_messages_by_state(desk, met):
    page = desk.get(f"/organiser/events/{met.event.id}/emails")
    assert page.status_code == 200
    assert counts_on(page.text) == {
        "to send": 4,
        "waiting for confirmation": 0,
        "sending": 0,
        "checking": 0,
        "sent": 1,
        "failed": 1,
        "will not be sent": 0,
    }
    assert "400 invalid address" in page.text
    assert "End the event now" in page.text


def outlook_on(page: str, message_id: int) -> str:
    """Return what the emails page says will happen to one message."""
    row = re.search(rf'<tr id="message-{message_id}">(.*?)</tr>', page, re.S)
    assert row, f"no row for message {message_id}"
    cell = re.search(r'<td class="outlook">(.*?)</td>', row.group(1), re.S)
    assert cell
    return cell.group(1).strip()


@pytest.mark.parametrize(
    ("status", "reason", "confirmed", "said", "group"),
    [
        ("pending", None, True, "will be sent", "to send"),
        ("pending", None, False, "waiting for the person to confirm", "waiting for confirmation"),
        ("cancelled", "unconfirmed", False, "waiting for the person to confirm",
         "waiting for confirmation"),
        ("cancelled", "unsubscribed", True, "will not be sent: unsubscribed", "will not be sent"),
        ("cancelled", "suppressed", True,
         "will not be sent: the address is on the do-not-email list", "will not be sent"),
        ("cancelled", "bounced", True, "will not be sent: the address bounced",
         "will not be sent"),
        ("cancelled", "deleted", True, "will not be sent: the person deleted their data",
         "will not be sent"),
        ("cancelled", "no_consent", True, "will not be sent: no consent to follow-ups",
         "will not be sent"),
        ("cancelled", "cancelled by the organiser", True, "will not be sent: cancelled by you",
         "will not be sent"),
        ("sending", None, True, "sending now", "sending"),
        ("uncertain", None, True, "checking whether it went out", "checking"),
        ("sent", None, True, "sent", "sent"),
        ("failed", None, True, "failed: not sent (you can retry)", "failed"),
    ],
)  # fmt: skip
def test_emails_page_says_what_will_happen_to_each_email(
    desk, met, status, reason, confirmed, said, group
):
    digest = only("digest", "ana@example.org")
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == digest.id)
            .values(status=status, cancel_reason=reason)
        )
        if not confirmed:
            person("ana@example.org").email_confirmed_at = None
        db.session.commit()
    page = desk.get(f"/organiser/events/{met.event.id}/emails").text
    assert outlook_on(page, digest.id) == said
    assert counts_on(page)[group] >= 1
    assert "pending" not in page and "cancelled (" not in page


def test_a_held_digest_reads_as_waiting_for_confirmation(app, make_event, mailbox):
    event = make_event(name="Bread and running")
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=0)
        db.session.commit()
    ana, ben = app.test_client(), app.test_client()
    ana_badge = check_in(ana, event, "Ana", "ana@example.org")
    ben_badge = check_in(ben, event, "Ben", "ben@example.org")
    ana.post(f"/b/{ben_badge}/connect")
    ben.post(f"/b/{ana_badge}/connect")
    end_now(event)
    mailbox.deliver()  # neither has confirmed: both digests are held
    desk = app.test_client()
    login(desk, db.session.get_one(Event, event.id).organiser)
    page = desk.get(f"/organiser/events/{event.id}/emails").text
    for address in ("ana@example.org", "ben@example.org"):
        assert outlook_on(page, only("digest", address).id) == "waiting for the person to confirm"
    assert counts_on(page)["waiting for confirmation"] == 2

    # Once Ana's address is suppressed (she unsubscribed from another event's email, say),
    # her held digest is no longer waiting for anything: it will not be sent.
    with writing():
        suppress("ana@example.org", "unsubscribed")
        db.session.commit()
    page = desk.get(f"/organiser/events/{event.id}/emails").text
    ana_digest = only("digest", "ana@example.org")
    assert outlook_on(page, ana_digest.id) == "will not be sent: unsubscribed"
    assert counts_on(page)["waiting for confirmation"] == 1
    # Confirming later does not bring it back.
    with writing():
        person("ana@example.org").email_confirmed_at = utcnow()
        revive_after_confirmation(person("ana@example.org"))
        db.session.commit()
    assert states(id=ana_digest.id) == [("cancelled", "unsubscribed")]


def test_digest_preview_hides_the_attendees_private_note(desk, met):
    response = desk.get(f"/organiser/events/{met.event.id}/emails/preview/{met.ana.attendance.id}")
    assert response.status_code == 200
    assert "The people you met at Bread and running" in response.text
    assert "Ben" in response.text
    assert "sourdough" in response.text
    assert "(Their private note is shown only to them.)" in response.text
    assert "lends a dutch oven" not in response.text
    assert "swap starters" not in response.text
    # What Ben shares with Ana is for Ana: the organiser sees neither address nor links.
    assert "ben@example.org" not in response.text and "mailto:" not in response.text
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    elsewhere = desk.get(f"/organiser/events/{met.event.id}/emails/preview/999999")
    assert elsewhere.status_code == 404


def test_organiser_cancels_a_pending_email_and_retries_a_failed_one(desk, met, mailbox):
    digest = only("digest", "ana@example.org")
    cancelled = desk.post(f"/organiser/events/{met.event.id}/emails/{digest.id}/cancel")
    assert cancelled.status_code == 303
    db.session.rollback()
    assert states(id=digest.id) == [("cancelled", "cancelled by the organiser")]
    # Cancelling again finds it has moved on, and changes nothing.
    again = desk.post(
        f"/organiser/events/{met.event.id}/emails/{digest.id}/cancel", follow_redirects=True
    )
    assert "moved on since the page was loaded" in again.text

    failed = only("confirm", "ben@example.org")
    retried = desk.post(f"/organiser/events/{met.event.id}/emails/{failed.id}/retry")
    assert retried.status_code == 303
    db.session.rollback()
    message = db.session.get_one(OutboxMessage, failed.id)
    assert (message.status, message.attempts) == ("pending", 0)
    mailbox.deliver()
    assert len(mailbox.sent("ben@example.org", "confirm")) == 2
    assert states(id=failed.id) == [("sent", None)]

    end_now(met.event)
    mailbox.deliver()
    assert mailbox.sent("ana@example.org", "digest") == []
    assert len(mailbox.sent("ben@example.org", "digest")) == 1


def test_another_organiser_gets_404_on_every_email_page(
    app_factory, desk, met, make_organiser, make_event
):
    intruder = make_organiser()
    own = make_event(intruder, name="Their own")
    # A second app on the same database: requests to the fixture's app share one app
    # context, and with it Flask-Login's cached user (g._login_user) from the desk's login.
    client = app_factory().test_client()
    login(client, intruder)
    event_id = met.event.id
    pending = only("digest", "ana@example.org")
    failed = only("confirm", "ben@example.org")
    ends_at = db.session.get_one(Event, event_id).ends_at
    attempts = [
        ("get", f"/organiser/events/{event_id}/emails"),
        ("get", f"/organiser/events/{event_id}/emails/preview/{met.ana.attendance.id}"),
        ("post", f"/organiser/events/{event_id}/emails/{pending.id}/cancel"),
        ("post", f"/organiser/events/{event_id}/emails/{failed.id}/retry"),
        ("post", f"/organiser/events/{event_id}/end"),
        # Their own event with our ids in the path gets them nowhere either.
        ("get", f"/organiser/events/{own.id}/emails/preview/{met.ana.attendance.id}"),
        ("post", f"/organiser/events/{own.id}/emails/{pending.id}/cancel"),
        ("post", f"/organiser/events/{own.id}/emails/{failed.id}/retry"),
    ]
    for method, path in attempts:
        assert getattr(client, method)(path).status_code == 404, path
    assert client.get(f"/organiser/events/{own.id}/emails").status_code == 200
    db.session.rollback()
    assert states(id=pending.id) == [("pending", None)]
    assert states(id=failed.id) == [("failed", None)]
    assert db.session.get_one(Event, event_id).ends_at == ends_at
    page = client.get(f"/organiser/events/{own.id}/emails").text
    assert "Ana" not in page


def test_a_deleted_persons_old_session_never_opens_someone_else(app, make_event, mailbox):
    from tests.mail_support import check_in as check_in_phone

    event = make_event()
    phone, laptop = app.test_client(), app.test_client()
    check_in_phone(phone, event, "Alice", "alice@example.org")
    mailbox.deliver()
    confirm = mailbox.one("alice@example.org", "confirm")
    use_email_link(phone, confirm)
    # The same person is signed in on a second device, then deletes herself on the first.
    with laptop.session_transaction() as session, phone.session_transaction() as phones:
        session["me"] = phones["me"]
    assert phone.post("/me/delete", data={"confirm": "y"}).status_code == 303
    newcomer = app.test_client()
    check_in_phone(newcomer, make_event(name="Later"), "Bob", "bob@example.org")
    page = laptop.get("/me/")
    assert "bob@example.org" not in page.text
    assert "Email me a sign-in link" in page.text


def test_me_shows_what_each_connection_shares_and_nothing_more(app, ana_across_two_events, mailbox):
    ana, ben, cleo = ana_across_two_events
    with writing():
        ben_now = db.session.get_one(Attendance, ben.attendance.id)
        ben_now.person.links = ["https://ben.example/bakes"]
        ben_now.links_visibility = "connections"
        db.session.commit()
    phone = app.test_client()
    sign_in(phone, mailbox, "ana@example.org")
    page = phone.get("/me/")
    people = {
        re.search(r"<strong><bdi>(\w+)</bdi></strong>", item).group(1): item
        for item in page.text.split("<li>")[1:]
        if "Met at" in item
    }
    # Ben shows his email and links to the people he connects with: they are there, with
    # his vCard, beside my note.
    assert 'href="mailto:ben@example.org"' in people["Ben"]
    assert 'href="https://ben.example/bakes"' in people["Ben"]
    assert "My note: bread swap on Friday" in people["Ben"]
    vcard_path = re.search(r'href="(/me/connections/\d+/contact\.vcf)"', people["Ben"]).group(1)
    card = phone.get(vcard_path)
    assert card.status_code == 200 and card.mimetype == "text/vcard"
    assert "ben@example.org" in card.text and "https://ben.example/bakes" in card.text
    # Cleo shows her email to no one: not here, not in a download.
    assert "cleo@example.org" not in page.text
    assert "Cleo hasn't shared contact details yet." in shown(people["Cleo"])
    assert ".vcf" not in people["Cleo"]
    cleo_link = db.session.scalars(
        sa.select(Connection.id).where(
            sa.or_(
                Connection.low_attendance_id == cleo.attendance.id,
                Connection.high_attendance_id == cleo.attendance.id,
            )
        )
    ).first()
    assert "cleo@example.org" not in phone.get(f"/me/connections/{cleo_link}/contact.vcf").text
    # Dan never connected: nothing of his is on the page.
    assert "dan@example.org" not in page.text and "Dan" not in page.text
    # Someone else's phone, or no sign-in, gets nothing.
    assert app.test_client().get(vcard_path).status_code == 404
