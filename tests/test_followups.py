"""Follow-up emails end to end: confirmation, who may get follow-ups, digests, connection
emails, nudges, timing, and headers. Emails are produced by the real outbox worker."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy

import pytest
import sqlalchemy as sa

from domain import limits
from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.followups import (
    CONFIRMATION_EVERY,
    followup_time,
    request_confirmation,
    update_followup_settings,
)
from domain.mailer import Email, FileMailer, SendGridMailer
from domain.models import EmailLink, Event, OutboxMessage
from domain.suppression import suppress
from tests.conftest import login, shown
from tests.fake_sendgrid import FakeSendGrid
from tests.mail_support import (
    check_in,
    clean_headers,
    confirm_directly,
    end_now,
    kind_of,
    link_in,
    make_due,
    messages,
    person,
    run_worker_once,
    states,
    use_email_link,
)
from tests.test_http_connect import Phone

# ---------------------------------------------------------------- confirmation


def test_checking_in_with_followups_ticked_sends_one_confirmation(app, make_event, mailbox):
    event = make_event(name="Sunday brunch")
    check_in(app.test_client(), event, "Ana", "Ana@Example.org")

    assert [m.kind for m in messages()] == ["confirm"]
    stats = mailbox.deliver()
    assert stats.sent == 1
    sent = mailbox.one("ana@example.org", "confirm")
    assert sent.subject == "Confirm your email address for Rapport"
    assert link_in(sent, "/m/").startswith("/m/")
    # Until the address is confirmed, nothing anyone typed goes to it: a stranger's address
    # typed with a "name" or an event name that is an advert gets no advert.
    assert "works once, for 48 hours" in sent.text
    for typed in ("Ana", "Sunday brunch"):
        assert typed not in sent.subject + sent.text + sent.html
    assert states() == [("sent", None)]
    assert person("ana@example.org").email_confirmed_at is None


def test_not_ticking_followups_queues_no_email(app, make_event, mailbox):
    event = make_event()
    check_in(app.test_client(), event, "Ana", "ana@example.org", followups=False)
    assert messages() == []
    assert mailbox.deliver().sent == 0
    assert mailbox.emails == []


def test_three_check_ins_typing_one_address_give_one_confirmation_a_day(app, make_event, mailbox):
    phone = app.test_client()
    events = [make_event(name=f"Meetup {n}") for n in range(4)]
    for event in events[:3]:
        check_in(phone, event, "Ana", "ana@example.org")
    mailbox.deliver()
    assert len(mailbox.sent("ana@example.org")) == 1
    assert [m.kind for m in messages()] == ["confirm"]

    # A day later the address may be asked once more: make the row look 25 hours old.
    day_before = utcnow() - timedelta(hours=25)
    bucket = int(day_before.timestamp() // CONFIRMATION_EVERY.total_seconds())
    with writing():
        db.session.execute(
            sa.update(OutboxMessage).values(
                created_at=day_before,
                dedupe_key=f"confirm:{person('ana@example.org').id}:{bucket}",
            )
        )
        db.session.commit()
    check_in(phone, events[3], "Ana", "ana@example.org")
    mailbox.deliver()
    assert len(mailbox.sent("ana@example.org", "confirm")) == 2


def test_an_unconfirmed_address_stops_getting_confirmations_after_a_few(app, make_event):
    event = make_event()
    check_in(app.test_client(), event, "Ana", "ana@example.org")
    for day in range(limits.CONFIRMATIONS_UNCONFIRMED + 3):
        with writing():  # two days pass, and the confirmation is asked for again
            for message in db.session.scalars(sa.select(OutboxMessage)):
                message.created_at -= timedelta(days=2)
                message.dedupe_key += f":{day}"
            request_confirmation(person("ana@example.org"), event)
            db.session.commit()
    assert [m.kind for m in messages()] == ["confirm"] * limits.CONFIRMATIONS_UNCONFIRMED

    # Once the address is confirmed, the daily spacing is all that applies.
    with writing():
        ana = person("ana@example.org")
        ana.email_confirmed_at = utcnow()
        assert request_confirmation(ana, event) is not None
        db.session.commit()


def test_confirmation_link_get_asks_and_post_confirms_once(app, make_event, mailbox):
    event = make_event()
    phone = app.test_client()
    badge = check_in(phone, event, "Ana", "ana@example.org")
    mailbox.deliver()
    path = link_in(mailbox.one("ana@example.org", "confirm"), "/m/")

    page = phone.get(path)
    assert page.status_code == 200
    assert "Confirm my email" in page.text
    assert person("ana@example.org").email_confirmed_at is None
    assert db.session.scalars(sa.select(EmailLink)).one().used_at is None
    assert "Signed in as" not in phone.get("/me/").text

    done = phone.post(path)
    assert done.status_code == 303
    # The phone that checked in goes back to the badge the confirmation was about.
    assert done.location == f"/b/{badge}"
    db.session.rollback()
    assert person("ana@example.org").email_confirmed_at is not None
    assert "Signed in as Ana (ana@example.org)" in shown(phone.get("/me/"))

    again = phone.post(path)
    assert again.status_code == 410
    assert "already been used" in again.text
    assert phone.get(path).status_code == 410
    # Another phone holding the same link gets no further.
    assert app.test_client().post(path).status_code == 410


def test_expired_confirmation_link_changes_nothing(app, make_event, mailbox):
    event = make_event()
    phone = app.test_client()
    check_in(phone, event, "Ana", "ana@example.org")
    mailbox.deliver()
    path = link_in(mailbox.one("ana@example.org", "confirm"), "/m/")
    with writing():
        db.session.execute(sa.update(EmailLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()

    assert phone.get(path).status_code == 410
    response = phone.post(path)
    assert response.status_code == 410
    assert "expired" in response.text
    db.session.rollback()
    assert person("ana@example.org").email_confirmed_at is None
    assert "Signed in as" not in phone.get("/me/").text


def test_unknown_email_link_is_404(client):
    assert client.get("/m/" + "x" * 43).status_code == 404
    assert client.post("/m/" + "x" * 43).status_code == 404


# ---------------------------------------------------------------- who may get follow-ups


def test_unconfirmed_address_gets_no_digest_until_confirmed(app, make_event, mailbox):
    event = make_event(name="Bread and running")
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=7)
        db.session.commit()
    ana, ben = app.test_client(), app.test_client()
    ana_badge = check_in(ana, event, "Ana", "ana@example.org", interests="sourdough")
    ben_badge = check_in(ben, event, "Ben", "ben@example.org", interests="sourdough")
    mailbox.deliver()
    use_email_link(ben, mailbox.one("ben@example.org", "confirm"))  # only Ben confirms
    ben.post(f"/b/{ana_badge}/connect")
    ana.post(f"/b/{ben_badge}/connect")
    end_now(event)

    mailbox.deliver()
    assert [kind_of(e) for e in mailbox.sent("ana@example.org")] == ["confirm"]
    assert len(mailbox.sent("ben@example.org", "digest")) == 1
    ana_id = person("ana@example.org").id
    assert states(person_id=ana_id, kind="digest") == [("cancelled", "unconfirmed")]

    # Confirming puts the held digest back, and it goes out.
    response = use_email_link(ana, mailbox.one("ana@example.org", "confirm"))
    assert response.status_code == 303
    db.session.rollback()
    assert states(person_id=ana_id, kind="digest") == [("pending", None)]
    mailbox.deliver()
    digest = mailbox.one("ana@example.org", "digest")
    assert "Ben" in digest.text
    assert states(person_id=ana_id, kind="digest") == [("sent", None)]


def test_no_digest_without_consent_at_that_event(app, make_event, mailbox):
    first, second = make_event(name="First"), make_event(name="Second")
    ana, ben = app.test_client(), app.test_client()
    check_in(ana, first, "Ana", "ana@example.org")
    mailbox.deliver()
    use_email_link(ana, mailbox.one("ana@example.org", "confirm"))
    # Confirmed, but at the second event she leaves the follow-up box unticked.
    ana_badge = check_in(ana, second, "Ana", "ana@example.org", followups=False)
    ben_badge = check_in(ben, second, "Ben", "ben@example.org", followups=False)
    assert len(messages(kind="confirm")) == 1
    ana.post(f"/b/{ben_badge}/connect")
    ben.post(f"/b/{ana_badge}/connect")
    with writing():
        update_followup_settings(db.session.get(Event, second.id), timing="at_end", nudge_days=7)
        db.session.commit()
    end_now(second)

    mailbox.deliver()
    assert mailbox.sent(kind="digest") == []
    ana_id = person("ana@example.org").id
    ben_id = person("ben@example.org").id
    # Without the tick there is no follow-up row at all, not even a cancelled one.
    assert states(person_id=ana_id, kind="digest") == []
    assert states(person_id=ben_id, kind="digest") == []


def test_suppressed_address_is_never_mailed(app, make_event, make_attendee, mailbox):
    event = make_event()
    with writing():
        suppress("ANA@example.org", "unsubscribed")
        db.session.commit()
    ana = make_attendee(event, "Ana", "ana@example.org", want_followups=True)
    ben = make_attendee(event, "Ben", "ben@example.org", want_followups=True)
    confirm_directly(ana, ben)
    with writing():
        request_connection(ana.attendance, ben.attendance)
        request_connection(ben.attendance, ana.attendance)
        update_followup_settings(db.session.get(Event, event.id), timing="at_end", nudge_days=7)
        db.session.commit()
    end_now(event)
    make_due()  # the nudges too

    mailbox.deliver()
    assert mailbox.sent("ana@example.org") == []
    assert {kind_of(e) for e in mailbox.sent("ben@example.org")} == {"confirm", "digest", "nudge"}
    ana_id = ana.attendance.person_id
    assert {m.kind: (m.status, m.cancel_reason) for m in messages(person_id=ana_id)} == {
        "confirm": ("cancelled", "suppressed"),
        "digest": ("cancelled", "suppressed"),
        "nudge": ("cancelled", "suppressed"),
    }


# ---------------------------------------------------------------- the digest


def test_digest_names_the_other_person_shared_interest_and_only_my_note(
    app, make_organiser, make_event, mailbox
):
    organiser = make_organiser()
    event = make_event(organiser, name="Bread and running")
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=7)
        db.session.commit()
    ana, ben = app.test_client(), app.test_client()
    ana_badge = check_in(ana, event, "Ana", "ana@example.org", interests="sourdough, marathons")
    ben_badge = check_in(ben, event, "Ben", "ben@example.org", interests="sourdough, chess")
    mailbox.deliver()
    for phone, address in ((ana, "ana@example.org"), (ben, "ben@example.org")):
        use_email_link(phone, mailbox.one(address, "confirm"))
    assert ben.post(f"/b/{ana_badge}/connect", data={"note": "swap starters"}).status_code == 303
    assert ana.post(f"/b/{ben_badge}/connect", data={"note": "dutch oven"}).status_code == 303

    mailbox.deliver()
    assert mailbox.sent(kind="digest") == []  # not before the event ends

    desk = app.test_client()
    login(desk, organiser)
    ended = desk.post(f"/organiser/events/{event.id}/end")
    assert ended.status_code == 303
    assert ended.location == f"/organiser/events/{event.id}"

    mailbox.deliver()
    to_ana = mailbox.one("ana@example.org", "digest")
    to_ben = mailbox.one("ben@example.org", "digest")
    assert to_ana.subject == to_ben.subject == "The people you met at Bread and running"
    for digest, other in ((to_ana, "Ben"), (to_ben, "Ana")):
        assert f"* {other}" in digest.text
        assert "You both like: sourdough\n" in digest.text
        assert "sourdough" in digest.html
        assert other in digest.html
        assert digest.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert digest.headers["List-Unsubscribe"].startswith("<http://rapport.test/u/")
        assert clean_headers(digest)
    assert "Your note: dutch oven" in to_ana.text
    assert "dutch oven" in to_ana.html
    assert "swap starters" not in to_ana.text + to_ana.html
    assert "Your note: swap starters" in to_ben.text
    assert "dutch oven" not in to_ben.text + to_ben.html
    # Each side sees the other's address: shared with connections by default.
    assert "Email: ben@example.org" in to_ana.text

    # The digest's contact link gives Ben's card.
    card = app.test_client().get(link_in(to_ana, "/f/", "/contacts/"))
    assert card.status_code == 200
    assert card.mimetype == "text/vcard"
    assert "FN:Ben" in card.text

    # Exactly one each, however often the worker runs.
    mailbox.deliver()
    assert len(mailbox.sent(kind="digest")) == 2
    # Nudges wait a week after the digest.
    end = db.session.get(Event, event.id).ends_at
    nudges = messages(kind="nudge")
    assert len(nudges) == 2
    assert {(m.status, m.send_after) for m in nudges} == {("pending", end + timedelta(days=7))}


def test_connection_after_the_digest_gets_its_own_email(met, make_attendee, mailbox):
    end_now(met.event)
    mailbox.deliver()
    assert len(mailbox.sent("ana@example.org", "digest")) == 1
    cleo = make_attendee(
        met.event, "Cleo", "cleo@example.org", interests=["marathons"], want_followups=True
    )
    confirm_directly(cleo)
    with writing():
        request_connection(cleo.attendance, met.ana.attendance)
        request_connection(met.ana.attendance, cleo.attendance)
        db.session.commit()

    mailbox.deliver()
    assert len(mailbox.sent("ana@example.org", "digest")) == 1
    late = mailbox.one("ana@example.org", "connection")
    assert late.subject == "You connected with someone at Bread and running"
    assert "* Cleo" in late.text
    assert "You both like: marathons" in late.text
    assert "Ben" not in late.text
    # For Cleo it is her first follow-up: a digest naming Ana.
    assert "* Ana" in mailbox.one("cleo@example.org", "digest").text
    assert mailbox.sent("ben@example.org", "connection") == []


def test_nudge_goes_a_week_later_unless_we_have_been_in_touch(app, met, mailbox):
    end_now(met.event)
    mailbox.deliver()
    to_ana = mailbox.one("ana@example.org", "digest")
    end = db.session.get(Event, met.event.id).ends_at
    assert {m.send_after for m in messages(kind="nudge")} == {end + timedelta(days=7)}

    path = link_in(to_ana, "/f/", "/in-touch/")
    assert path.endswith(f"/in-touch/{met.connection.id}")
    browser = app.test_client()
    question = browser.get(path)
    assert question.status_code == 200
    assert "Have you been in touch with Ben?" in question.text
    assert states(kind="nudge") == [("pending", None)] * 2

    answered = browser.post(path)
    assert answered.status_code == 200
    assert "you're in touch with Ben" in answered.text
    db.session.rollback()
    assert states(kind="nudge") == [("cancelled", "in_touch")] * 2
    assert db.session.get(type(met.connection), met.connection.id).in_touch_at is not None

    make_due()
    mailbox.deliver()
    assert mailbox.sent(kind="nudge") == []


def test_nudge_is_sent_when_due_and_names_the_other(met, mailbox):
    end_now(met.event)
    mailbox.deliver()
    assert make_due(OutboxMessage.kind == "nudge") == 2
    mailbox.deliver()
    to_ana = mailbox.one("ana@example.org", "nudge")
    assert to_ana.subject == "Have you been in touch since Bread and running?"
    assert "you met Ben at Bread and running" in to_ana.text
    assert "you met Ana" in mailbox.one("ben@example.org", "nudge").text


@pytest.mark.parametrize("how", ["remove", "block"])
def test_removing_or_blocking_cancels_the_nudges(app, met, mailbox, how):
    phone = Phone(app, met.ana)
    response = phone.post(f"/b/{met.ana.badge_token}/connections/{met.connection.id}/{how}")
    assert response.status_code == 303
    db.session.rollback()
    reason = {"remove": "connection_removed", "block": "blocked"}[how]
    assert states(kind="nudge") == [("cancelled", reason)] * 2

    end_now(met.event)
    make_due()
    mailbox.deliver()
    assert [kind_of(e) for e in mailbox.emails if kind_of(e) != "confirm"] == []
    assert states(kind="digest") == [("cancelled", "nothing_to_send")] * 2


def test_changing_followup_settings_reschedules_waiting_emails(
    app, make_organiser, make_event, make_attendee
):
    organiser = make_organiser()
    start = datetime(2031, 3, 4, 18, 0)
    event = make_event(organiser, name="Spring social")
    ana = make_attendee(event, "Ana", "ana@example.org", want_followups=True)
    ben = make_attendee(event, "Ben", "ben@example.org", want_followups=True)
    retime(event, start, start + timedelta(hours=3))
    with writing():
        request_connection(ana.attendance, ben.attendance)
        request_connection(ben.attendance, ana.attendance)
        db.session.commit()
    # Default: 09:00 London time the morning after, and a nudge a week later.
    morning = datetime(2031, 3, 5, 9, 0, tzinfo=UTC)  # London is on GMT in early March
    assert {m.send_after for m in messages(kind="digest")} == {morning}
    assert {m.send_after for m in messages(kind="nudge")} == {morning + timedelta(days=7)}

    desk = app.test_client()
    login(desk, organiser)
    form = {
        "name": "Spring social",
        "starts_at": "2031-03-04T18:00",
        "ends_at": "2031-03-04T21:00",
        "timezone": "Europe/London",
        "venue": "",
        "description": "",
        "followup_timing": "at_end",
        "nudge_days": "14",
    }
    assert desk.post(f"/organiser/events/{event.id}/edit", data=form).status_code == 303
    db.session.rollback()
    end = datetime(2031, 3, 4, 21, 0, tzinfo=UTC)
    assert {(m.send_after, m.next_attempt_at) for m in messages(kind="digest")} == {(end, end)}
    assert {m.send_after for m in messages(kind="nudge")} == {end + timedelta(days=14)}

    form["nudge_days"] = "0"
    assert desk.post(f"/organiser/events/{event.id}/edit", data=form).status_code == 303
    db.session.rollback()
    assert states(kind="nudge") == [("cancelled", "cadence_off")] * 2
    assert states(kind="digest") == [("pending", None)] * 2


def test_next_morning_is_nine_local_the_day_after_the_end(app, make_event, make_attendee):
    # 21:30 in New York on 15 January is 02:30 UTC on the 16th (EST, no DST change near).
    event = make_event(name="Late night", timezone="America/New_York")
    assert event.followup_timing == "next_morning"
    ana = make_attendee(event, "Ana", "ana@example.org", want_followups=True)
    ben = make_attendee(event, "Ben", "ben@example.org", want_followups=True)
    retime(event, datetime(2030, 1, 15, 19, 0), datetime(2030, 1, 15, 21, 30))
    with writing():
        request_connection(ana.attendance, ben.attendance)
        request_connection(ben.attendance, ana.attendance)
        db.session.commit()
    nine_in_new_york = datetime(2030, 1, 16, 14, 0, tzinfo=UTC)
    assert {m.send_after for m in messages(kind="digest")} == {nine_in_new_york}
    assert {m.send_after for m in messages(kind="nudge")} == {nine_in_new_york + timedelta(days=7)}


def test_ending_early_with_next_morning_counts_from_now(app, met):
    from zoneinfo import ZoneInfo

    with writing():
        event = db.session.get(Event, met.event.id)
        update_followup_settings(event, timing="next_morning", nudge_days=7)
        event.timezone = "America/New_York"
        db.session.commit()
    end_now(met.event)
    zone = ZoneInfo("America/New_York")
    ended = db.session.get(Event, met.event.id).ends_at.astimezone(zone)
    expected = datetime(ended.year, ended.month, ended.day, 9, 0, tzinfo=zone)
    if expected - ended < timedelta(hours=4):  # the first 09:00 after a night's rest
        expected += timedelta(days=1)
    assert {m.send_after for m in messages(kind="digest")} == {expected.astimezone(UTC)}


@pytest.mark.parametrize(
    ("ends", "due"),
    [
        (datetime(2030, 1, 15, 21, 30), datetime(2030, 1, 16, 9, 0)),  # a dinner: next day
        (datetime(2030, 1, 16, 2, 0), datetime(2030, 1, 16, 9, 0)),  # a party: same morning
        (datetime(2030, 1, 16, 4, 59), datetime(2030, 1, 16, 9, 0)),
        (datetime(2030, 1, 16, 5, 30), datetime(2030, 1, 17, 9, 0)),  # too short a night
        (datetime(2030, 1, 16, 11, 0), datetime(2030, 1, 17, 9, 0)),  # a brunch: next day
    ],
)
def test_the_morning_after_comes_after_a_night_not_a_day_late(app, make_event, ends, due):
    from zoneinfo import ZoneInfo

    event = make_event(name="Late night", timezone="Europe/Berlin")
    retime(event, ends - timedelta(hours=3), ends)
    expected = due.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    assert followup_time(db.session.get(Event, event.id)) == expected


# ---------------------------------------------------------------- header safety


def test_subjects_and_headers_have_no_line_breaks_with_a_hostile_event_name(
    app, met, mailbox, tmp_path
):
    hostile = "Meetup\r\nBcc: everyone@example.net\nX-Evil: 1\u2028"
    with writing():
        db.session.execute(sa.update(Event).values(name=hostile))
        db.session.commit()
    cleo = Phone(app)  # a new check-in queues a confirmation
    check_in(cleo.client, met.event, "Cleo", "cleo@example.org")
    end_now(met.event)
    make_due()

    mailbox.deliver()
    assert {kind_of(e) for e in mailbox.emails} == {"confirm", "digest", "nudge"}
    for sent in mailbox.emails:
        assert clean_headers(sent), sent.subject
        if kind_of(sent) != "confirm":  # the one kind that names no event
            assert "Bcc:" in sent.subject  # the text stays, on one line
    digest = next(sent for sent in mailbox.emails if kind_of(sent) == "digest")
    assert digest.subject == "The people you met at Meetup Bcc: everyone@example.net X-Evil: 1"

    # What SendGrid would get: one recipient, no copies, a clean subject.
    sendgrid = SendGridMailer("SG.test", "Rapport <hello@rapport.example>")
    for sent in mailbox.emails:
        payload = sendgrid.payload(sent)
        (personalization,) = payload["personalizations"]
        assert personalization["to"] == [{"email": sent.to}]
        assert "cc" not in personalization
        assert "bcc" not in personalization
        assert "\r" not in personalization["subject"]
        assert "\n" not in personalization["subject"]

    # And the .eml writer: one To, no Bcc, a one-line Subject.
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.kind == "digest")
            .values(status="pending", next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    run_worker_once(app, FileMailer(tmp_path / "mail", "Rapport <hello@rapport.example>"))
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    for path in files:
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert parsed.get_all("Bcc") is None
        assert len(parsed.get_all("To")) == 1
        assert "\n" not in str(parsed["Subject"])
        assert str(parsed["Subject"]).startswith("The people you met at Meetup Bcc:")


def test_ticking_follow_ups_later_queues_them_and_unticking_cancels(app, make_event, mailbox):
    event = make_event()
    ana, ben = app.test_client(), app.test_client()
    ana_badge = check_in(ana, event, "Ana", "ana@example.org", followups=False)
    ben_badge = check_in(ben, event, "Ben", "ben@example.org")
    ana.post(f"/b/{ben_badge}/connect")
    ben.post(f"/b/{ana_badge}/connect")
    ana_id = person("ana@example.org").id
    assert states(person_id=ana_id, kind="digest") == []
    form = {
        "name": "Ana",
        "want_followups": "y",
        **{f"{field}_visibility": "everyone" for field in ("about", "interests", "talk", "links")},
        "email_visibility": "connections",
    }
    assert ana.post(f"/b/{ana_badge}/edit", data=form).status_code == 303
    assert states(person_id=ana_id, kind="digest") == [("pending", None)]
    assert len(messages(kind="confirm", person_id=ana_id)) == 1
    del form["want_followups"]
    assert ana.post(f"/b/{ana_badge}/edit", data=form).status_code == 303
    assert states(person_id=ana_id, kind="digest") == [("cancelled", "no_consent")]
    # Ticked again before it went: the same digest is back, not a mail per connection.
    form["want_followups"] = "y"
    assert ana.post(f"/b/{ana_badge}/edit", data=form).status_code == 303
    assert states(person_id=ana_id, kind="digest") == [("pending", None)]
    assert states(person_id=ana_id, kind="connection") == []


def retime(event: Event, starts: datetime, ends: datetime) -> None:
    """Move an event, after its people checked in, to wall-clock times in its time zone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(event.timezone)
    with writing():
        moved = db.session.get_one(Event, event.id)
        moved.starts_at = starts.replace(tzinfo=zone)
        moved.ends_at = ends.replace(tzinfo=zone)
        db.session.commit()


