"""Connecting over HTTP: who sees what, requests and answers, vCards, continuation, XSS."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from domain.connections import block, request_connection
from domain.db import db, writing
from domain.models import Attendance, Block, Connection, Person
from tests.conftest import shown

ANA = {
    "about": "Baker by night",
    "talk_about": "Hanoi night markets",
    "interests": ["marathons", "sourdough"],
    "links": ["https://ana.example/blog"],
}


class Phone:
    """A test client holding one person's badge, as their phone would."""

    def __init__(self, app, result=None):
        self.client = app.test_client()
        self.result = result
        if result is not None:
            with self.client.session_transaction() as session:
                session["badges"] = {str(result.attendance.event_id): result.badge_token}
                person = result.attendance.person
                session["person"] = [
                    person.id,
                    int(person.created_at.timestamp() * 1_000_000),
                    person.session_epoch,
                ]

    @property
    def token(self) -> str:
        return self.result.badge_token

    def get(self, path, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path, **kwargs):
        return self.client.post(path, **kwargs)


@pytest.fixture
def party(app, make_event, make_attendee):
    """Ana (the badge owner), Ben (connected), Cleo (a stranger here), Dan (blocked), Eve
    (at another event), each with a phone."""
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org", **ANA)
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["marathons"])
    cleo = make_attendee(event, "Cleo", "cleo@example.org", interests=["sourdough"])
    dan = make_attendee(event, "Dan", "dan@example.org")
    eve = make_attendee(make_event(name="Elsewhere"), "Eve", "eve@example.org")
    with writing():
        request_connection(ben.attendance, ana.attendance, "met at the bar")
        request_connection(ana.attendance, ben.attendance)
        block(ana.attendance, dan.attendance)
        db.session.commit()
    return {
        name: Phone(app, result)
        for name, result in (("ana", ana), ("ben", ben), ("cleo", cleo), ("dan", dan), ("eve", eve))
    } | {"nobody": Phone(app)}


FIELDS = {
    "about": "Baker by night",
    "interests": "sourdough",
    "talk": "Hanoi night markets",
    "links": "ana.example/blog",
    "email": "ana@example.org",
}
# What each viewer sees of Ana's card with the default settings.
EXPECTED = {
    "ben": {"about", "interests", "talk", "links", "email"},
    "cleo": {"about", "interests", "talk"},
    "eve": set(),
    "nobody": set(),
}


@pytest.mark.parametrize("viewer", sorted(EXPECTED))
def test_visibility_matrix_default_settings(party, viewer):
    page = party[viewer].get(f"/b/{party['ana'].token}")
    assert page.status_code == 200
    assert "Ana" in page.text
    for field, text in FIELDS.items():
        assert (text in page.text) == (field in EXPECTED[viewer]), (viewer, field)


def test_blocked_person_gets_the_same_404(party):
    blocked = party["dan"].get(f"/b/{party['ana'].token}")
    unknown = party["dan"].get("/b/" + "Z" * 43)
    assert blocked.status_code == unknown.status_code == 404
    assert blocked.text == unknown.text


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {
                "about": "nobody",
                "interests": "connections",
                "talk": "everyone",
                "links": "everyone",
                "email": "nobody",
            },
            {"ben": {"interests", "talk", "links"}, "cleo": {"talk", "links"}},
        ),
        (
            {field: "nobody" for field in FIELDS},
            {"ben": set(), "cleo": set()},
        ),
        (
            {field: "everyone" for field in FIELDS},
            {"ben": set(FIELDS), "cleo": set(FIELDS)},
        ),
    ],
)
def test_visibility_matrix_after_changing_settings(party, settings, expected):
    ana = party["ana"]
    response = ana.post(
        f"/b/{ana.token}/edit",
        data={
            "name": "Ana",
            "about": ANA["about"],
            "talk_about": ANA["talk_about"],
            "interests": ", ".join(ANA["interests"]),
            "links": ANA["links"][0],
            **{f"{field}_visibility": value for field, value in settings.items()},
        },
    )
    assert response.status_code == 303
    for viewer, fields in expected.items():
        page = party[viewer].get(f"/b/{ana.token}").text
        for field, text in FIELDS.items():
            assert (text in page) == (field in fields), (viewer, field)
    for viewer in ("eve", "nobody"):
        page = party[viewer].get(f"/b/{ana.token}").text
        assert not any(text in page for text in FIELDS.values())
    # The vCard Ben downloads holds exactly what Ana shares with connections.
    card = vcard_of(party["ben"], "Ana")
    assert ("ana@example.org" in card) == ("email" in expected["ben"])
    assert ("ana.example/blog" in card) == ("links" in expected["ben"])
    assert "Baker" not in card and "Hanoi" not in card


