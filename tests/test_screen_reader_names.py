"""Buttons in a list of people name the person, so a screen reader says whom they act on."""

from __future__ import annotations

import re

from domain.connections import accept_connection, request_connection
from domain.db import db, writing

HIDDEN_NAME = r'{verb}<span class="visually-hidden"> <bdi>{name}</bdi></span></button>'


def test_decline_block_and_remove_name_the_person(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org")
    ben = make_attendee(event, "Ben", "ben@example.org")
    cleo = make_attendee(event, "Cleo", "cleo@example.org")
    with writing():
        request_connection(ben.attendance, ana.attendance)  # Ben is waiting for Ana
        connection = request_connection(cleo.attendance, ana.attendance)
        accept_connection(ana.attendance, connection)  # Cleo is connected
        db.session.commit()
    phone = app.test_client()
    with phone.session_transaction() as session:
        session["badges"] = {str(event.id): ana.badge_token}
    page = phone.get(f"/b/{ana.badge_token}").get_data(as_text=True)
    for verb, name in (("Decline", "Ben"), ("Block", "Ben"), ("Remove", "Cleo"), ("Block", "Cleo")):
        assert re.search(HIDDEN_NAME.format(verb=verb, name=name), page), (verb, name)


def test_what_we_share_is_said_once(app, make_event, make_attendee):
    """After "You share", a shared interest is not also called "(shared)"; in someone's list
    of interests, the shared ones are."""
    event = make_event()
    ana = make_attendee(event, "Ana", "ana@example.org", interests=["chess", "go"])
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["chess", "jazz"])
    phone = app.test_client()
    with phone.session_transaction() as session:
        session["badges"] = {str(event.id): ana.badge_token}
    card = phone.get(f"/b/{ben.badge_token}").get_data(as_text=True)
    people = phone.get(f"/b/{ana.badge_token}/live/people").get_data(as_text=True)
    for page in (card, people):
        sentence = re.search(r"You share (.*?)</p>", page, re.S)
        assert sentence and "chess" in sentence.group(1), page
        assert "(shared)" not in sentence.group(1)
    assert re.search(r'>chess<span class="visually-hidden"> \(shared\)</span></mark>', card)
