"""A name in any script reads in its own direction inside an English sentence.

"نور الهدى 2" typed as a name: without isolation, a browser lays the "2" out on the far side
of the Arabic inside "Not نور الهدى 2?" or "Accept نور الهدى 2", and text typed after it
("مصممة UX") splits around it. Every place a typed name, event name or "about" line shows
as words on a phone's pages is set apart in <bdi> (or, alone in its element, takes that
element's direction from its own first letter), which a browser lays out on its own.
"""

from __future__ import annotations

import re

from domain.connections import accept_connection, request_connection
from domain.db import db, writing
from domain.followups import update_followup_settings
from domain.models import OutboxMessage
from tests.mail_support import confirm_directly, end_now, make_due

NOOR = "نور الهدى 2"
LAYLA = "ليلى 3"
ABOUT = "مصممة UX"
EVENT = "برنش الأحد 7"


def occurrences_not_set_apart(page: str, typed: str) -> list[str]:
    """Return the places in a page's body where `typed` shows as words neither in a <bdi>
    nor in an element that takes its direction from its text (dir="auto")."""
    body = page.split("<body", 1)[-1]
    found = []
    for match in re.finditer(re.escape(typed), body):
        before = body[: match.start()]
        inside_a_tag = before.rfind("<") > before.rfind(">")
        set_apart = before.endswith("<bdi>") or re.search(r'dir="auto"[^<>]*>$', before)
        if not inside_a_tag and not set_apart:
            found.append(body[max(0, match.start() - 60) : match.end() + 20])
    return found


def phone_of(app, event, result):
    phone = app.test_client()
    with phone.session_transaction() as session:
        session["badges"] = {str(event.id): result.badge_token}
    return phone


def test_typed_names_are_set_apart_wherever_a_phone_shows_them(app, make_event, make_attendee):
    event = make_event(name=EVENT)
    noor = make_attendee(event, NOOR, "noor@example.org", interests=["chess"], about=ABOUT)
    ana = make_attendee(event, "Ana", "ana@example.org", interests=["chess"])
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["go"])
    make_attendee(event, LAYLA, "layla@example.org", interests=["chess"], about=ABOUT)
    with writing():
        asked = request_connection(noor.attendance, ana.attendance)  # Noor asks Ana
        accept_connection(ben.attendance, request_connection(noor.attendance, ben.attendance))
        db.session.commit()
    ana_phone, ben_phone = phone_of(app, event, ana), phone_of(app, event, ben)
    noor_phone = phone_of(app, event, noor)
    pages = {
        "Ana's badge, Noor asking": ana_phone.get(f"/b/{ana.badge_token}"),
        "Ana's people to meet": ana_phone.get(f"/b/{ana.badge_token}/live/people"),
        "Ben's badge, connected to Noor": ben_phone.get(f"/b/{ben.badge_token}"),
        "Noor's card, to Ben": ben_phone.get(f"/b/{noor.badge_token}"),
        "Noor's own badge": noor_phone.get(f"/b/{noor.badge_token}"),
        "Ana's card, to Noor": noor_phone.get(f"/b/{ana.badge_token}"),
    }
    for what, response in pages.items():
        page = response.get_data(as_text=True)
        assert response.status_code == 200, what
        for typed in (NOOR, LAYLA, ABOUT, EVENT):
            assert occurrences_not_set_apart(page, typed) == [], (what, typed)
    assert f"<strong><bdi>{NOOR}</bdi></strong> wants to connect" in pages[
        "Ana's badge, Noor asking"
    ].get_data(as_text=True)
    assert f"Not <bdi>{NOOR}</bdi>?" in pages["Noor's own badge"].get_data(as_text=True)
    assert f"Accept <bdi>{NOOR}</bdi></button>" in pages["Ana's badge, Noor asking"].get_data(
        as_text=True
    )
    # The isolation is around the words, not instead of them.
    ana_people = pages["Ana's people to meet"].get_data(as_text=True)
    assert f"<bdi>{LAYLA}</bdi>" in ana_people and f"<bdi>{ABOUT}</bdi>" in ana_people
    assert f'<dd dir="auto">{ABOUT}</dd>' in pages["Noor's card, to Ben"].get_data(as_text=True)

    # What the next page says of a change names them as the pages do.
    blocked = ana_phone.post(
        f"/b/{ana.badge_token}/connections/{asked.id}/block", follow_redirects=True
    )
    said = blocked.get_data(as_text=True)
    assert f"You blocked <bdi>{NOOR}</bdi>. They won&#39;t see you" in said


def test_typed_names_are_set_apart_in_the_follow_up_emails(app, make_event, make_attendee, mailbox):
    """An email's HTML sets typed words apart as the pages do, with dir="auto" (which mail
    clients keep, where some drop <bdi>); its text part is the words alone."""
    event = make_event(name=EVENT)
    with writing():
        update_followup_settings(event, timing="at_end", nudge_days=7)
        db.session.commit()
    noor = make_attendee(
        event, NOOR, "noor@example.org", interests=["chess"], about=ABOUT, want_followups=True
    )
    layla = make_attendee(
        event, LAYLA, "layla@example.org", interests=["chess"], about=ABOUT, want_followups=True
    )
    confirm_directly(noor, layla)
    with writing():
        request_connection(layla.attendance, noor.attendance, ABOUT)
        request_connection(noor.attendance, layla.attendance)
        db.session.commit()
    with writing():
        db.session.get_one(type(event), event.id).thank_you_note = ABOUT
        db.session.commit()
    end_now(event)
    mailbox.deliver()
    make_due(OutboxMessage.kind == "nudge")
    mailbox.deliver()
    for kind in ("digest", "nudge"):
        to_noor = mailbox.one("noor@example.org", kind)
        for typed in (NOOR, LAYLA, ABOUT, EVENT):
            assert occurrences_not_set_apart(to_noor.html, typed) == [], (kind, typed)
        assert f'<span dir="auto">{LAYLA}</span>' in to_noor.html
        assert f"Hi {NOOR}," in to_noor.text  # no markup, no invisible marks in the text
    assert f'<span dir="auto">{EVENT}</span>' in mailbox.one("noor@example.org", "digest").html