# ---------------------------------------------------------------- a late confirmation


def _sent_through_fake(fake: FakeSendGrid) -> list[tuple[str, str, str]]:
    """Return (to, subject, text) of each email the fake SendGrid accepted."""
    found = []
    for request in fake.requests:
        body = request.body
        text = next(part["value"] for part in body["content"] if part["type"] == "text/plain")
        personalization = body["personalizations"][0]
        subject = personalization.get("subject") or body["subject"]
        found.append((personalization["to"][0]["email"], subject, text))
    return found


def test_a_late_confirmation_sends_each_connection_in_exactly_one_email(
    sendgrid_app, fake_sendgrid, make_event
):

    def deliver() -> None:
        run_worker_once(sendgrid_app)

    event = make_event(name="Bread and running")
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=0)
        db.session.commit()
    ana, ben, cleo = (sendgrid_app.test_client() for _ in range(3))
    ana_badge = check_in(ana, event, "Ana", "ana@example.org")
    ben_badge = check_in(ben, event, "Ben", "ben@example.org")
    cleo_badge = check_in(cleo, event, "Cleo", "cleo@example.org")
    with writing():
        for address in ("ana@example.org", "ben@example.org"):
            person(address).email_confirmed_at = utcnow()
        db.session.commit()

    # Cleo connects with Ana; the event ends; her digest is held, as she hasn't confirmed.
    cleo.post(f"/b/{ana_badge}/connect")
    ana.post(f"/b/{cleo_badge}/connect")
    end_now(event)
    deliver()
    cleo_id = person("cleo@example.org").id
    assert states(person_id=cleo_id, kind="digest") == [("cancelled", "unconfirmed")]

    # Then she connects with Ben, and then confirms.
    cleo.post(f"/b/{ben_badge}/connect")
    ben.post(f"/b/{cleo_badge}/connect")
    confirm = next(
        Email(to, subject, text, "")
        for to, subject, text in _sent_through_fake(fake_sendgrid)
        if to == "cleo@example.org" and subject.startswith("Confirm")
    )
    assert use_email_link(cleo, confirm).status_code == 303
    deliver()

    to_cleo = [
        (subject, text)
        for to, subject, text in _sent_through_fake(fake_sendgrid)
        if to == "cleo@example.org" and not subject.startswith("Confirm")
    ]
    for name in ("Ana", "Ben"):
        naming = [subject for subject, text in to_cleo if f"* {name}" in text]
        assert len(naming) == 1, (name, to_cleo)
    assert [subject for subject, _ in to_cleo] == ["The people you met at Bread and running"]
    for other in ("ana@example.org", "ben@example.org"):
        mentions = [
            subject
            for to, subject, text in _sent_through_fake(fake_sendgrid)
            if to == other and "Cleo" in text
        ]
        assert len(mentions) == 1, (other, mentions)
