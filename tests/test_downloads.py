"""Every download names its file in a header any server can send, in any script."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from werkzeug.http import parse_options_header

from blueprints.downloads import content_disposition
from domain.connections import request_connection
from domain.db import db, writing
from domain.models import Attendance, Connection, Event
from tests.conftest import login
from tests.mail_support import end_now, link_in
from tests.test_concurrency import Gunicorn, Phone, csrf_token, database_app, gunicorn  # noqa: F401
from tests.test_http_connect import Phone as BadgePhone

NAMES = [
    "Анна Каренина",  # Cyrillic
    "Ελένη Παπαδοπούλου",  # Greek
    "王小明",  # CJK
    "محمد الأحمد",  # Arabic
    "Zoë O'Brien",  # Latin-1 but not ASCII
    "Ana 😀",
]
EXTENDED = re.compile(r"filename\*=UTF-8''([A-Za-z0-9%!#$&+.^_`|~-]+)")
PLAIN = re.compile(r'filename="([ -~]*)"')


def saved_name(header: str) -> str:
    """Check a Content-Disposition header can be sent, and return the name a browser saves."""
    header.encode("latin-1")  # what a WSGI server must be able to do with every header
    disposition, options = parse_options_header(header)
    assert disposition == "attachment"
    plain = PLAIN.search(header)
    assert plain and plain.group(1).isascii() and plain.group(1)  # for clients without RFC 6266
    extended = EXTENDED.search(header)
    name = unquote(extended.group(1), "utf-8", "strict") if extended else plain.group(1)
    assert options["filename"] == name
    return name


@pytest.mark.parametrize("name", NAMES)
def test_a_name_in_any_script_is_sent_in_latin_1_and_read_back(name):
    assert saved_name(content_disposition(f"{name}.vcf", "contact")) == f"{name}.vcf"


@pytest.mark.parametrize(
    ("filename", "saved"),
    [
        ('a"b\\c/d.vcf', "abcd.vcf"),
        ("evil\r\nSet-Cookie: x=1.vcf", "evilSet-Cookie x=1.vcf"),
        ("\u202egnp.vcf", "gnp.vcf"),
        ("...vcf", "contact.vcf"),
        (".vcf", "contact.vcf"),
        ("attendees-7.csv", "attendees-7.csv"),
    ],
)
def test_names_lose_what_a_file_name_or_header_cannot_hold(filename, saved):
    header = content_disposition(filename, "contact")
    assert "\r" not in header and "\n" not in header
    assert saved_name(header) == saved


@pytest.fixture
def connected(app, make_event, make_attendee):
    """Two people with names in other scripts, connected, each with a phone."""
    event = make_event()
    anna = make_attendee(event, NAMES[0], "anna@example.org", want_followups=True)
    wang = make_attendee(event, NAMES[2], "wang@example.org", want_followups=True)
    with writing():
        request_connection(anna.attendance, wang.attendance)
        request_connection(wang.attendance, anna.attendance)
        db.session.commit()
    connection = db.session.scalars(sa.select(Connection)).one()
    return event, BadgePhone(app, anna), BadgePhone(app, wang), connection.id


def test_contact_card_download_is_named_after_the_person(connected):
    _, anna, wang, connection_id = connected
    response = anna.get(f"/b/{anna.token}/connections/{connection_id}/contact.vcf")
    assert response.status_code == 200
    assert saved_name(response.headers["Content-Disposition"]) == f"{NAMES[2]}.vcf"
    response = wang.get(f"/b/{wang.token}/connections/{connection_id}/contact.vcf")
    assert saved_name(response.headers["Content-Disposition"]) == f"{NAMES[0]}.vcf"


def test_contact_card_from_a_followup_email_is_named_after_the_person(app, met, mailbox):
    with writing():
        db.session.get_one(Attendance, met.ben.attendance.id).person.name = NAMES[1]
        db.session.commit()
    end_now(met.event)
    mailbox.deliver()
    path = link_in(mailbox.one("ana@example.org", "digest"), "/f/", ".vcf")
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert saved_name(response.headers["Content-Disposition"]) == f"{NAMES[1]}.vcf"


def test_every_organiser_and_me_download_sends_a_safe_header(app, connected):
    event, anna, _, _ = connected
    organiser_client = app.test_client()
    login(organiser_client, db.session.get_one(Event, event.id).organiser)
    for path, name in (
        (f"/organiser/events/{event.id}/attendees.csv", f"attendees-{event.id}.csv"),
        (f"/organiser/events/{event.id}/poster.svg", f"rapport-poster-{event.id}.svg"),
    ):
        response = organiser_client.get(path)
        assert response.status_code == 200, path
        assert saved_name(response.headers["Content-Disposition"]) == name
    with anna.client.session_transaction() as session:
        session["me"] = session["person"]
    response = anna.get("/me/data.json")
    assert response.status_code == 200
    assert saved_name(response.headers["Content-Disposition"]) == "rapport-my-data.json"


def test_contact_card_of_a_name_in_another_script_downloads_under_gunicorn(
    gunicorn: Gunicorn,  # noqa: F811
    database_app,  # noqa: F811
) -> None:
    from datetime import timedelta

    from domain.events import EventDetails, create_event, wall_clock_now
    from domain.organisers import create_organiser

    start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
    with writing():
        organiser = create_organiser("organiser@example.org", "correct horse battery")
        event = create_event(
            organiser, EventDetails("Meetup", start, start + timedelta(hours=3), "Europe/London")
        )
        db.session.commit()
        path = f"/e/{event.checkin_token}"
    db.session.remove()

    phones = {}
    for name, email in ((NAMES[0], "anna@example.org"), (NAMES[3], "mo@example.org")):
        phone = Phone(gunicorn.port)
        status, _, page = phone.request("GET", path)
        assert status == 200, page
        form = {"csrf_token": csrf_token(page), "name": name, "email": email, "share_profile": "y"}
        status, headers, body = phone.request("POST", path, form)
        assert status == 303, body
        phones[name] = (phone, headers["Location"].rsplit("/", 1)[-1])

    with writing():
        anna, mo = db.session.scalars(sa.select(Attendance).order_by(Attendance.id)).all()
        request_connection(anna, mo)
        request_connection(mo, anna)
        db.session.commit()
        connection_id = db.session.scalars(sa.select(Connection.id)).one()
    db.session.remove()

    for me, other in ((NAMES[0], NAMES[3]), (NAMES[3], NAMES[0])):
        phone, token = phones[me]
        status, headers, body = phone.request(
            "GET", f"/b/{token}/connections/{connection_id}/contact.vcf"
        )
        assert status == 200, body
        # http.client decodes header bytes as Latin-1, as they were sent.
        assert saved_name(headers["Content-Disposition"]) == f"{other}.vcf"
        assert f"FN:{other}" in body
    log = gunicorn.log_text()
    assert "Traceback" not in log, log