def vcard_of(phone: Phone, name: str) -> str:
    page = phone.get(f"/b/{phone.token}").text
    match = re.search(
        r'href="(/b/[\w-]+/connections/\d+/contact\.vcf)"[^>]*>Add <bdi>' + name, page
    )
    assert match, "no vCard link"
    response = phone.get(match.group(1))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/vcard; charset=utf-8"
    return response.data.decode()


def test_vcard_for_an_accepted_connection(party):
    card = vcard_of(party["ana"], "Ben")
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert "FN:Ben\r\n" in card and "EMAIL;TYPE=INTERNET:ben@example.org\r\n" in card
    assert card.endswith("END:VCARD\r\n")


def test_vcard_only_for_accepted_connections_of_mine(party):
    ana, cleo = party["ana"], party["cleo"]
    with writing():
        connection = request_connection(cleo.result.attendance, ana.result.attendance)
        db.session.commit()
    path = f"/b/{ana.token}/connections/{connection.id}/contact.vcf"
    assert ana.get(path).status_code == 404  # only requested, not accepted
    accepted = db.session.scalars(
        sa.select(Connection).where(Connection.status == "accepted")
    ).one()
    assert cleo.get(f"/b/{cleo.token}/connections/{accepted.id}/contact.vcf").status_code == 404


def count(model, *where) -> int:
    db.session.rollback()  # a fresh read: the server has written since
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_connect_accept_flow_over_http(party):
    ana, cleo = party["ana"], party["cleo"]
    card = cleo.get(f"/b/{ana.token}").text
    assert '<mark class="tag shared"' in card and "sourdough" in card
    response = cleo.post(f"/b/{ana.token}/connect", data={"note": "loves rye"})
    assert response.status_code == 303
    assert "Request sent" in cleo.get(response.location).text
    assert "<bdi>Cleo</bdi></strong> wants to connect" in ana.get(f"/b/{ana.token}/live").text
    connection = db.session.scalars(
        sa.select(Connection).where(Connection.status == "requested")
    ).one()
    assert ana.post(f"/b/{ana.token}/connections/{connection.id}/accept").status_code == 303
    db.session.refresh(connection)
    assert connection.status == "accepted"
    assert "cleo@example.org" in ana.get(f"/b/{ana.token}").text
    assert "loves rye" in cleo.get(f"/b/{cleo.token}").text
    assert "loves rye" not in ana.get(f"/b/{ana.token}").text  # notes are private


def about_line(phone: Phone, name: str) -> str | None:
    """Return the line under a person's name in my requests and connections, if any."""
    live = phone.get(f"/b/{phone.token}/live").text
    line = re.search(
        rf'<bdi>{name}</bdi></strong>(?: wants to connect)?</p>\s*<p class="small" dir="auto">'
        r"([^<]*)<",
        live,
    )
    return line.group(1) if line else None


@pytest.mark.parametrize(
    ("setting", "on_request", "once_connected"),
    [
        ("everyone", "Baker by night", "Baker by night"),
        ("connections", None, "Baker by night"),
        ("nobody", None, None),
    ],
)
def test_a_request_and_a_connection_say_who_they_are_as_far_as_they_show_it(
    party, setting, on_request, once_connected
):
    """Cleo, asked by Ana, reads Ana's "about me" line: which meeting it was, as far as Ana
    shows it to people here; once connected, as far as she shows it to connections."""
    ana, cleo = party["ana"], party["cleo"]
    with writing():
        db.session.execute(
            sa.update(Attendance)
            .where(Attendance.id == ana.result.attendance.id)
            .values(about_visibility=setting)
        )
        db.session.commit()
    assert ana.post(f"/b/{cleo.token}/connect").status_code == 303
    assert about_line(cleo, "Ana") == on_request
    asked = db.session.scalars(sa.select(Connection).where(Connection.status == "requested"))
    assert cleo.post(f"/b/{cleo.token}/connections/{asked.one().id}/accept").status_code == 303
    assert about_line(cleo, "Ana") == once_connected


def test_decline_and_remove(party):
    ana, cleo, ben = party["ana"], party["cleo"], party["ben"]
    cleo.post(f"/b/{ana.token}/connect")
    pending = db.session.scalars(
        sa.select(Connection).where(Connection.status == "requested")
    ).one()
    ana.post(f"/b/{ana.token}/connections/{pending.id}/decline")
    db.session.refresh(pending)
    assert pending.status == "declined"
    assert "wants to connect" not in ana.get(f"/b/{ana.token}/live").text
    accepted = db.session.scalars(
        sa.select(Connection).where(Connection.status == "accepted")
    ).one()
    ben.post(f"/b/{ben.token}/connections/{accepted.id}/remove")
    assert count(Connection) == 1
    assert "ben@example.org" not in ana.get(f"/b/{ana.token}").text


