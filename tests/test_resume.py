"""Resuming sending after the email service refused our key: who may, what is recorded, and
what the emails page says afterwards."""

from __future__ import annotations

import sqlalchemy as sa

from domain.db import db, utcnow, writing
from domain.models import Event, Organiser, OutboxMessage, SendingResumed
from domain.sending import pause_sending, sending_hold
from tests.conftest import PASSWORD, login
from tests.mail_support import end_now, run_worker_once


def pause() -> None:
    with writing():
        pause_sending(utcnow(), "401 unauthorized")
        db.session.commit()


def paused() -> bool:
    db.session.rollback()
    hold = sending_hold(utcnow())
    return hold is not None and hold.refused


def resumes() -> list[tuple[str, int | None]]:
    db.session.rollback()
    return [
        (row.organiser_email, row.organiser_id)
        for row in db.session.scalars(sa.select(SendingResumed).order_by(SendingResumed.id))
    ]


def client_of(app, organiser):
    client = app.test_client()
    login(client, organiser)
    return client


def test_only_the_owner_of_an_event_with_held_emails_may_resume(
    app, make_organiser, make_event, make_attendee, make_member
):
    owner = make_organiser("olga@example.org")
    event = make_event(owner, name="Held night")
    make_attendee(event, "Ana", want_followups=True)  # her confirmation waits: the pause holds it
    co_organiser, door = make_member(event, "organiser"), make_member(event, "door")
    # Another organiser owns an event with nothing waiting: the pause is not theirs to lift.
    bystander = make_organiser("bea@example.org")
    quiet = make_event(bystander, name="Quiet night")
    pause()
    path = f"/organiser/events/{event.id}/emails/resume"

    for member in (co_organiser, door):
        assert client_of(app, member).post(path).status_code == 404
    # The co-organiser sees the pause and who can lift it, but no button.
    page = client_of(app, co_organiser).get(f"/organiser/events/{event.id}/emails").text
    assert "Sending is paused" in page and "Resume sending" not in page
    assert "the owner of an event whose emails are waiting, can resume now" in page

    refused = client_of(app, bystander).post(
        f"/organiser/events/{quiet.id}/emails/resume", follow_redirects=True
    )
    assert "Only the site&#39;s administrators, or the owner of an event" in refused.text
    quiet_page = client_of(app, bystander).get(f"/organiser/events/{quiet.id}/emails").text
    assert "Resume sending" not in quiet_page
    assert client_of(app, make_organiser()).post(path).status_code == 404
    assert paused() and resumes() == []

    owners = client_of(app, owner)
    assert "Resume sending" in owners.get(f"/organiser/events/{event.id}/emails").text
    done = owners.post(path, follow_redirects=True)
    assert "Sending resumed" in done.text
    assert not paused()
    assert resumes() == [("olga@example.org", owner.id)]
    # Every emails page says who resumed and when, masked.
    [row] = db.session.scalars(sa.select(SendingResumed)).all()
    said = f"Sending was last resumed by o\u2026@example.org at {row.resumed_at:%H:%M UTC on %d %b}"
    assert said in owners.get(f"/organiser/events/{event.id}/emails").text
    assert said in client_of(app, bystander).get(f"/organiser/events/{quiet.id}/emails").text


def test_a_resume_when_not_paused_changes_nothing_and_says_so(app, client, met):
    login(client, db.session.get_one(Event, met.event.id).organiser)
    response = client.post(f"/organiser/events/{met.event.id}/emails/resume")
    assert response.status_code == 303
    assert "Sending isn&#39;t paused: nothing changed." in client.get(response.location).text
    assert resumes() == [] and not paused()


