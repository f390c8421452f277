"""Deleting an event: the owner is asked first, types the name, and the event goes for good,
its waiting emails with it; what people kept by confirming stays theirs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.followups import update_followup_settings
from domain.models import (
    Attendance,
    Connection,
    EmailLink,
    Event,
    Invitation,
    OutboxMessage,
    Person,
    TeamMember,
)
from domain.retention import delete_event
from domain.team import invite
from tests.conftest import login, shown
from tests.mail_support import confirm_directly, end_now, run_worker_once


def connect(a, b) -> None:
    with writing():
        request_connection(a.attendance, b.attendance)
        request_connection(b.attendance, a.attendance)
        db.session.commit()


def count(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def night(make_organiser, make_event, make_attendee, make_member):
    """Ana and Ben (confirmed) and Cleo and Dan (never confirmed) at a party that ended; Ana
    and Cleo also met Eve at an earlier party. The party's digests wait for the worker."""
    owner = make_organiser("olga@example.org")
    party = make_event(owner, name="Rooftop party")
    earlier = make_event(owner, name="Earlier party")
    with writing():
        update_followup_settings(party, timing="at_end", nudge_days=7)
        update_followup_settings(earlier, timing="at_end", nudge_days=7)
        db.session.commit()
    ana = make_attendee(party, "Ana", "ana@example.org", interests=["chess"], want_followups=True)
    ben = make_attendee(party, "Ben", "ben@example.org", interests=["chess"], want_followups=True)
    cleo = make_attendee(party, "Cleo", "cleo@example.org", want_followups=True)
    dan = make_attendee(party, "Dan", "dan@example.org", want_followups=True)
    eve = make_attendee(earlier, "Eve", "eve@example.org", want_followups=True)
    ana_before = make_attendee(
        earlier, "Ana", "ana@example.org", person_id=ana.attendance.person_id, want_followups=True
    )
    cleo_before = make_attendee(
        earlier, "Cleo", "cleo@example.org", person_id=cleo.attendance.person_id
    )
    confirm_directly(ana, ben, eve)
    connect(ana, ben)
    connect(ana, cleo)
    connect(cleo, dan)
    connect(ana_before, eve)
    connect(cleo_before, eve)
    make_member(party, "door")
    with writing():
        invite(party, "helper@example.org", "organiser")
        request_connection(ben.attendance, dan.attendance)  # never accepted
        db.session.commit()
    end_now(party)
    return owner, party, earlier, {"ana": ana, "ben": ben, "cleo": cleo, "dan": dan, "eve": eve}


def test_the_owner_is_asked_first_and_must_type_the_name(
    app, client, make_organiser, make_event, make_attendee, make_member
):
    owner, party, _earlier, _people = night(make_organiser, make_event, make_attendee, make_member)
    login(client, owner)
    edit = client.get(f"/organiser/events/{party.id}/edit").text
    assert f'href="/organiser/events/{party.id}/delete"' in edit

    ask = client.get(f"/organiser/events/{party.id}/delete")
    assert ask.status_code == 200
    text = " ".join(ask.text.split())
    assert "This deletes Rooftop party for good" in text
    assert "4 check-ins, with what people showed here" in text
    assert "4 connections made here" in text  # three accepted, one only asked
    waiting = count(
        OutboxMessage,
        OutboxMessage.status == "pending",
        sa.or_(
            OutboxMessage.event_id == party.id,
            OutboxMessage.invitation_id.in_(
                sa.select(Invitation.id).where(Invitation.event_id == party.id)
            ),
        ),
    )
    assert waiting > 4  # digests, nudges, confirmations and the invitation
    assert f"{waiting} emails not sent yet: they never go out." in text
    assert "anyone who scans it gets “not found”" in text
    assert "The team: 2 co-organisers, door staff or invitations lose access" in text
    assert "2 people here confirmed their address: their own profile" in text
    assert "Type the event&#39;s name to confirm" in text

    before = (count(Event), count(Attendance), count(Connection), count(OutboxMessage))
    for typed in ("", "rooftop party", "Rooftop", "Another party"):
        refused = client.post(f"/organiser/events/{party.id}/delete", data={"name": typed})
        assert refused.status_code == 200
        assert "Type the event" in refused.text and 'class="error"' in refused.text
    assert (count(Event), count(Attendance), count(Connection), count(OutboxMessage)) == before

    done = client.post(f"/organiser/events/{party.id}/delete", data={"name": " Rooftop party "})
    assert done.status_code == 303 and done.location == "/organiser/"
    listing = shown(client.get(done.location))
    assert "Rooftop party is deleted. Its poster no longer works." in listing
    assert "Earlier party" in listing
    assert count(Event, Event.id == party.id) == 0
    assert client.get(f"/organiser/events/{party.id}").status_code == 404
    assert client.get(f"/e/{party.checkin_token}").status_code == 404


