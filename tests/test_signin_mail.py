"""Sign-in links: the person's own mail, never on an organiser's page, and capped per person."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from domain import limits
from domain.db import db, utcnow, writing
from domain.models import OutboxMessage
from tests.conftest import login
from tests.mail_support import confirm_directly, messages, states
from tests.test_followups_me import counts_on


def ask(phone, path: str, address: str, number: int):
    """Ask for a sign-in link, each time from another network address."""
    return phone.post(
        path, data={"email": address}, environ_overrides={"REMOTE_ADDR": f"10.0.{number}.1"}
    )


def as_if_asked(hours_ago: float) -> None:
    """Let time pass for every sign-in link asked for so far."""
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.kind == "signin")
            .values(created_at=utcnow() - timedelta(hours=hours_ago))
        )
        db.session.commit()


# ---------------------------------------------------------------- not the organiser's business


def test_an_organiser_never_sees_sign_in_mail_nor_a_strangers_name(
    app, make_event, make_attendee, make_organiser, mailbox
):
    make_attendee(make_event(name="Elsewhere"), "Sam Stranger", "sam@example.org")
    nosy = make_organiser()
    own = make_event(nosy, name="Own party")
    make_attendee(own, "Ana", "ana@example.org")
    phone = app.test_client()
    for address in ("sam@example.org", "ana@example.org"):
        assert (
            phone.post(f"/e/{own.checkin_token}/sign-in", data={"email": address}).status_code
            == 200
        )
    asked = messages(kind="signin")
    assert sorted(m.to_email for m in asked) == ["ana@example.org", "sam@example.org"]

    desk = app.test_client()
    login(desk, nosy)
    page = desk.get(f"/organiser/events/{own.id}/emails")
    assert page.status_code == 200
    assert "Sam" not in page.text
    assert "signin" not in page.text
    assert set(counts_on(page.text).values()) == {0}
    for message in asked:
        for action in ("cancel", "retry"):
            path = f"/organiser/events/{own.id}/emails/{message.id}/{action}"
            assert desk.post(path).status_code == 404, path
    db.session.rollback()
    assert states(kind="signin") == [("pending", None), ("pending", None)]


def test_an_organiser_sees_no_mail_of_someone_not_at_the_event(app, met, make_event):
    """A message filed under an event for someone who never came there stays hidden."""
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.to_email == "ben@example.org")
            .values(event_id=make_event(met.event.organiser, name="Other").id)
        )
        db.session.commit()
    desk = app.test_client()
    login(desk, met.event.organiser)
    other = messages(to_email="ben@example.org")[0].event_id
    page = desk.get(f"/organiser/events/{other}/emails")
    assert page.status_code == 200
    assert "Ben" not in page.text
    assert set(counts_on(page.text).values()) == {0}


# ---------------------------------------------------------------- no flooding an inbox


def test_sign_in_links_to_one_person_are_capped_per_day(app_factory, make_event, make_attendee):
    # The rate limiter would stop this many requests within an hour; the cap in the
    # database is what holds over the day, limiter or not.
    app = app_factory(RATELIMIT_ENABLED=False)
    cap = limits.SIGN_IN_LINKS_PER_DAY
    events = [make_event(name=f"Party {n}") for n in range(cap + 3)]
    ana = make_attendee(events[0], "Ana", "ana@example.org")
    for event in events[1:]:
        make_attendee(event, "Ana", "ana@example.org", person_id=ana.attendance.person_id)
    confirm_directly(ana)
    phone = app.test_client()

    answers = [
        ask(phone, f"/e/{event.checkin_token}/sign-in", "ana@example.org", n)
        for n, event in enumerate(events)
    ]
    answers.append(ask(phone, "/me/sign-in", "ana@example.org", 99))
    db.session.rollback()  # see what the other app wrote
    assert len(messages(kind="signin")) == cap
    # The answer is the same once the cap is reached, and the same as for an unknown address.
    unknown = ask(phone, f"/e/{events[-1].checkin_token}/sign-in", "nobody@example.org", 98)
    texts = {a.text.replace("ana@example.org", "ADDRESS") for a in answers}
    assert texts == {unknown.text.replace("nobody@example.org", "ADDRESS")}
    assert {a.status_code for a in answers} == {200}

    as_if_asked(hours_ago=25)
    assert ask(phone, "/me/sign-in", "ana@example.org", 97).status_code == 200
    db.session.rollback()  # see what the other app wrote
    assert len(messages(kind="signin")) == cap + 1


def test_an_unconfirmed_address_gets_one_sign_in_link_at_most(app, make_event, make_attendee):
    here, there = make_event(name="Here"), make_event(name="There")
    bea = make_attendee(here, "Bea", "bea@example.org")
    phone = app.test_client()
    first = ask(phone, f"/e/{here.checkin_token}/sign-in", "bea@example.org", 1)
    second = ask(phone, f"/e/{there.checkin_token}/sign-in", "bea@example.org", 2)
    as_if_asked(hours_ago=72)
    third = ask(phone, "/me/sign-in", "bea@example.org", 3)
    assert first.text == second.text == third.text
    assert [(m.to_email, m.event_id) for m in messages(kind="signin")] == [
        ("bea@example.org", here.id)
    ]

    # Once the address is proved, the daily cap is what counts.
    confirm_directly(bea)
    ask(phone, "/me/sign-in", "bea@example.org", 4)
    assert len(messages(kind="signin")) == 2


def test_asking_twice_in_a_row_sends_one_link(app, make_event, make_attendee):
    event = make_event()
    confirm_directly(make_attendee(event, "Ana", "ana@example.org"))
    phone = app.test_client()
    for n in range(3):
        ask(phone, f"/e/{event.checkin_token}/sign-in", "ana@example.org", n)
    assert len(messages(kind="signin")) == 1
