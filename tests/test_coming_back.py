"""What reviewers of coming back found: a person's own spelling, consent said where it is
given, what /me offers, and pages that say what can still happen."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from domain.db import db, writing
from domain.models import Attendance, Person
from domain.signin import record_link
from domain.tokens import new_token
from tests.conftest import shown
from tests.test_http_connect import Phone
from tests.test_returning import ana_before, attendance_at, link_for, served_form

__all__ = ["ana_before"]  # a fixture these tests share with tests/test_returning.py


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


# ---------------------------------------------------------------- one tap says what it consents to


def remembered_phone(app, make_event, **extra):
    """Ana's phone, checked in at an earlier event with follow-ups and her profile shown."""
    phone = app.test_client()
    check_in(
        phone,
        make_event(name="March brunch"),
        "Ana Almeida",
        "ana@example.org",
        "sourdough",
        want_followups="y",
        **extra,
    )
    return phone


def outside_details(page_html: str) -> str:
    """The part of a page before its folded "Change my details first" section."""
    return page_html.split('<details class="returning"')[0]


def test_one_tap_shows_the_consent_it_gives_beside_the_button(app, make_event):
    phone = remembered_phone(app, make_event)
    later = make_event(name="April brunch")
    page = phone.get(f"/e/{later.checkin_token}")
    visible = shown(outside_details(page.text))
    assert "Check in as Ana Almeida" in visible
    assert (
        "Your profile is shown to people here; follow-up emails to a\u2026@example.org." in visible
    )
    for name in ("share_profile", "want_followups"):
        assert re.search(
            rf'<input[^>]*checked[^>]*name="{name}"|name="{name}"[^>]*checked', visible
        )
    # Each choice is on the page once, so the one tap sends what is shown.
    assert page.text.count('name="want_followups"') == 1
    # Recognised, the phone is not also offered the email sign-in for people it doesn't know.
    assert "Skip the form" not in shown(page)
    # Unticking a box beside the button is what the check-in takes.
    data = served_form(page.text, f"/e/{later.checkin_token}")
    del data["want_followups"]
    assert phone.post(f"/e/{later.checkin_token}", data=data).status_code == 303
    db.session.rollback()
    mine = db.session.scalars(sa.select(Attendance).where(Attendance.event_id == later.id)).one()
    assert mine.followup_consent_at is None and mine.profile_consent_at is not None


def test_a_new_person_starts_with_nothing_ticked(app, make_event):
    page = app.test_client().get(f"/e/{make_event().checkin_token}")
    assert "Welcome back" not in page.text
    assert not re.search(r'<input[^>]*checked[^>]*name="(share_profile|want_followups)"', page.text)
    assert not re.search(r'name="(share_profile|want_followups)"[^>]*checked', page.text)


def test_a_typo_by_someone_else_stays_the_open_new_person_form(app, make_event):
    phone = remembered_phone(app, make_event)
    later = make_event(name="April brunch")
    blank = phone.get(f"/e/{later.checkin_token}?new=1")
    assert "Welcome back" not in blank.text
    typo = phone.post(
        f"/e/{later.checkin_token}?new=1",
        data={"name": "Ben Okafor", "email": "ben@example", "share_profile": "y"},
    )
    assert typo.status_code == 200
    page = shown(typo)
    assert "Welcome back" not in page and "Check in as" not in page
    assert "<h2>Check in</h2>" in page and '<details class="returning"' not in page
    assert 'value="Ben Okafor"' in typo.text
    # Also when the typo is made in the returning form's own fields.
    mine = phone.post(f"/e/{later.checkin_token}", data={"name": "", "email": "ana@example.org"})
    assert "Welcome back" not in shown(mine) and "<h2>Check in</h2>" in shown(mine)


# ---------------------------------------------------------------- sign-in links say what they do


