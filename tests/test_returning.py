"""One tap back: a returning person's saved profile fills their next check-in, and an email
link on a new phone completes the check-in at its event."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from domain.badges import sign_in_with_link
from domain.checkin import remembered_profile
from domain.db import db, utcnow, writing
from domain.models import Attendance, EmailLink
from domain.profile import update_profile
from domain.signin import LinkError, record_link
from domain.tokens import new_token
from tests.conftest import csrf_token_from, shown
from tests.mail_support import confirm_directly, link_in

ANA = {
    "about": "Baker by night",
    "talk_about": "Hanoi night markets",
    "interests": ["sourdough", "marathons"],
    "links": ["https://ana.example/blog"],
}
CHOICES = {
    "about": "everyone",
    "interests": "connections",
    "talk": "nobody",
    "links": "connections",
    "email": "everyone",
}


class ServedForm(HTMLParser):
    """What a browser would send for one form of a page, as served (nothing typed)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.data = action, False, {}
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "form":
            self.inside = values.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and values.get("name"):
            if values.get("type") in ("checkbox", "radio") and "checked" not in values:
                return
            self.data.setdefault(values["name"], values.get("value") or "")
        if tag == "textarea":
            self.textarea = values.get("name")
            self.data[self.textarea] = ""

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self.textarea = None
        if tag == "form":
            self.inside = False


def served_form(page_html: str, action: str) -> dict[str, str]:
    parser = ServedForm(action)
    parser.feed(page_html)
    return parser.data


def visibility(attendance: Attendance) -> dict[str, str]:
    return {field: getattr(attendance, f"{field}_visibility") for field in CHOICES}


@pytest.fixture
def ana_before(make_event, make_attendee):
    """Ana checked in at an earlier event, with her own choices of who sees what."""
    earlier = make_event(name="March brunch")
    ana = make_attendee(earlier, "Ana Almeida", "ana@example.org", want_followups=True, **ANA)
    with writing():
        update_profile(ana.attendance, name="Ana Almeida", visibility=CHOICES, **ANA)
        db.session.commit()
    confirm_directly(ana)
    return ana


def attendance_at(event, person_id) -> Attendance | None:
    db.session.rollback()
    return db.session.scalars(
        sa.select(Attendance).where(
            Attendance.event_id == event.id, Attendance.person_id == person_id
        )
    ).one_or_none()


# ---------------------------------------------------------------- domain


def test_the_saved_profile_is_the_last_one(ana_before):
    saved = remembered_profile(ana_before.attendance.person_id)
    assert saved is not None
    assert (saved.name, saved.email, saved.about, saved.talk_about) == (
        "Ana Almeida",
        "ana@example.org",
        ANA["about"],
        ANA["talk_about"],
    )
    assert sorted(saved.interests) == sorted(ANA["interests"])
    assert saved.links == ANA["links"]
    assert saved.share_profile and saved.want_followups
    assert remembered_profile(None) is None
    assert remembered_profile(999_999) is None


def test_a_new_check_in_starts_from_the_last_choices(ana_before, make_event, make_attendee):
    later = make_event(name="April brunch")
    again = make_attendee(
        later, "Ana Almeida", "ana@example.org", person_id=ana_before.attendance.person_id
    )
    assert visibility(again.attendance) == CHOICES
    # The earlier event's record keeps its own copy of the interests.
    assert [i.name for i in ana_before.attendance.interests] == sorted(ANA["interests"])


def test_not_sharing_this_time_shows_nothing(ana_before, make_event, make_attendee):
    later = make_event(name="April brunch")
    again = make_attendee(
        later,
        "Ana Almeida",
        "ana@example.org",
        person_id=ana_before.attendance.person_id,
        share_profile=False,
    )
    assert set(visibility(again.attendance).values()) == {"nobody"}


def link_for(person_id: int, event_id: int | None) -> str:
    token = new_token()
    with writing():
        record_link(person_id, event_id, "signin", token)
        db.session.commit()
    return token


def test_a_sign_in_link_completes_the_check_in_at_its_event_once(ana_before, make_event):
    later, other = make_event(name="April brunch"), make_event(name="Elsewhere")
    person_id = ana_before.attendance.person_id
    token = link_for(person_id, later.id)
    with writing():
        signed = sign_in_with_link(token, new_token())
        db.session.commit()
    assert signed.checked_in_now and signed.badge is not None
    mine = attendance_at(later, person_id)
    assert mine is not None and visibility(mine) == CHOICES
    assert sorted(i.name for i in mine.interests) == sorted(ANA["interests"])
    assert mine.followup_consent_at is not None
    # Only at its own event, and only once.
    assert attendance_at(other, person_id) is None
    with writing(), pytest.raises(LinkError) as used:
        sign_in_with_link(token, new_token())
    assert used.value.code == "used"
    db.session.rollback()
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .where(Attendance.person_id == person_id)
        )
        == 2
    )


