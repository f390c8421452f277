"""Things a person can type that once broke a page: each gets a clear message, never a 500."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain.db import db
from domain.models import Attendance, Person
from domain.profile import ProfileError, normalise_links
from tests.test_http_checkin import VALID, row_counts
from tests.test_http_connect import Phone

# Links the URL parser refuses with a ValueError: brackets, bad ports.
BROKEN_LINKS = [
    "https://[::1",
    "foo[bar",
    "a@[127.0.0.1]",
    "[]",
    "https://[::1]:99999",
    "example.org:http",
    "https://example.org]",
]
LINK_MESSAGE = "Links must be web addresses"


@pytest.mark.parametrize("link", BROKEN_LINKS)
def test_a_link_the_parser_refuses_is_a_profile_error(link):
    with pytest.raises(ProfileError) as raised:
        normalise_links([link])
    assert raised.value.code == "link_invalid"
    assert LINK_MESSAGE in raised.value.message


@pytest.mark.parametrize("link", BROKEN_LINKS)
def test_broken_link_at_check_in_rerenders_the_form(client, make_event, link):
    event = make_event()
    before = row_counts()
    response = client.post(f"/e/{event.checkin_token}", data={**VALID, "links": link})
    assert response.status_code == 200
    assert LINK_MESSAGE in response.text
    assert 'aria-invalid="true"' in response.text
    assert row_counts() == before


@pytest.mark.parametrize("link", BROKEN_LINKS)
def test_broken_link_on_badge_edit_rerenders_the_form(app, make_event, make_attendee, link):
    ana = Phone(app, make_attendee(make_event(), "Ana", links=["https://ana.example"]))
    response = ana.post(f"/b/{ana.token}/edit", data={"name": "Ana B", "links": link})
    assert response.status_code == 200
    assert LINK_MESSAGE in response.text
    db.session.rollback()
    person = db.session.scalars(sa.select(Person)).one()
    assert (person.name, person.links) == ("Ana", ["https://ana.example"])


@pytest.mark.parametrize("link", BROKEN_LINKS)
def test_broken_link_on_my_profile_rerenders_the_form(app, make_event, make_attendee, link):
    ana = Phone(app, make_attendee(make_event(), "Ana", links=["https://ana.example"]))
    with ana.client.session_transaction() as session:
        session["me"] = session["person"]  # signed in to /me, as the emailed link does
    assert ana.get("/me/profile").status_code == 200
    response = ana.post(
        "/me/profile", data={"name": "Ana B", "about": "", "talk_about": "", "links": link}
    )
    assert response.status_code == 200
    assert LINK_MESSAGE in response.text
    db.session.rollback()
    person = db.session.scalars(sa.select(Person)).one()
    assert (person.name, person.links) == ("Ana", ["https://ana.example"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attendance)) == 1


@pytest.mark.parametrize("body", ["false", "17", '"text"', "[1, 2]", "null", '{"name": ["Ana"]}'])
def test_a_json_body_is_never_taken_as_form_fields(app, client, make_event, make_attendee, body):
    event = make_event()
    ana = Phone(app, make_attendee(event, "Ana", links=["https://ana.example"]))
    with ana.client.session_transaction() as session:
        session["me"] = session["person"]
    before = row_counts()
    for phone, path in (
        (client, f"/e/{event.checkin_token}"),
        (client, "/login"),
        (client, "/signup"),
        (ana, f"/b/{ana.token}/edit"),
        (ana, "/me/profile"),
        (ana, "/me/sign-in"),
    ):
        response = phone.post(path, data=body, content_type="application/json")
        assert response.status_code < 500, path
    db.session.rollback()
    assert row_counts() == before
    person = db.session.scalars(sa.select(Person)).one()
    assert (person.name, person.links) == ("Ana", ["https://ana.example"])