def test_block_from_a_card(party):
    ana, cleo = party["ana"], party["cleo"]
    response = cleo.post(f"/b/{ana.token}/block")
    assert response.status_code == 303
    assert count(Block) == 2
    assert cleo.get(f"/b/{ana.token}").status_code == 404
    assert ana.get(f"/b/{cleo.token}").status_code == 404
    assert cleo.post(f"/b/{ana.token}/connect").status_code == 404
    assert count(Connection) == 1


def test_cannot_connect_to_myself(party):
    ana = party["ana"]
    response = ana.post(f"/b/{ana.token}/connect", follow_redirects=True)
    assert "your own badge" in response.text
    assert count(Connection) == 1


def test_hourly_cap_shows_a_friendly_message(app, make_event, make_attendee):
    from domain.limits import CONNECTION_REQUESTS_PER_HOUR as REQUESTS_PER_HOUR

    event = make_event()
    me = Phone(app, make_attendee(event, "Me"))
    others = [make_attendee(event) for _ in range(REQUESTS_PER_HOUR + 1)]
    for other in others[:-1]:
        assert me.post(f"/b/{other.badge_token}/connect").status_code == 303
    response = me.post(f"/b/{others[-1].badge_token}/connect", follow_redirects=True)
    assert "Take a breather" in response.text
    assert count(Connection) == REQUESTS_PER_HOUR


def test_note_too_long_is_refused(party):
    ana, cleo = party["ana"], party["cleo"]
    response = cleo.post(f"/b/{ana.token}/connect", data={"note": "n" * 281}, follow_redirects=True)
    assert "280 characters or fewer" in response.text
    assert count(Connection) == 1


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("\ufe0f\n\u034f", "Please type something that shows"),
        ("Hanoi" + "\u0300" * 30, "at most 3 accents on one letter"),
    ],
)
def test_a_note_that_shows_nothing_or_stacks_accents_is_refused(party, note, message):
    ana, cleo = party["ana"], party["cleo"]
    response = cleo.post(f"/b/{ana.token}/connect", data={"note": note}, follow_redirects=True)
    assert message in response.text
    assert count(Connection) == 1


def test_connect_from_suggestions(party):
    ana, cleo = party["ana"], party["cleo"]
    page = shown(ana.get(f"/b/{ana.token}"))
    assert "Connect with Cleo" in page
    path = f"/b/{ana.token}/suggestions/{cleo.result.attendance.id}/connect"
    assert ana.post(path).status_code == 303
    assert count(Connection) == 2
    # Someone who is not a suggestion (shares nothing, hidden) cannot be asked this way.
    dan_id = party["dan"].result.attendance.id
    assert ana.post(f"/b/{ana.token}/suggestions/{dan_id}/connect").status_code == 404


def test_connecting_with_a_suggestion_who_has_just_asked_me_accepts_their_request(party):
    """My list of people to meet refreshes every 30 s: the person in it may have asked me
    meanwhile. Tapping Connect then connects us, as asking each other does."""
    ana, cleo = party["ana"], party["cleo"]
    assert "Connect with Cleo" in shown(ana.get(f"/b/{ana.token}"))
    assert cleo.post(f"/b/{ana.token}/connect").status_code == 303
    connections = count(Connection)
    path = f"/b/{ana.token}/suggestions/{cleo.result.attendance.id}/connect"
    done = ana.post(path, follow_redirects=True)
    assert done.status_code == 200
    assert "You're now connected with Cleo" in shown(done)
    assert count(Connection) == connections
    assert count(Connection, Connection.accepted_at.is_not(None)) == connections
    # Tapped again from a list still a refresh old: still connected, nothing new.
    again = ana.post(path, follow_redirects=True)
    assert again.status_code == 200 and "connected with Cleo" in shown(again)
    assert count(Connection) == connections


def test_not_checked_in_is_taken_through_check_in_and_back(party, app):
    ana = party["ana"]
    stranger = app.test_client()
    card = stranger.get(f"/b/{ana.token}").text
    link = re.search(r'href="([^"]+)">Check in to connect', card).group(1).replace("&amp;", "&")
    form = stranger.get(link)
    assert form.status_code == 200
    assert f'value="/b/{ana.token}"' in form.text
    response = stranger.post(
        link.split("?")[0],
        data={"name": "Finn", "email": "finn@example.org", "next": f"/b/{ana.token}"},
    )
    assert response.status_code == 303 and response.location == f"/b/{ana.token}"
    assert "Connect with Ana" in shown(stranger.get(response.location))
    # Already checked in: the poster link with a continuation goes straight there too.
    again = stranger.get(link)
    assert again.status_code == 303 and again.location == f"/b/{ana.token}"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "/b/../../evil",
        "/b/" + "x" * 43 + "@evil.example",
        "http://rapport.test/b/abc",
    ],
)
def test_check_in_continuation_refuses_off_site_targets(party, app, target):
    event = party["ana"].result.attendance.event
    stranger = app.test_client()
    response = stranger.post(
        f"/e/{event.checkin_token}",
        data={"name": "Finn", "email": "finn@example.org", "next": target},
    )
    assert response.status_code == 303
    assert re.fullmatch(r"/b/[\w-]{43}", response.location), response.location
    assert response.location != target