def test_a_sign_in_link_checks_no_one_in_once_check_in_has_closed(ana_before, make_event):
    later = make_event(name="April brunch")
    with writing():
        later.starts_at -= timedelta(days=2)
        later.ends_at -= timedelta(days=2)
        db.session.commit()
    token = link_for(ana_before.attendance.person_id, later.id)
    with writing():
        signed = sign_in_with_link(token, new_token())
        db.session.commit()
    assert not signed.checked_in_now and signed.badge is None
    # The event has ended: the link signs in to /me rather than to its check-in.
    assert signed.ended and signed.check_in_at is None
    assert attendance_at(later, ana_before.attendance.person_id) is None


def test_an_expired_link_checks_no_one_in(ana_before, make_event):
    later = make_event(name="April brunch")
    token = link_for(ana_before.attendance.person_id, later.id)
    with writing():
        for link in db.session.scalars(sa.select(EmailLink)):
            link.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    with writing(), pytest.raises(LinkError):
        sign_in_with_link(token, new_token())
    assert attendance_at(later, ana_before.attendance.person_id) is None


# ---------------------------------------------------------------- HTTP


def test_a_remembered_phone_checks_in_with_one_tap(app_factory, make_event):
    app = app_factory(WTF_CSRF_ENABLED=True)
    earlier, later = make_event(name="March brunch"), make_event(name="April brunch")
    phone = app.test_client()
    first = phone.get(f"/e/{earlier.checkin_token}").text
    phone.post(
        f"/e/{earlier.checkin_token}",
        data={
            "name": "Ana Almeida",
            "email": "ana@example.org",
            "about": ANA["about"],
            "interests": "sourdough, marathons",
            "links": ANA["links"][0],
            "share_profile": "y",
            "csrf_token": csrf_token_from(first),
        },
    )
    page = phone.get(f"/e/{later.checkin_token}")
    assert "Check in as Ana Almeida" in shown(page)
    assert 'value="ana@example.org"' in page.text and ANA["about"] in shown(page)
    # One tap: the check-in form exactly as served, nothing typed.
    data = served_form(page.text, f"/e/{later.checkin_token}")
    assert data["name"] == "Ana Almeida" and data["share_profile"] == "y"
    done = phone.post(f"/e/{later.checkin_token}", data=data, follow_redirects=True)
    assert "You're checked in." in shown(done)
    db.session.rollback()
    person_id = db.session.scalar(sa.select(Attendance.person_id).limit(1))
    mine = attendance_at(later, person_id)
    assert mine is not None and mine.profile_consent_at is not None
    assert sorted(i.name for i in mine.interests) == ["marathons", "sourdough"]


def test_someone_else_on_a_remembered_phone_gets_a_blank_form(app, make_event, make_attendee):
    event = make_event()
    phone = app.test_client()
    phone.post(
        f"/e/{make_event(name='Earlier').checkin_token}",
        data={"name": "Ana Almeida", "email": "ana@example.org"},
    )
    page = phone.get(f"/e/{event.checkin_token}?new=1")
    assert "Check in as" not in shown(page) and "ana@example.org" not in page.text


def test_a_new_phone_checks_in_with_the_email_alone(app, make_event, mailbox, ana_before):
    later = make_event(name="April brunch")
    phone = app.test_client()
    landing = phone.get(f"/e/{later.checkin_token}")
    assert "Checked in with Rapport before?" in shown(landing)
    sent = phone.post(f"/e/{later.checkin_token}/sign-in", data={"email": "ana@example.org"})
    assert "Check your email" in sent.text
    mailbox.deliver()
    path = link_in(mailbox.one("ana@example.org", "signin"), "/m/")
    ask = phone.get(path)
    assert "Check in as Ana Almeida" in shown(ask)
    done = phone.post(path, follow_redirects=True)
    assert "You're checked in, with your saved profile." in shown(done)
    assert "svg" in done.text and ANA["about"] in shown(done)
    assert attendance_at(later, ana_before.attendance.person_id) is not None
