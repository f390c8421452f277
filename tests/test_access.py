"""Who may reach which route: tenant isolation, login, and CSRF on every state change.

Every route must be classified below; a new route that is not fails these tests.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from blueprints.extensions import limiter
from domain.db import db
from domain.models import Attendance, Event, Interest, Organiser, Person
from tests.conftest import csrf_token_from, login

# Routes anyone may open; they reach organiser data only through a capability token.
PUBLIC = {
    "static",
    "public.home",
    "auth.signup",
    "auth.login",
    "auth.logout",
    "public.landing",
    "badge.view",
    "badge.connect",
    "badge.block_owner",
    "public.sign_in_link",
    # Links in emails: each opens only with its own token.
    "maillinks.sign_in",
    "maillinks.unsubscribe_page",
    "maillinks.unsubscribe",
    "maillinks.contact",
    "maillinks.in_touch",
    "maillinks.event_calendar",
    "webhooks.sendgrid_events",
}
# /me: only the person this device signed in as, through an email link.
ME = {
    "me.home",
    "me.request_link",
    "me.profile",
    "me.data",
    "me.delete",
    "me.sign_out",
    "me.remove",
    "me.contact",
}
# The only routes a POST reaches without a CSRF token, each authenticated its own way.
CSRF_EXEMPT = {"maillinks.unsubscribe", "webhooks.sendgrid_events"}
# Routes about my own badge: only the phone holding it may use them; anyone else gets 404.
BADGE_OWNER = {
    "badge.edit",
    "badge.resend_confirmation_mail",
    "badge.preview",
    "badge.share_my_email",
    "badge.stop_sharing_my_email",
    "badge.forget",
    "badge.live",
    "badge.connect_suggestion",
    "badge.accept",
    "badge.decline",
    "badge.remove",
    "badge.remove_met_before",
    "badge.block_connection",
    "badge.note",
    "badge.contact",
}
# Routes that are about one organiser's event: another organiser gets a 404.
EVENT_SCOPED = {
    "organiser.edit_event",
    "organiser.attendees",
    "organiser.attendees_live",
    "organiser.attendees_csv",
    "organiser.poster",
    "organiser.poster_svg",
    "organiser.rotate",
}
# Routes that are about one organiser's community: another organiser gets a 404.
COMMUNITY_SCOPED = {"communities.show", "communities.attach", "communities.detach"}
# Organiser routes that are not about one event: they show only the organiser's own.
ORGANISER_ONLY = {"organiser.events", "organiser.new_event", "communities.index"}
EVENT_SCOPED |= {
    "organiser.end",
    "organiser.emails",
    "organiser.preview",
    "organiser.cancel",
    "organiser.retry",
    "organiser.resume",
    "organiser.pictures",
    "organiser.pictures_live",
}


def state_changing_rules(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            yield rule, method


def row_counts():
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Organiser, Event, Person, Attendance, Interest)
    )


def test_every_route_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    classified = PUBLIC | EVENT_SCOPED | COMMUNITY_SCOPED | ORGANISER_ONLY | BADGE_OWNER | ME
    assert endpoints == classified, endpoints ^ classified


def test_organiser_gets_404_on_every_route_of_another_organisers_event(
    app, client, make_organiser, make_event
):
    owner, intruder = make_organiser(), make_organiser()
    event = make_event(owner, name="Owner's secret party")
    token = event.checkin_token
    login(client, intruder)
    before = row_counts()
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint in EVENT_SCOPED]
    assert {rule.endpoint for rule in rules} == EVENT_SCOPED
    for rule in rules:
        path = rule.build({"event_id": event.id, "message_id": 1, "attendance_id": 1})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data={"name": "Hijacked"})
            assert response.status_code == 404, (method, path)
            assert "Owner&#39;s secret party" not in response.text
    assert row_counts() == before
    db.session.refresh(event)
    assert (event.name, event.checkin_token) == ("Owner's secret party", token)


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


def test_anonymous_visitors_are_sent_to_log_in(app, client, make_event):
    event = make_event()
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in EVENT_SCOPED | COMMUNITY_SCOPED | ORGANISER_ONLY:
            continue
        path = rule.build(
            {"event_id": event.id, "message_id": 1, "attendance_id": 1, "community_id": 1}
        )[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            assert response.status_code == 302, (method, path)
            assert response.location.startswith("/login")


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
    values = {"event_id": event_id, "token": badge, "message_id": 1, **ids}
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
