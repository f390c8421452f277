"""Domain rules for checking in: people, attendances, interests, idempotency."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain.checkin import CheckInError, Profile, check_in
from domain.db import db, writing
from domain.limits import MAX_INTERESTS
from domain.models import PROFILE_FIELDS, Attendance, Interest, Person
from domain.profile import (
    ProfileError,
    normalise_interests,
    normalise_links,
    split_interests,
)
from domain.tokens import hash_token, new_token


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_check_in_creates_person_attendance_and_interests(make_event, make_attendee):
    event = make_event()
    result = make_attendee(
        event,
        "Ana",
        "Ana@Example.COM ",
        interests=["Marathons", "travel in  Asia"],
        about="Baker",
        links=["example.org/ana"],
    )
    assert result.created
    attendance = db.session.get(Attendance, result.attendance.id)
    assert attendance.person.email == "ana@example.com"
    assert attendance.person.name == "Ana"
    assert attendance.person.links == ["https://example.org/ana"]
    assert [i.name for i in attendance.interests] == ["Marathons", "travel in Asia"]
    assert [i.key for i in attendance.interests] == ["marathon", "travel in asia"]
    assert attendance.badge_token_hash == hash_token(result.badge_token)
    assert len(result.badge_token) >= 43
    assert attendance.profile_consent_at is not None
    assert attendance.followup_consent_at is None
    assert (count(Person), count(Attendance), count(Interest)) == (1, 1, 2)


def test_same_device_checking_in_again_is_idempotent(make_event, make_attendee):
    event = make_event()
    device = new_token()
    first = make_attendee(event, "Ana", "ana@example.com", device=device, interests=["chess"])
    again = make_attendee(event, "Ana", "ANA@example.com", device=device, interests=["chess"])
    assert not again.created
    assert again.attendance.id == first.attendance.id
    assert again.badge_token == first.badge_token
    assert (count(Person), count(Attendance), count(Interest)) == (1, 1, 1)


def test_other_device_cannot_take_over_a_checked_in_email(make_event, make_attendee):
    event = make_event()
    first = make_attendee(event, "Ana", "ana@example.com")
    with pytest.raises(CheckInError) as raised:
        make_attendee(event, "Mallory", "ana@example.com")
    db.session.rollback()
    assert raised.value.code == "checked_in_elsewhere"
    person = db.session.get(Person, first.attendance.person_id)
    assert person.name == "Ana"
    assert count(Attendance) == 1


def test_email_known_from_another_event_is_not_taken_over(make_event, make_attendee):
    brunch, party = make_event(), make_event(name="Party")
    make_attendee(brunch, "Ana", "ana@example.com")
    with pytest.raises(CheckInError) as raised:
        make_attendee(party, "Mallory", "ana@example.com")
    db.session.rollback()
    assert raised.value.code == "email_in_use"
    assert db.session.scalars(sa.select(Person.name)).all() == ["Ana"]


def test_the_same_phone_checks_its_person_in_at_a_new_event(make_event, make_attendee):
    brunch, party = make_event(), make_event(name="Party")
    first = make_attendee(brunch, "Ana", "ana@example.com", interests=["sourdough"])
    second = make_attendee(
        party,
        "Ana B.",
        "ana@example.com",
        person_id=first.attendance.person_id,
        interests=["marathons"],
    )
    assert second.created
    assert second.attendance.person_id == first.attendance.person_id
    assert second.attendance.person.name == "Ana B."
    assert [i.name for i in second.attendance.interests] == ["marathons"]
    assert count(Attendance) == 2


def test_unticked_consent_is_recorded_as_none(make_event):
    event = make_event()
    with writing():
        result = check_in(
            event, Profile(name="Ben", email="ben@example.org"), device_secret=new_token()
        )
        db.session.commit()
    assert result.attendance.profile_consent_at is None
    assert result.attendance.followup_consent_at is None
    attendance = result.attendance
    assert {getattr(attendance, f"{field}_visibility") for field in PROFILE_FIELDS} == {"nobody"}


def test_ticked_consent_gives_the_default_visibility(make_event, make_attendee):
    attendance = make_attendee(make_event(), share_profile=True).attendance
    assert attendance.profile_consent_at is not None
    assert (
        attendance.about_visibility,
        attendance.interests_visibility,
        attendance.talk_visibility,
        attendance.links_visibility,
        attendance.email_visibility,
    ) == ("everyone", "everyone", "everyone", "connections", "connections")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["  Marathons "], ["Marathons"]),
        (["Travel   in\tAsia"], ["Travel in Asia"]),
        (["Sourdough", "sourdough", "SOURDOUGH "], ["Sourdough"]),
        (["", "   ", "chess"], ["chess"]),
        (["Ｃｈｅｓｓ"], ["Chess"]),
        (["Straße", "STRASSE"], ["Straße"]),
        (["board games", "Board Game", "marathon", "Marathons"], ["board games", "marathon"]),
    ],
)
def test_interest_normalisation(given, expected):
    assert normalise_interests(given) == expected


def test_interest_limits():
    assert len(normalise_interests([f"tag {n}" for n in range(MAX_INTERESTS)])) == MAX_INTERESTS
    assert normalise_interests(["same"] * 30) == ["same"]
    with pytest.raises(ProfileError) as too_many:
        normalise_interests([f"tag {n}" for n in range(MAX_INTERESTS + 1)])
    assert too_many.value.code == "too_many_interests"
    with pytest.raises(ProfileError) as too_long:
        normalise_interests(["x" * 41])
    assert too_long.value.code == "interest_too_long"
    with pytest.raises(ProfileError) as control:
        normalise_interests(["bad\x07tag"])
    assert control.value.code == "interest_control"


def test_split_interests_on_commas_semicolons_and_lines():
    assert split_interests("a, b;c\nd,, ") == ["a", " b", "c", "d"]


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,x", "ftp://example.org", "https://", "a b"]
)
def test_links_must_be_web_addresses(link):
    with pytest.raises(ProfileError):
        normalise_links([link])


def test_links_gain_https_and_dedupe():
    assert normalise_links(["example.org", "https://example.org", " http://x.org/a "]) == [
        "https://example.org",
        "http://x.org/a",
    ]


def test_check_in_refuses_bad_interests_before_writing(make_event):
    event = make_event()
    with writing(), pytest.raises(ProfileError):
        check_in(
            event,
            Profile(name="Ana", email="ana@example.org", interests=[str(n) for n in range(11)]),
            device_secret=new_token(),
        )
    db.session.rollback()
    assert count(Person) == 0