def test_installation_administrators_resume_from_their_events_list(
    app_factory, make_organiser, make_event, make_attendee
):
    app = app_factory(RAPPORT_ADMIN_EMAILS="root@example.org, Boss@Example.org")
    with app.app_context():
        admin = make_organiser("boss@example.org")  # owns no event at all
        someone = make_organiser()
        make_attendee(make_event(someone), "Ana", want_followups=True)
        pause()
        admins, other = client_of(app, admin), client_of(app, someone)

        assert "Sending is paused on the whole site" not in other.get("/organiser/").text
        assert other.post("/organiser/sending/resume").status_code == 404
        assert paused()

        listing = admins.get("/organiser/").text
        assert "Sending is paused on the whole site" in listing
        assert 'action="/organiser/sending/resume"' in listing
        done = admins.post("/organiser/sending/resume")
        assert done.status_code == 303 and done.location == "/organiser/"
        assert not paused()
        assert resumes() == [("boss@example.org", admin.id)]
        again = admins.post("/organiser/sending/resume", follow_redirects=True)
        assert "Sending isn&#39;t paused: nothing changed." in again.text
        assert len(resumes()) == 1


def test_resuming_with_a_key_still_refused_pauses_again_and_the_page_says_so(
    sendgrid_app, fake_sendgrid, met
):
    end_now(met.event)
    owner = client_of(sendgrid_app, db.session.get_one(Event, met.event.id).organiser)
    fake_sendgrid.script(401)
    run_worker_once(sendgrid_app)
    assert paused()
    page = f"/organiser/events/{met.event.id}/emails"
    assert "refused our key or sender again" not in owner.get(page).text

    assert owner.post(f"{page.removesuffix('/emails')}/emails/resume").status_code == 303
    assert not paused()
    fake_sendgrid.script(401)
    run_worker_once(sendgrid_app)  # the key is still wrong: the next send is refused again
    assert paused()
    [row] = db.session.scalars(sa.select(SendingResumed)).all()
    again = owner.get(page).text
    assert "Sending is paused" in again
    assert (
        f"Sending was resumed by o\u2026@example.org at {row.resumed_at:%H:%M UTC on %d %b}, "
        "and the email service refused our key or sender again"
    ) in again
    assert "the key is still wrong" in again
    db.session.rollback()
    statuses = set(db.session.scalars(sa.select(OutboxMessage.status)))
    assert "sent" not in statuses
    assert [r.status for r in fake_sendgrid.all_requests] == [401, 401]


def test_where_administrators_are_named_only_they_resume(
    app, make_organiser, make_event, make_attendee
):
    # Anyone may sign up, make an event and hold an email of their own: where the
    # installation names who looks after the key, an owner's held email is not enough.
    admin = make_organiser("root@example.org")
    app.config["RAPPORT_ADMIN_EMAILS"] = "Root@example.org"
    newcomer = make_organiser("new@example.org")
    event = make_event(newcomer, name="Sign-up night")
    make_attendee(event, "Ana", want_followups=True)  # her confirmation waits
    pause()
    owners = client_of(app, newcomer)
    page = owners.get(f"/organiser/events/{event.id}/emails").text
    assert "Sending is paused" in page and "Resume sending" not in page
    assert "the site's administrators can resume now." in page
    refused = owners.post(f"/organiser/events/{event.id}/emails/resume", follow_redirects=True)
    assert "Only the site&#39;s administrators can resume sending" in refused.text
    assert paused() and resumes() == []

    done = client_of(app, admin).post("/organiser/sending/resume", follow_redirects=True)
    assert "Sending resumed" in done.text
    assert not paused() and resumes() == [("root@example.org", admin.id)]


def test_a_named_administrators_address_cannot_be_taken_by_signing_up(app, client, runner):
    """Sign-up takes an address unproven: a listed administrator's account is made on the
    server, and no one can get ahead of it on the web."""
    app.config["RAPPORT_ADMIN_EMAILS"] = "root@example.org, ops@example.org"
    pause()
    for typed in ("root@example.org", " Ops@Example.ORG "):
        response = client.post(
            "/signup", data={"name": "Mallory", "email": typed, "password": "a long enough pw"}
        )
        assert response.status_code == 200
        assert "its account is made on the server" in response.text
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Organiser)) == 0
    assert client.post("/organiser/sending/resume").status_code in (302, 303, 401, 404)
    assert paused()

    made = runner.invoke(args=["organiser", "create", "root@example.org"], input=f"{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    root = db.session.scalars(sa.select(Organiser)).one()
    done = client_of(app, root).post("/organiser/sending/resume", follow_redirects=True)
    assert "Sending resumed" in done.text and not paused()
