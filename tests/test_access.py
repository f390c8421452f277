"""Who may reach which route: the authorization matrix, tenant isolation, and CSRF.

Every route is classified below for each of six people: the event's owner, a co-organiser
and door staff on its team, another organiser, an attendee's phone and an anonymous
visitor. A new route without a classification fails these tests.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from blueprints.extensions import limiter
from domain.db import db
from domain.models import (
    Attendance,
    Event,
    Interest,
    Invitation,
    Organiser,
    OutboxMessage,
    Person,
    TeamMember,
)
from tests.conftest import csrf_token_from, login

OWNER, ORGANISER, DOOR, OTHER, ATTENDEE, ANONYMOUS = (
    "owner",
    "organiser",
    "door",
    "other organiser",
    "attendee",
    "anonymous",
)
ROLES = (OWNER, ORGANISER, DOOR, OTHER, ATTENDEE, ANONYMOUS)
TEAM = (OWNER, ORGANISER, DOOR)
# What each person gets: the page ("ok"); "404", the same as for an event that doesn't
# exist; "login", sent to log in; "token", opened by a capability token alone, whoever
# holds it (tested on their own below and elsewhere).
OK, NOT_FOUND, LOGIN, TOKEN = "ok", "404", "login", "token"


def event_route(*allowed: str) -> dict[str, str]:
    """An organiser route about one event: the roles named may use it, no one else."""
    return {
        **{role: OK if role in allowed else NOT_FOUND for role in (*TEAM, OTHER)},
        ATTENDEE: LOGIN,
        ANONYMOUS: LOGIN,
    }


EVERYONE_ON_THE_TEAM = event_route(OWNER, ORGANISER, DOOR)
ORGANISERS = event_route(OWNER, ORGANISER)
OWNER_ONLY = event_route(OWNER)
ANY_ORGANISER = {**dict.fromkeys((*TEAM, OTHER), OK), ATTENDEE: LOGIN, ANONYMOUS: LOGIN}
BY_TOKEN = dict.fromkeys(ROLES, TOKEN)

# Routes about one organiser's community (the night's is its owner's): anyone else, a 404.
COMMUNITY_SCOPED = {"communities.show", "communities.attach", "communities.detach"}

MATRIX: dict[str, dict[str, str]] = {
    # Organiser pages not about one event: each shows only the organiser's own events.
    "organiser.events": ANY_ORGANISER,
    "organiser.new_event": ANY_ORGANISER,
    # The attendee list: the whole team (door staff see names and what people show all).
    "organiser.attendees": EVERYONE_ON_THE_TEAM,
    "organiser.attendees_live": EVERYONE_ON_THE_TEAM,
    # The door desk and printed badges (a badge QR is a capability: only the team prints).
    "door.desk": EVERYONE_ON_THE_TEAM,
    "door.check_in": EVERYONE_ON_THE_TEAM,
    "door.scan": EVERYONE_ON_THE_TEAM,
    "door.count": EVERYONE_ON_THE_TEAM,
    "door.badges": EVERYONE_ON_THE_TEAM,
    "door.badges_download": EVERYONE_ON_THE_TEAM,
    # No CSV, no emails, no settings, no poster for door staff.
    "organiser.attendees_csv": ORGANISERS,
    "organiser.edit_event": ORGANISERS,
    "organiser.poster": ORGANISERS,
    "organiser.poster_svg": ORGANISERS,
    "organiser.rotate": ORGANISERS,
    "organiser.end": ORGANISERS,
    "organiser.emails": ORGANISERS,
    "organiser.preview": ORGANISERS,
    "organiser.cancel": ORGANISERS,
    "organiser.retry": ORGANISERS,
    # Sending is paused for the whole site (one key): lifting it is the owner's, when the
    # pause holds their event's emails, or an administrator's (RAPPORT_ADMIN_EMAILS), of
    # whom none of these six is (tests/test_resume.py).
    "organiser.resume": OWNER_ONLY,
    "organiser.resume_all": event_route(),
    # Pictures of the room: who met whom is not the door's business.
    "organiser.pictures": ORGANISERS,
    "organiser.pictures_live": ORGANISERS,
    # A community is its owner's: their list of communities, and each one of them.
    "communities.index": ANY_ORGANISER,
    **dict.fromkeys(COMMUNITY_SCOPED, OWNER_ONLY),
    # Deleting the event is its owner's alone.
    "organiser.delete_event": OWNER_ONLY,
    # The team is the owner's alone.
    "team.team": OWNER_ONLY,
    "team.revoke": OWNER_ONLY,
    "team.remove": OWNER_ONLY,
    # Anyone may open these; they reach an event's data only through a capability token.
    **dict.fromkeys(
        (
            "static",
            "public.home",
            "auth.signup",
            "auth.login",
            "auth.logout",
            "public.landing",
            "public.sign_in_link",
            "badge.view",
            "badge.connect",
            "badge.block_owner",
            "team.join",
            # Links in emails: each opens only with its own token.
            "maillinks.sign_in",
            "maillinks.unsubscribe_page",
            "maillinks.unsubscribe",
            "maillinks.contact",
            "maillinks.in_touch",
            "maillinks.event_calendar",
            "webhooks.sendgrid_events",
        ),
        BY_TOKEN,
    ),
}
# Routes about my own badge: only the phone holding it may use them; anyone else gets 404.
BADGE_OWNER = {
    "badge.edit",
    "badge.resend_confirmation_mail",
    "badge.preview",
    "badge.share_my_email",
    "badge.stop_sharing_my_email",
    "badge.forget",
    "badge.live",
    "badge.live_people",
    "badge.connect_suggestion",
    "badge.accept",
    "badge.decline",
    "badge.remove",
    "badge.remove_met_before",
    "badge.block_connection",
    "badge.note",
    "badge.contact",
}
# /me: only the person this device signed in as, through an email link.
ME = {
    "me.home",
    "me.request_link",
    "me.profile",
    "me.data",
    "me.delete",
    "me.sign_out",
    "me.contact",
    "me.remove",
}
MATRIX |= dict.fromkeys(BADGE_OWNER | ME, BY_TOKEN)
# The only routes a POST reaches without a CSRF token, each authenticated its own way.
CSRF_EXEMPT = {"maillinks.unsubscribe", "webhooks.sendgrid_events"}


def state_changing_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            yield rule, method


def row_counts():
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (
            Organiser,
            Event,
            Person,
            Attendance,
            Interest,
            TeamMember,
            Invitation,
            OutboxMessage,
        )
    )


def test_every_route_is_classified_for_every_role(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(MATRIX), endpoints ^ set(MATRIX)
    for endpoint, classes in MATRIX.items():
        assert set(classes) == set(ROLES), endpoint
        assert set(classes.values()) <= {OK, NOT_FOUND, LOGIN, TOKEN}, endpoint


@pytest.fixture
def night(make_organiser, make_event, make_member, make_attendee, app_factory):
    """An event with its owner, a co-organiser, door staff, a stranger organiser and a guest."""
    from domain.communities import attach_event, create_community
    from domain.connections import accept_connection, request_connection
    from domain.team import invite

    owner = make_organiser(name="Olga Owner")
    event = make_event(owner, name="Owner's secret party")
    people = {
        OWNER: owner,
        ORGANISER: make_member(event, "organiser"),
        DOOR: make_member(event, "door"),
        OTHER: make_organiser(),
    }
    spare = make_member(event, "door")  # the one the owner takes off the team
    guest = make_attendee(
        event, "Gus Guest", "gus@example.org", interests=["chess"], want_followups=True
    )
    friend = make_attendee(event, "Fay Friend", interests=["chess"])
    # Gus met someone and wants follow-ups, so his digest can be previewed.
    accept_connection(friend.attendance, request_connection(guest.attendance, friend.attendance))
    # His check-in asked him to confirm his address: an email of the event to cancel or retry.
    message = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.person_id == guest.attendance.person_id, OutboxMessage.kind == "confirm"
        )
    ).one()
    invitation = invite(event, "new@example.org", "door")
    # The event is in its owner's community; another of the owner's events is not, yet.
    community = create_community(owner, "Owner's brunch club")
    attach_event(community, event)
    spare_event = make_event(owner, name="Owner's other party")
    db.session.commit()
    member_id = db.session.scalar(
        sa.select(TeamMember.id).where(TeamMember.organiser_id == spare.id)
    )
    values = {
        "event_id": event.id,
        "message_id": message.id,
        "attendance_id": guest.attendance.id,
        "invitation_id": invitation.id,
        "member_id": member_id,
        "community_id": community.id,
    }
    return event, people, guest, values, spare_event.id


def client_for(app, role, people, guest, event):
    client = app.test_client()
    if role in people:
        login(client, people[role])
    elif role == ATTENDEE:
        with client.session_transaction() as session:
            session["badges"] = {str(event.id): guest.badge_token}
    return client


FORM = {"name": "Hijacked", "email": "hijack@example.org", "role": "door", "code": "x" * 20}


@pytest.mark.parametrize("role", ROLES)
def test_the_authorization_matrix_holds_on_every_route(app, night, role):
    event, people, guest, values, spare_event_id = night
    client = client_for(app, role, people, guest, event)
    form = {**FORM, "event": str(spare_event_id)}
    token = event.checkin_token
    checked = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.endpoint):
        expected = MATRIX[rule.endpoint][role]
        if expected == TOKEN:
            continue
        path = rule.build(values)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            before = row_counts()
            response = client.open(path, method=method, data=form)
            where = (role, method, path)
            if expected == OK:
                assert response.status_code in (200, 303), where
            elif expected == NOT_FOUND:
                assert response.status_code == 404, where
                assert "Owner&#39;s secret party" not in response.text, where
                assert row_counts() == before, where
            else:
                assert response.status_code == 302, where
                assert response.location.startswith("/login"), where
                assert row_counts() == before, where
            checked += 1
    assert checked >= 10
    db.session.refresh(event)
    if role not in (OWNER, ORGANISER):
        assert (event.name, event.checkin_token) == ("Owner's secret party", token)


def test_door_staff_see_no_links_they_may_not_follow(client, night):
    event, people, _guest, _values, _spare = night
    login(client, people[DOOR])
    page = client.get(f"/organiser/events/{event.id}").text
    assert "Gus Guest" in page and "Door desk" in page
    hidden_links = ("Export CSV", "Emails", "Edit event", "Poster", ">Team<", "Pictures", "End the")
    for hidden in hidden_links:
        assert hidden not in page, hidden
    listing = client.get("/organiser/").text
    assert "Owner&#39;s secret party" in listing and "you are door staff" in listing
    assert f'href="/organiser/events/{event.id}/emails"' not in listing


def test_the_events_list_leads_the_team_to_the_emails_page(client, night):
    event, people, _guest, _values, _spare = night
    for role in (OWNER, ORGANISER):
        login(client, people[role])
        listing = client.get("/organiser/").text
        assert f'<a href="/organiser/events/{event.id}/emails">Emails</a>' in listing, role
        client.post("/logout")


def test_organiser_gets_404_on_every_route_of_another_organisers_community(
    app, client, make_organiser, make_event
):
    from domain.communities import attach_event, create_community
    from domain.db import writing

    owner, intruder = make_organiser(), make_organiser()
    event = make_event(owner, name="Owner's brunch")
    own_event = make_event(intruder, name="Intruder's party")
    with writing():
        community = create_community(owner, "Owner's secret club")
        attach_event(community, event)
        db.session.commit()
    login(client, intruder)
    before = row_counts()
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint in COMMUNITY_SCOPED]
    assert {rule.endpoint for rule in rules} == COMMUNITY_SCOPED
    for rule in rules:
        path = rule.build({"community_id": community.id, "event_id": event.id})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data={"event": str(own_event.id)})
            assert response.status_code == 404, (method, path)
            assert "secret club" not in response.text
    assert row_counts() == before
    db.session.expire_all()
    assert (event.community_id, own_event.community_id) == (community.id, None)
    # Nor can they put the owner's event into a community of their own.
    with writing():
        theirs = create_community(intruder, "Intruder's club")
        db.session.commit()
    response = client.post(f"/organiser/communities/{theirs.id}/events", data={"event": event.id})
    assert response.status_code == 400
    response = client.post(
        "/organiser/events/new",
        data={
            "name": "Sneaky",
            "starts_at": "2026-12-14T11:00",
            "ends_at": "2026-12-14T13:00",
            "timezone": "Europe/London",
            "followup_timing": "next_morning",
            "nudge_days": "7",
            "checkin_opens_minutes": "120",
            "checkin_closes_minutes": "360",
            "community": str(community.id),
        },
    )
    assert response.status_code == 200
    assert "Not a valid choice" in response.text
    db.session.expire_all()
    assert event.community_id == community.id
    assert db.session.scalar(sa.select(sa.func.count()).where(Event.name == "Sneaky")) == 0


def test_organiser_lists_only_their_own_events(client, make_organiser, make_event):
    mine, theirs = make_organiser(), make_organiser()
    make_event(mine, name="My meetup")
    make_event(theirs, name="Their meetup")
    login(client, mine)
    page = client.get("/organiser/").text
    assert "My meetup" in page and "Their meetup" not in page


def test_every_post_without_a_csrf_token_is_refused(app_factory, make_attendee):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from domain.events import EventDetails, create_event
        from domain.organisers import create_organiser

        organiser = create_organiser("csrf@example.org", "correct horse battery")
        from datetime import timedelta

        from domain.db import utcnow

        # Started an hour ago, so the poster takes check-ins.
        start = utcnow().replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
        event = create_event(
            organiser, EventDetails("Meetup", start, start + timedelta(hours=3), "UTC")
        )
        db.session.commit()
        attendee = make_attendee(event, interests=["chess"])
        other = make_attendee(event, interests=["chess"])
        from domain.connections import request_connection

        connection = request_connection(other.attendance, attendee.attendance)
        db.session.commit()
        from domain.communities import attach_event, create_community

        community = create_community(organiser, "Brunch club")
        attach_event(community, event)
        db.session.commit()
        badge, event_id, checkin = attendee.badge_token, event.id, event.checkin_token
        ids = {
            "connection_id": connection.id,
            "attendance_id": other.attendance.id,
            "community_id": community.id,
        }

    client = app.test_client()
    form = client.get("/login").text
    response = client.post(
        "/login",
        data={
            "email": "csrf@example.org",
            "password": "correct horse battery",
            "csrf_token": csrf_token_from(form),
        },
    )
    assert response.status_code == 303
    values = {
        "event_id": event_id,
        "token": badge,
        "message_id": 1,
        "invitation_id": 1,
        "member_id": 1,
        **ids,
    }
    checked = 0
    exempt_views = app.extensions["csrf"]._exempt_views
    exempt = set()
    for endpoint, view in app.view_functions.items():
        if f"{view.__module__}.{view.__name__}" in exempt_views:
            exempt.add(endpoint)
    assert exempt == CSRF_EXEMPT
    for rule, method in state_changing_rules(app):
        if rule.endpoint in CSRF_EXEMPT:
            continue
        values["token"] = (
            checkin if rule.endpoint in ("public.landing", "public.sign_in_link") else badge
        )
        path = rule.build(values)[1]
        response = client.open(path, method=method, data={"name": "x", "email": "x@example.org"})
        assert response.status_code == 400, (method, path)
        assert "This form has expired" in response.text
        checked += 1
    assert checked >= 8
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 2
        assert db.session.get(Event, event_id).checkin_token == checkin


def test_only_the_badge_holder_can_use_their_badge_routes(app, client, make_event, make_attendee):
    from domain.connections import request_connection

    event = make_event()
    ana = make_attendee(event, "Ana", interests=["chess"])
    ben = make_attendee(event, "Ben", interests=["chess"])
    request_connection(ben.attendance, ana.attendance)
    db.session.commit()
    connection_id = db.session.scalar(
        sa.select(sa.func.max(sa.text("id"))).select_from(sa.table("connection"))
    )
    # Ben's phone is checked in at the same event, but is not Ana's phone.
    ben_phone = app.test_client()
    with ben_phone.session_transaction() as session:
        session["badges"] = {str(event.id): ben.badge_token}
    before = row_counts()
    values = {
        "token": ana.badge_token,
        "connection_id": connection_id,
        "attendance_id": ben.attendance.id,
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in BADGE_OWNER:
            continue
        path = rule.build(values)[1]
        # Each route is asked afresh: the failed-lookup limit counts a phone's 404s.
        limiter.reset()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for phone in (ben_phone, app.test_client()):
                response = phone.open(path, method=method, data={"name": "x", "note": "x"})
                assert response.status_code == 404, (method, path)
    assert row_counts() == before


def test_check_in_with_a_csrf_token_works(app_factory, make_event):
    app = app_factory(WTF_CSRF_ENABLED=True)
    event = make_event()
    client = app.test_client()
    form = client.get(f"/e/{event.checkin_token}").text
    response = client.post(
        f"/e/{event.checkin_token}",
        data={"name": "Ana", "email": "ana@example.org", "csrf_token": csrf_token_from(form)},
    )
    assert response.status_code == 303
    assert re.fullmatch(r"/b/[\w-]{43}", response.location)


def test_security_headers(client, make_event):
    event = make_event()
    response = client.get(f"/e/{event.checkin_token}")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    [
        "/e/%00",
        "/e/abc%00defghijklmnopqrstu",
        "/b/" + "x" * 5000,
        "/b/%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00",
        "/m/" + "é" * 20,
        "/u/%00",
        "/f/" + "a" * 43 + "/contacts/99999999999.vcf",
        "/organiser/events/99999999999",
        "/organiser/events/0",
        "/organiser/events/-1/edit",
    ],
)
def test_odd_urls_give_clean_errors(client, make_organiser, path):
    login(client, make_organiser())
    response = client.get(path)
    assert response.status_code == 404


def test_control_codes_typed_anywhere_never_reach_the_database(client, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    bad_login = client.post("/login", data={"email": "a\x00@example.org", "password": "x" * 12})
    assert bad_login.status_code == 200
    assert "control characters" in bad_login.text
    login(client, organiser)
    for query in ("ana\x00", "\x00", "%\x00_"):
        response = client.get(f"/organiser/events/{event.id}", query_string={"q": query})
        assert response.status_code == 200
        assert (
            client.get(f"/organiser/events/{event.id}/live", query_string={"q": query}).status_code
            == 200
        )