def test_deleting_removes_the_event_and_keeps_what_people_confirmed(
    app, make_organiser, make_event, make_attendee, make_member
):
    _owner, party, earlier, people = night(make_organiser, make_event, make_attendee, make_member)
    ids = {name: result.attendance.person_id for name, result in people.items()}
    earlier_connections = count(Connection, Connection.event_id == earlier.id)
    assert earlier_connections == 2
    with writing():
        counts = delete_event(db.session.get_one(Event, party.id), utcnow())
        db.session.commit()
    assert (counts.events, counts.attendances, counts.connections) == (1, 4, 4)
    assert counts.people == 1  # Dan: never confirmed, nothing left of him anywhere

    assert count(Event, Event.id == party.id) == 0
    for model in (Attendance, Connection, OutboxMessage, EmailLink, TeamMember, Invitation):
        assert count(model, model.event_id == party.id) == 0, model
    assert count(OutboxMessage, OutboxMessage.to_email == "helper@example.org") == 0
    # Ana, Ben and Eve confirmed: their profiles stay; Cleo stays for her earlier check-in.
    people_left = set(db.session.scalars(sa.select(Person.id)))
    assert {ids["ana"], ids["ben"], ids["cleo"], ids["eve"]} <= people_left
    assert ids["dan"] not in people_left
    assert db.session.get_one(Person, ids["ana"]).name == "Ana"
    # What was made at the earlier party stays as it was.
    assert count(Connection, Connection.event_id == earlier.id) == earlier_connections
    assert count(Attendance, Attendance.event_id == earlier.id) == 3


def test_waiting_emails_of_a_deleted_event_never_go_out(
    sendgrid_app, fake_sendgrid, make_organiser, make_event, make_attendee, make_member
):
    owner, party, earlier, _people = night(make_organiser, make_event, make_attendee, make_member)
    # The earlier party's email is due too: the worker runs, it just has nothing of the party.
    end_now(earlier)
    party_mail = {
        row.to_email
        for row in db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.event_id == party.id)
        )
    }
    assert {"ana@example.org", "ben@example.org"} <= party_mail
    client = sendgrid_app.test_client()
    login(client, owner)
    deleted = client.post(f"/organiser/events/{party.id}/delete", data={"name": "Rooftop party"})
    assert deleted.status_code == 303

    run_worker_once(sendgrid_app)
    sent_to = {
        recipient["email"]
        for request in fake_sendgrid.requests
        for part in request.body["personalizations"]
        for recipient in part["to"]
    }
    assert sent_to == {"eve@example.org", "ana@example.org"}  # the earlier party's digests
    assert "Rooftop" not in " ".join(request.raw.decode() for request in fake_sendgrid.requests)
    sent = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.status == "sent")).all()
    assert sent and {message.event_id for message in sent} == {earlier.id}


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("Friday  drinks", "Friday drinks"),  # the page shows two spaces as one
        ("Cafe\u0301 night", "Caf\u00e9 night"),  # the same letters, composed otherwise
        ("\u202eSecret\u202c party", "Secret party"),  # an old name with direction controls
    ],
)
def test_the_name_as_the_page_shows_it_confirms_a_deletion(
    client, make_organiser, make_event, stored, typed
):
    owner = make_organiser()
    event = make_event(owner)
    with writing():
        db.session.get(Event, event.id).name = stored
        db.session.commit()
    login(client, owner)
    done = client.post(f"/organiser/events/{event.id}/delete", data={"name": typed})
    assert done.status_code == 303
    assert count(Event, Event.id == event.id) == 0


def test_a_server_process_that_still_remembers_a_deleted_poster_answers_404(
    app_factory, make_organiser, make_event, make_attendee
):
    """Each server process remembers a poster's event for a few seconds; only the one that
    deleted it forgets it at once. Another may still show the form: a check-in or a sign-in
    request posted there is a 404 that writes nothing, not a 500."""
    from domain import caching
    from domain.checkin import find_event_by_checkin_token

    server = app_factory(LOOKUP_CACHE_SECONDS=60)
    event = make_event(make_organiser(), name="Gone tonight")
    confirm_directly(make_attendee(event, "Ana", "ana@example.org"))  # her profile stays
    poster = event.checkin_token
    phone = server.test_client()
    assert phone.get(f"/e/{poster}").status_code == 200
    with server.app_context():
        remembered = find_event_by_checkin_token(poster)
    with writing():
        delete_event(db.session.get_one(Event, event.id), utcnow())
        db.session.commit()
    # This process forgot it; put it back as another process still holds it.
    caching.remembered(caching.poster_key(poster), lambda: remembered)
    before = (count(Attendance), count(Person), count(OutboxMessage))
    guest = {"name": "Ben", "email": "ben@example.org", "want_followups": "y"}
    assert phone.post(f"/e/{poster}", data=guest).status_code == 404
    # Someone showing interests: their arrival is counted first, and refused there.
    caching.remembered(caching.poster_key(poster), lambda: remembered)
    guest = {**guest, "name": "Cleo", "email": "cleo@example.org", "interests": "chess, go"}
    assert phone.post(f"/e/{poster}", data={**guest, "share_profile": "y"}).status_code == 404
    link = phone.post(f"/e/{poster}/sign-in", data={"email": "ana@example.org"})
    assert link.status_code == 404
    assert (count(Attendance), count(Person), count(OutboxMessage)) == before
    # The process has now forgotten it too.
    assert phone.get(f"/e/{poster}").status_code == 404
