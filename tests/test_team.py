"""An event's team: what each role may do, and invitations that work once, until they expire."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain.db import db, utcnow, writing
from domain.models import Invitation, OutboxMessage, TeamMember
from domain.team import (
    PERMISSIONS,
    Action,
    Role,
    TeamError,
    allows,
    event_for,
    invite,
    role_on,
)
from domain.tokens import hash_token
from tests.conftest import PUBLIC_URL, login
from tests.mail_support import run_worker_once

# ---------------------------------------------------------------- role permissions (domain)


def test_the_owner_may_do_everything():
    assert PERMISSIONS[Role.OWNER] == frozenset(Action)


def test_a_co_organiser_may_do_everything_but_delete_the_event_and_manage_the_team():
    # Nor lift a pause on sending: that sends everyone's mail on the one shared key.
    assert {action for action in Action if not allows(Role.ORGANISER, action)} == {
        Action.DELETE,
        Action.TEAM,
        Action.RESUME,
    }


def test_door_staff_work_the_door_and_see_the_list_and_nothing_else():
    assert {action for action in Action if allows(Role.DOOR, action)} == {
        Action.ATTENDEES,
        Action.DOOR,
        Action.PRINT_BADGES,
    }
    for refused in (Action.CSV, Action.EMAILS, Action.SETTINGS, Action.NOTES, Action.TEAM):
        assert not allows(Role.DOOR, refused)


def test_event_for_scopes_every_lookup_by_role(make_organiser, make_event, make_member):
    owner, stranger = make_organiser(), make_organiser()
    event = make_event(owner)
    door = make_member(event, "door")
    co = make_member(event, "organiser")
    for action in Action:
        assert event_for(owner, event.id, action) == event
        assert event_for(stranger, event.id, action) is None
        assert (event_for(co, event.id, action) == event) is allows(Role.ORGANISER, action)
        assert (event_for(door, event.id, action) == event) is allows(Role.DOOR, action)
    assert (role_on(owner, event), role_on(co, event), role_on(door, event)) == (
        Role.OWNER,
        Role.ORGANISER,
        Role.DOOR,
    )
    assert role_on(stranger, event) is None
    # Another event of the same owner is not the member's.
    other = make_event(owner)
    assert event_for(door, other.id, Action.ATTENDEES) is None


# ---------------------------------------------------------------- invitations over HTTP


def deliver(app):
    """Send what is due through the real SendGrid client, to the fake server."""
    run_worker_once(app)


def invitation_link(fake, to: str) -> str:
    bodies = [
        request.body
        for request in fake.requests
        if request.body["personalizations"][0]["to"][0]["email"] == to
    ]
    assert len(bodies) == 1, len(bodies)
    text = next(part["value"] for part in bodies[-1]["content"] if part["type"] == "text/plain")
    match = re.search(rf"{re.escape(PUBLIC_URL)}(/team/join/[\w-]+)", text)
    assert match, text
    return match.group(1)


def test_an_invitation_goes_through_the_outbox_and_works_once(
    sendgrid_app, fake_sendgrid, make_organiser, make_event
):
    app = sendgrid_app
    owner = make_organiser(name="Olga")
    event = make_event(owner, name="Rooftop party")
    dana = make_organiser("dana@example.org", name="Dana")
    owner_client, dana_client = app.test_client(), app.test_client()
    login(owner_client, owner)
    response = owner_client.post(
        f"/organiser/events/{event.id}/team", data={"email": "Dana@Example.org ", "role": "door"}
    )
    assert response.status_code == 303
    assert "dana@example.org" in owner_client.get(response.location).text

    deliver(app)
    path = invitation_link(fake_sendgrid, "dana@example.org")
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 43  # 256 bits, URL-safe
    # Only the hash is kept, and the email carries nothing anyone typed.
    stored = db.session.scalars(sa.select(Invitation)).one()
    assert stored.token_hash == hash_token(token)
    mail = fake_sendgrid.requests[-1].body
    assert "Rooftop party" not in str(mail) and "Olga" not in str(mail)

    # Signed out, the page names no event: only the address it is for.
    page = dana_client.get(path)
    assert page.status_code == 200
    assert "dana@example.org" in page.text and "Rooftop party" not in page.text
    # Its "Log in" and "Create an account" open with the address filled in.
    links = re.findall(r'href="(/(?:login|signup)\?[^"]+)"', page.text)
    assert len(links) == 2
    for link in links:
        form = dana_client.get(link.replace("&amp;", "&")).text
        assert 'value="dana@example.org"' in form, link
    login(dana_client, dana)
    page = dana_client.get(path)
    assert "Rooftop party" in page.text and "door staff" in page.text
    joined = dana_client.post(path)
    assert joined.status_code == 303
    assert joined.location == f"/organiser/events/{event.id}/door"
    assert dana_client.get(joined.location).status_code == 200
    assert role_on(dana, event) == Role.DOOR

    # Single use: a second tap, or anyone else with the link, gets nowhere.
    again = dana_client.post(path)
    assert again.status_code == 404 and "already been used" in again.text
    eve = make_organiser("eve@example.org")
    eve_client = app.test_client()
    login(eve_client, eve)
    assert eve_client.post(path).status_code == 404
    assert role_on(eve, event) is None


def test_an_invitation_expires(client, make_organiser, make_event):
    owner = make_organiser()
    event = make_event(owner)
    dana = make_organiser("dana@example.org")
    with writing():
        invitation = invite(event, "dana@example.org", "organiser")
        invitation.token_hash = hash_token("a" * 43)
        invitation.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    login(client, dana)
    response = client.post("/team/join/" + "a" * 43)
    assert response.status_code == 404 and "expired" in response.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TeamMember)) == 0


def test_an_invitation_is_for_the_address_it_was_sent_to(client, make_organiser, make_event):
    event = make_event(make_organiser())
    with writing():
        invitation = invite(event, "dana@example.org", "organiser")
        invitation.token_hash = hash_token("b" * 43)
        db.session.commit()
    mallory = make_organiser("mallory@example.org")
    login(client, mallory)
    page = client.get("/team/join/" + "b" * 43)
    assert "This invitation is for dana@example.org" in page.text
    assert event.name not in page.text
    response = client.post("/team/join/" + "b" * 43)
    assert response.status_code == 400
    assert role_on(mallory, event) is None
    db.session.refresh(invitation)
    assert invitation.used_at is None  # still Dana's to use


def test_a_new_invitation_replaces_the_waiting_one_and_withdrawing_ends_it(
    client, make_organiser, make_event
):
    owner = make_organiser()
    event = make_event(owner)
    login(client, owner)
    for role in ("door", "organiser"):
        client.post(
            f"/organiser/events/{event.id}/team", data={"email": "d@example.org", "role": role}
        )
    invitations = list(db.session.scalars(sa.select(Invitation).order_by(Invitation.id)))
    assert [i.revoked_at is not None for i in invitations] == [True, False]
    first_mail = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.invitation_id == invitations[0].id)
    ).one()
    assert (first_mail.status, first_mail.cancel_reason) == ("cancelled", "revoked")
    response = client.post(
        f"/organiser/events/{event.id}/team/invitations/{invitations[1].id}/revoke"
    )
    assert response.status_code == 303
    db.session.refresh(invitations[1])
    assert invitations[1].revoked_at is not None
    assert "Invitations waiting" not in client.get(f"/organiser/events/{event.id}/team").text


def test_the_team_page_refuses_bad_invitations_with_a_clear_message(
    client, make_organiser, make_event
):
    owner = make_organiser("olga@example.org")
    event = make_event(owner)
    login(client, owner)
    own = client.post(
        f"/organiser/events/{event.id}/team", data={"email": "olga@example.org", "role": "door"}
    )
    assert own.status_code == 200 and "owner&#39;s own address" in own.text
    odd = client.post(
        f"/organiser/events/{event.id}/team", data={"email": "x@example.org", "role": "owner"}
    )
    assert odd.status_code == 200 and "Not a valid choice" in odd.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0


def test_invitations_per_owner_are_capped_each_day(make_organiser, make_event):
    from domain.limits import INVITATIONS_PER_DAY

    owner = make_organiser()
    first, second = make_event(owner), make_event(owner)
    with writing():
        for number in range(INVITATIONS_PER_DAY):
            invite(first if number % 2 else second, f"p{number}@example.org", "door")
        with pytest.raises(TeamError) as refused:
            invite(first, "one-more@example.org", "door")
        db.session.rollback()
    assert refused.value.code == "too_many"


def test_the_owner_takes_someone_off_the_team(client, make_organiser, make_event, make_member):
    owner = make_organiser()
    event = make_event(owner)
    door = make_member(event, "door")
    member_id = db.session.scalar(sa.select(TeamMember.id))
    login(client, owner)
    assert "door staff" in client.get(f"/organiser/events/{event.id}/team").text
    response = client.post(f"/organiser/events/{event.id}/team/members/{member_id}/remove")
    assert response.status_code == 303
    assert role_on(door, event) is None
    door_client = client.application.test_client()
    login(door_client, door)
    assert door_client.get(f"/organiser/events/{event.id}/door").status_code == 404


def test_a_page_not_for_my_role_says_so_in_an_organisers_words(
    app, client, make_event, make_member
):
    event = make_event()
    login(client, make_member(event, "organiser"))
    refused = client.get(f"/organiser/events/{event.id}/team")
    assert refused.status_code == 404
    assert "your account can&#39;t open it" in refused.text
    assert "scanned a code" not in refused.text
    # The same words for an event that does not exist: a refusal tells nothing more.
    missing = client.get("/organiser/events/999999/team")
    assert missing.status_code == 404 and missing.text == refused.text
    # A phone's unknown badge keeps the words for a scanned code.
    assert "scanned a code" in client.get(f"/b/{'x' * 43}").text