def test_continuation_to_a_badge_of_another_event_is_ignored(party, app):
    eve_badge = party["eve"].token
    event = party["ana"].result.attendance.event
    response = app.test_client().post(
        f"/e/{event.checkin_token}",
        data={"name": "Finn", "email": "finn@example.org", "next": f"/b/{eve_badge}"},
    )
    assert response.location != f"/b/{eve_badge}"


def test_get_of_a_badge_changes_no_rows(party):
    before = (count(Person), count(Attendance), count(Connection), count(Block))
    for name in ("ana", "ben", "cleo", "eve", "nobody"):
        party[name].get(f"/b/{party['ana'].token}")
        if name != "nobody":
            party[name].get(f"/b/{party[name].token}")
            party[name].get(f"/b/{party[name].token}/live")
    assert (count(Person), count(Attendance), count(Connection), count(Block)) == before


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_text_renders_inert_everywhere(
    app, make_event, make_attendee, payload, make_organiser
):
    from tests.conftest import login

    organiser = make_organiser()
    event = make_event(organiser)
    evil = make_attendee(
        event,
        payload[:80],
        "evil@example.org",
        about=payload,
        talk_about=payload,
        interests=[payload[:40]],
    )
    viewer = make_attendee(event, "Vic", "vic@example.org", interests=[payload[:40]])
    with writing():
        request_connection(viewer.attendance, evil.attendance, payload)
        request_connection(evil.attendance, viewer.attendance)
        db.session.commit()
    evil_phone, viewer_phone = Phone(app, evil), Phone(app, viewer)
    organiser_client = app.test_client()
    login(organiser_client, organiser)
    pages = [
        viewer_phone.get(f"/b/{evil.badge_token}"),
        viewer_phone.get(f"/b/{viewer.badge_token}"),
        evil_phone.get(f"/b/{evil.badge_token}"),
        evil_phone.get(f"/b/{evil.badge_token}/edit"),
        viewer_phone.get(f"/e/{event.checkin_token}", follow_redirects=True),
        organiser_client.get(f"/organiser/events/{event.id}"),
        organiser_client.get(f"/organiser/events/{event.id}/live"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert (
            "onerror=alert" not in page.text
            or "&#34;&gt;&lt;img" in page.text
            or ("&lt;img" in page.text)
        )


def test_non_web_links_are_refused_at_input(party):
    ana = party["ana"]
    for link in ("javascript:alert(1)", "data:text/html,<b>x</b>", "vbscript:x"):
        response = ana.post(f"/b/{ana.token}/edit", data={"name": "Ana", "links": link})
        assert response.status_code == 200
        assert "Links must be web addresses" in response.text
    person = db.session.scalars(sa.select(Person).where(Person.name == "Ana")).one()
    assert person.links == ["https://ana.example/blog"]


def test_organiser_sees_connection_counts_not_notes(party, app, make_organiser):
    from tests.conftest import login

    event = party["ana"].result.attendance.event
    client = app.test_client()
    login(client, event.organiser)
    page = client.get(f"/organiser/events/{event.id}").text
    assert "<strong>1</strong> connection made" in page
    assert "met at the bar" not in page
    csv = client.get(f"/organiser/events/{event.id}/attendees.csv").text
    assert "met at the bar" not in csv


def test_people_to_meet_say_why_the_list_is_empty_when_everyone_matching_was_asked(
    app, make_event, make_attendee
):
    """The only person sharing my interests is someone I asked already: the list is empty,
    and says nothing that isn't so ("when people check in" would be wrong: they're here)."""
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org", interests=["chess"])
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["chess"])
    phone = app.test_client()
    with phone.session_transaction() as session:
        session["badges"] = {str(event.id): ana.badge_token}
    assert "Connect with <bdi>Ben</bdi>" in phone.get(f"/b/{ana.badge_token}/live/people").text
    with writing():
        request_connection(ana.attendance, ben.attendance)
        db.session.commit()
    people = phone.get(f"/b/{ana.badge_token}/live/people").text
    assert "Ben" not in people
    assert "No one new to suggest right now." in people
