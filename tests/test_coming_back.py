"""What reviewers of coming back found: a person's own spelling, consent said where it is
given, what /me offers, and pages that say what can still happen."""

from __future__ import annotations

import html

import sqlalchemy as sa

from domain.db import db
from domain.models import Attendance, Person
from tests.test_returning import served_form


def text(page) -> str:
    return html.unescape(page.text)


def check_in(phone, event, name, email, interests, **extra):
    return phone.post(
        f"/e/{event.checkin_token}",
        data={"name": name, "email": email, "interests": interests, "share_profile": "y", **extra},
    )


def badge_path(response) -> str:
    return response.headers["Location"]


def interests_of(email: str) -> list[str]:
    db.session.rollback()
    mine = db.session.scalars(
        sa.select(Attendance)
        .join(Attendance.person)
        .where(Person.email == email)
        .order_by(Attendance.id.desc())
    ).first()
    return sorted(i.name for i in mine.interests)


def test_saving_an_unchanged_profile_keeps_my_own_spelling(app, make_event):
    event = make_event()
    check_in(app.test_client(), event, "Ana Almeida", "ana@example.org", "Marathons, Café")
    ben = app.test_client()
    badge = badge_path(check_in(ben, event, "Ben Okafor", "ben@example.org", "marathon, cafe"))
    edit = ben.get(f"{badge}/edit")
    # My own interests, as I typed them, are in the text box; the popular ones I have are ticked.
    data = served_form(edit.text, None)
    assert sorted(tag.strip() for tag in data["interests"].split(",")) == ["cafe", "marathon"]
    assert data["suggested"] in ("Marathons", "Café")
    saved = ben.post(f"{badge}/edit", data=data)
    assert saved.status_code == 303
    assert interests_of("ben@example.org") == ["cafe", "marathon"]