def test_the_sign_in_link_shows_the_consent_it_gives(app, make_event, ana_before):
    later = make_event(name="April brunch")
    phone = app.test_client()
    path = f"/m/{link_for(ana_before.attendance.person_id, later.id)}"
    ask = phone.get(path)
    assert "Check in as Ana Almeida" in shown(ask)
    assert (
        "Your profile is shown to people here; follow-up emails to a\u2026@example.org."
        in shown(ask)
    )
    data = served_form(ask.text, None)
    assert data.get("share_profile") == "y" and data.get("want_followups") == "y"
    del data["want_followups"]
    assert phone.post(path, data=data).status_code == 303
    mine = attendance_at(later, ana_before.attendance.person_id)
    assert mine is not None and mine.followup_consent_at is None
    assert mine.profile_consent_at is not None


def test_a_sign_in_link_after_the_event_says_it_has_ended(app, make_event, ana_before):
    later = make_event(name="April brunch")
    with writing():
        later.starts_at -= timedelta(days=2)
        later.ends_at -= timedelta(days=2)
        db.session.commit()
    phone = app.test_client()
    path = f"/m/{link_for(ana_before.attendance.person_id, later.id)}"
    ask = shown(phone.get(path))
    assert "April brunch has ended" in ask and "This event has ended" in ask
    assert "Check in" not in ask and "share_profile" not in ask
    done = phone.post(path)
    assert done.status_code == 303 and done.headers["Location"].endswith("/me/")
    home = shown(phone.get("/me/"))
    assert "That event has ended" in home and "My connections" in home
    assert attendance_at(later, ana_before.attendance.person_id) is None


def test_a_link_to_me_says_it_opens_my_connections(app, make_event, ana_before):
    event = ana_before.attendance.event
    token = new_token()
    with writing():
        record_link(ana_before.attendance.person_id, event.id, "me", token)
        db.session.commit()
    ask = shown(app.test_client().get(f"/m/{token}"))
    assert "See your connections" in ask and "move your badge" not in ask


def test_a_sign_in_link_on_the_phone_that_holds_the_badge_does_not_move_it(
    app, make_event, ana_before
):
    event = ana_before.attendance.event
    phone = app.test_client()
    first = f"/m/{link_for(ana_before.attendance.person_id, event.id)}"
    assert "move your badge for" in shown(phone.get(first))
    phone.post(first)
    again = shown(phone.get(f"/m/{link_for(ana_before.attendance.person_id, event.id)}"))
    assert "move your badge" not in again and "See your connections" in again


# ---------------------------------------------------------------- the card and the ended badge


def test_a_request_is_said_once_with_the_note_just_written(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana Almeida", "ana@example.org")
    ben = make_attendee(event, "Ben Okafor", "ben@example.org")
    phone = Phone(app, ben)
    card = phone.post(
        f"/b/{ana.badge_token}/connect",
        data={"note": "ask about the Hanoi markets"},
        follow_redirects=True,
    )
    page = shown(card)
    assert page.count("Request sent. Ana Almeida will see it on their badge.") == 1
    assert "Your note: <em>ask about the Hanoi markets</em>" in page


def ended(event):
    with writing():
        event.starts_at -= timedelta(days=2)
        event.ends_at -= timedelta(days=2)
        db.session.commit()


def test_an_ended_events_badge_offers_nothing_that_cannot_happen(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana Almeida", "ana@example.org", interests=["chess"])
    phone = Phone(app, ana)
    during = shown(phone.get(f"/b/{ana.badge_token}"))
    assert "Scan a badge" in during and "People who share your interests appear here" in during
    ended(event)
    after = shown(phone.get(f"/b/{ana.badge_token}"))
    assert "Scan a badge" not in after and 'id="scanner"' not in after
    assert "People who share your interests appear here" not in after
    assert "Scan someone's badge" not in after
    live = shown(phone.get(f"/b/{ana.badge_token}/live"))
    assert "People who share your interests appear here" not in live
    # What stays true is still there: the badge, its connections section, the profile.
    assert "My connections" in after and "My profile" in after
