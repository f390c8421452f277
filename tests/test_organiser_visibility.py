"""A person's visibility choices hold for the organiser too: the attendee page, its live
table, search, the CSV and the digest preview show the name always, and of the profile only
what the person shows everyone at the event."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, writing
from domain.models import PROFILE_FIELDS, Attendance
from tests.conftest import login

# What Ana wrote in each field, each a word that appears nowhere else.
WRITTEN = {
    "about": "Ryebaker",
    "interests": "kayaking",
    "talk": "Hanoimarkets",
    "email": "ana-private@example.org",
    "links": "https://ana.example/portfolio",
}
# Which fields each organiser surface shows at all (when the person lets it).
SHOWN_ON = {
    "page": {"interests"},
    "live": {"interests"},
    "csv": {"interests"},
    "preview": {"interests", "about"},
}


@pytest.fixture
def room(app, client, make_organiser, make_event, make_attendee):
    """Ana and Ben, connected, both into kayaking; the organiser signed in."""
    organiser = make_organiser()
    event = make_event(organiser)
    ana = make_attendee(
        event,
        "Ana Example",
        WRITTEN["email"],
        about=WRITTEN["about"],
        talk_about=WRITTEN["talk"],
        interests=[WRITTEN["interests"]],
        links=[WRITTEN["links"]],
    )
    # Ben asked for follow-ups: only someone who gets a digest has one to preview.
    ben = make_attendee(
        event,
        "Ben Example",
        "ben@example.org",
        interests=[WRITTEN["interests"]],
        want_followups=True,
    )
    with writing():
        request_connection(ana.attendance, ben.attendance, "")
        request_connection(ben.attendance, ana.attendance, "")
        db.session.commit()
    login(client, organiser)
    return event, ana.attendance.id, ben.attendance.id


def set_visibility(attendance_id: int, field: str, setting: str) -> None:
    """Show one of Ana's fields to `setting`, and every other field to no one."""
    values = {f"{name}_visibility": "nobody" for name in PROFILE_FIELDS}
    values[f"{field}_visibility"] = setting
    with writing():
        db.session.execute(
            sa.update(Attendance).where(Attendance.id == attendance_id).values(**values)
        )
        db.session.commit()


def anas_part(surface: str, client, event, ben_id: int) -> str:
    """Return what one organiser surface says about Ana."""
    if surface in ("page", "live"):
        path = f"/organiser/events/{event.id}" + ("/live" if surface == "live" else "")
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", client.get(path).text, re.S)
        (row,) = [row for row in rows if "Ana Example" in row]
        return row
    if surface == "csv":
        text = client.get(f"/organiser/events/{event.id}/attendees.csv").text
        (row,) = [row for row in csv.reader(io.StringIO(text)) if row[0] == "Ana Example"]
        return ",".join(row)
    page = client.get(f"/organiser/events/{event.id}/emails/preview/{ben_id}")
    assert page.status_code == 200
    assert "Ana Example" in page.text
    return page.text


@pytest.mark.parametrize("setting", ["everyone", "connections", "nobody"])
@pytest.mark.parametrize("field", PROFILE_FIELDS)
def test_organiser_sees_only_what_a_person_shows_everyone(client, room, field, setting):
    event, ana_id, ben_id = room
    set_visibility(ana_id, field, setting)
    for surface, shown in SHOWN_ON.items():
        said = anas_part(surface, client, event, ben_id)
        assert "Ana Example" in said
        for name, value in WRITTEN.items():
            expected = name == field and setting == "everyone" and name in shown
            assert (value in said) is expected, (surface, name, setting)


@pytest.mark.parametrize("setting", ["everyone", "connections", "nobody"])
def test_searching_matches_an_interest_only_where_the_organiser_may_see_it(client, room, setting):
    event, ana_id, _ = room
    set_visibility(ana_id, "interests", setting)
    with writing():
        db.session.execute(
            sa.update(Attendance)
            .where(Attendance.id != ana_id)
            .values(interests_visibility="nobody")
        )
        db.session.commit()
    for path in (f"/organiser/events/{event.id}", f"/organiser/events/{event.id}/live"):
        found = client.get(path, query_string={"q": "kayak"}).text
        assert ("Ana Example" in found) is (setting == "everyone"), path
        assert "Ben Example" not in found
        # A search by name still finds a person whatever they hide.
        by_name = client.get(path, query_string={"q": "ana ex"}).text
        assert "Ana Example" in by_name
