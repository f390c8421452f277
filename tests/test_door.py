"""The door desk: checking people in by hand, scanning badges, the count, printed badges."""

from __future__ import annotations

from datetime import timedelta

import pypdfium2
import pytest
import sqlalchemy as sa

from domain.badges import retire_badges
from domain.checkin import CheckInError, find_attendance_by_badge
from domain.db import db, utcnow, writing
from domain.door import NO_EMAIL_DOMAIN, check_in_at_door, door_count, has_email, scan_badge
from domain.models import Attendance, OutboxMessage, Person
from tests.conftest import PUBLIC_URL, login, qr_codes, shown


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def door_check_in(event, **fields):
    with writing():
        done = check_in_at_door(event, **fields)
        db.session.commit()
    return done


# ---------------------------------------------------------------- manual check-in (domain)


def test_a_manual_check_in_is_idempotent_by_email(make_event):
    event = make_event()
    first = door_check_in(event, name="Ana Lima", email="ana@example.org", interests=["chess"])
    again = door_check_in(event, name="Ana L.", email=" ANA@example.org ", interests=["go"])
    assert first.created and not again.created
    assert again.attendance.id == first.attendance.id
    assert (count(Person), count(Attendance)) == (1, 1)
    assert first.attendance.person.name == "Ana Lima"
    assert [i.name for i in first.attendance.interests] == ["chess"]


def test_without_an_email_each_check_in_is_someone_new_and_nothing_is_sent(make_event):
    event = make_event()
    one = door_check_in(event, name="Cleo", want_followups=True)
    two = door_check_in(event, name="Cleo")
    assert one.created and two.created and one.attendance.id != two.attendance.id
    assert one.attendance.person.email.endswith("@" + NO_EMAIL_DOMAIN)
    assert not has_email(one.attendance)
    assert count(OutboxMessage) == 0


def test_a_manual_check_in_with_followups_asks_to_confirm_the_address(make_event):
    event = make_event()
    done = door_check_in(event, name="Ben", email="ben@example.org", want_followups=True)
    assert done.attendance.followup_consent_at is not None
    assert [m.kind for m in db.session.scalars(sa.select(OutboxMessage))] == ["confirm"]


def test_the_desk_cannot_check_in_someone_known_from_another_event(make_event, make_attendee):
    # Typing a known email must neither show that person's profile nor put them, with a
    # profile staff chose, at an event they never came to: they check in on their phone.
    earlier = make_event()
    ana = make_attendee(earlier, "Ana Lima", "ana@example.org", about="Baker")
    tonight = make_event()
    before = (count(Person), count(Attendance), count(OutboxMessage))
    with writing(), pytest.raises(CheckInError) as refused:
        check_in_at_door(
            tonight,
            name="someone",
            email="ana@example.org",
            interests=["crypto"],
            share_profile=True,
            want_followups=True,
        )
    db.session.rollback()
    assert refused.value.code == "email_known"
    assert "Ana" not in refused.value.message and "Baker" not in refused.value.message
    assert (count(Person), count(Attendance), count(OutboxMessage)) == before
    # Her phone badge from the other event still works.
    assert find_attendance_by_badge(ana.badge_token).id == ana.attendance.id


def test_a_phone_checked_in_person_is_not_checked_in_twice_nor_loses_their_badge(
    make_event, make_attendee
):
    event = make_event()
    ana = make_attendee(event, "Ana Lima", "ana@example.org")
    done = door_check_in(event, name="Ana", email="ana@example.org")
    assert not done.created and done.attendance.id == ana.attendance.id
    assert find_attendance_by_badge(ana.badge_token).id == ana.attendance.id


def test_no_manual_check_in_outside_the_check_in_window(make_event):
    start = utcnow().replace(tzinfo=None, microsecond=0) + timedelta(days=3)
    event = make_event(starts_at=start, ends_at=start + timedelta(hours=2), timezone="UTC")
    with writing(), pytest.raises(CheckInError) as refused:
        check_in_at_door(event, name="Early bird")
    db.session.rollback()
    assert refused.value.code == "not_yet"
    assert count(Attendance) == 0


# ---------------------------------------------------------------- count and scan (domain)


def test_the_count_says_who_is_in_and_who_arrived_lately(make_event, make_attendee):
    event = make_event()
    early = make_attendee(event)
    make_attendee(event)
    make_attendee(make_event())  # another event
    with writing():
        early.attendance.checked_in_at = utcnow() - timedelta(minutes=11)
        db.session.commit()
    found = door_count(event)
    assert (found.checked_in, found.recent, found.recent_minutes) == (2, 1, 10)


def test_scanning_says_whose_badge_it_is_or_why_not(make_organiser, make_event, make_attendee):
    organiser = make_organiser()
    last_month = make_event(organiser)
    with writing():
        last_month.starts_at -= timedelta(days=30)
        db.session.commit()
    event = make_event(organiser)
    ana = make_attendee(event, "Ana Lima", interests=["chess", "sourdough"])
    regular = make_attendee(last_month, "Ben Okafor", "ben@example.org")
    ben = make_attendee(
        event, "Ben Okafor", "ben@example.org", person_id=regular.attendance.person_id
    )
    elsewhere = make_attendee(make_event(), "Cleo")

    found = scan_badge(event, f"{PUBLIC_URL}/b/{ana.badge_token}")
    assert (found.outcome, found.name, found.first_timer) == ("found", "Ana Lima", True)
    assert found.interests == ["chess", "sourdough"]
    assert found.arrived.utcoffset() is not None
    back = scan_badge(event, f"/b/{ben.badge_token}")
    assert (back.first_timer, back.earlier_events) == (False, 1)
    assert scan_badge(event, f"{PUBLIC_URL}/b/{elsewhere.badge_token}").outcome == "other_event"
    assert scan_badge(event, f"{PUBLIC_URL}/e/{event.checkin_token}").outcome == "poster"
    assert scan_badge(event, "WIFI:S:cafe;P:secret;;").outcome == "not_a_badge"
    with writing():
        retire_badges([ana.badge_token])
        db.session.commit()
    assert scan_badge(event, f"{PUBLIC_URL}/b/{ana.badge_token}").outcome == "stale"


# ---------------------------------------------------------------- over HTTP


def test_door_staff_check_someone_in_by_hand_and_get_the_print_button(
    client, make_event, make_member
):
    event = make_event()
    login(client, make_member(event, "door"))
    desk = client.get(f"/organiser/events/{event.id}/door")
    assert desk.status_code == 200 and "0</strong> checked in" in desk.text
    response = client.post(
        f"/organiser/events/{event.id}/door/check-in",
        data={"name": "Dev Rao", "email": "dev@example.org", "interests": "jazz, chess"},
    )
    assert response.status_code == 303
    page = shown(client.get(response.location))
    assert "Dev Rao is checked in" in page and "Print their badge" in page
    assert "1</strong> checked in · <strong>1</strong> arrived in the last 10 minutes" in page
    again = client.post(
        f"/organiser/events/{event.id}/door/check-in",
        data={"name": "Dev", "email": "dev@example.org"},
    )
    assert "Dev Rao was already checked in" in shown(client.get(again.location))
    assert count(Attendance) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "Type the name of the person you are checking in."),
        ({"name": "Dev", "email": "not an address"}, "Please enter a valid email address"),
        ({"name": "Dev", "interests": ",".join(f"i{n}" for n in range(20))}, "Up to"),
        ({"name": "Dev\x00"}, "without control characters"),
        ({"name": "Dev", "suggested": ["a\x01b"]}, "control characters"),
        ({"name": "Dev", "suggested": [f"t{n}" for n in range(40)]}, "Up to"),
    ],
)
def test_bad_door_input_gets_a_clear_message_and_changes_nothing(
    client, make_event, make_organiser, data, message
):
    owner = make_organiser()
    event = make_event(owner)
    login(client, owner)
    response = client.post(f"/organiser/events/{event.id}/door/check-in", data=data)
    assert response.status_code == 200
    assert message in response.text
    assert count(Attendance) == 0


def test_a_known_email_at_the_desk_is_refused_without_naming_anyone(
    client, make_event, make_attendee, make_organiser
):
    make_attendee(make_event(), "Victoria Real", "victim@example.org")
    owner = make_organiser()
    event = make_event(owner)
    login(client, owner)
    before = (count(Person), count(Attendance), count(OutboxMessage))
    response = client.post(
        f"/organiser/events/{event.id}/door/check-in",
        data={"name": "x", "email": "victim@example.org", "want_followups": "y"},
    )
    assert response.status_code == 200
    assert "check them in here without an email" in response.text
    assert "Victoria" not in response.text
    assert (count(Person), count(Attendance), count(OutboxMessage)) == before


def test_the_desk_says_whose_badge_a_pasted_link_is(client, make_event, make_attendee, make_member):
    event = make_event()
    ana = make_attendee(event, "Ana Lima", interests=["chess"])
    login(client, make_member(event, "door"))
    url = f"/organiser/events/{event.id}/door/scan"
    whole = client.post(url, data={"code": f"{PUBLIC_URL}/b/{ana.badge_token}"})
    assert whole.status_code == 200 and "Ana Lima" in whole.text and "First time" in whole.text
    partial = client.post(url, data={"code": f"{PUBLIC_URL}/b/{ana.badge_token}", "partial": "1"})
    assert "<h1>" not in partial.text and "Ana Lima" in partial.text
    stale = client.post(url, data={"code": f"{PUBLIC_URL}/b/{'x' * 43}", "partial": "1"})
    assert "This code doesn't open a badge any more" in stale.text


def test_the_scanner_hears_about_a_code_too_long_to_be_a_badge(client, make_event, make_member):
    event = make_event()
    login(client, make_member(event, "door"))
    url = f"/organiser/events/{event.id}/door/scan"
    # Such as a contact card's QR: the camera reads it, and the desk must say something.
    card = "BEGIN:VCARD\nVERSION:3.0\n" + "NOTE:" + "x" * 700 + "\nEND:VCARD"
    partial = client.post(url, data={"code": card, "partial": "1"})
    assert partial.status_code == 200
    assert "That isn't a Rapport badge." in partial.text


# ---------------------------------------------------------------- printed badges


def decode_pdf(pdf: bytes) -> list[list[str]]:
    """Return the text of every QR code on each page of a PDF."""
    pages = []
    for page in pypdfium2.PdfDocument(pdf):
        image = page.render(scale=2).to_pil()
        pages.append([result.text for result in qr_codes(image)])
    return pages


def test_the_badge_pdf_has_eight_a_sheet_and_each_qr_opens_its_persons_badge(
    client, make_event, make_attendee, make_member
):
    event = make_event()
    people = [make_attendee(event, f"Guest {n:02}", interests=["chess"]) for n in range(9)]
    phone_tokens = {p.attendance.id: p.badge_token for p in people}
    login(client, make_member(event, "door"))
    response = client.post(f"/organiser/events/{event.id}/badges.pdf", data={"paper": "letter"})
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    document = pypdfium2.PdfDocument(response.data)
    assert len(document) == 2
    assert [round(v) for v in document[0].get_size()] == [612, 792]  # US Letter, in points
    pages = decode_pdf(response.data)
    assert [len(codes) for codes in pages] == [8, 1]
    named = {}
    for text in sum(pages, []):
        assert text.startswith(f"{PUBLIC_URL}/b/")
        attendance = find_attendance_by_badge(text.rsplit("/", 1)[1])
        named[attendance.person.name] = attendance.id
    assert sorted(named) == [f"Guest {n:02}" for n in range(9)]
    # Printing takes no badge away from a phone, and a printed badge owns nothing.
    for attendance_id, token in phone_tokens.items():
        assert find_attendance_by_badge(token).id == attendance_id
    printed = sum(pages, [])[0].rsplit("/", 1)[1]
    assert printed not in phone_tokens.values()
    card = client.application.test_client().get(f"/b/{printed}")
    assert card.status_code == 200 and "Guest" in card.text
    assert "My profile" not in card.text and "Forget this phone" not in card.text
    # Printing again gives the same codes.
    again = client.post(f"/organiser/events/{event.id}/badges.pdf", data={"paper": "a4"})
    assert sorted(sum(decode_pdf(again.data), [])) == sorted(sum(pages, []))


def test_one_persons_badge_and_the_html_sheet(client, make_event, make_attendee, make_organiser):
    owner = make_organiser()
    event = make_event(owner)
    ana = make_attendee(event, "Ana Lima", interests=["chess", "go", "jazz", "sourdough"])
    make_attendee(event, "Ben Okafor")
    login(client, owner)
    page = client.post(
        f"/organiser/events/{event.id}/badges", data={"attendance": str(ana.attendance.id)}
    )
    assert page.status_code == 200
    assert page.text.count('class="name-badge"') == 1
    assert "Ana Lima" in page.text and "Ben Okafor" not in page.text
    assert "sourdough" not in page.text  # three interests at most
    assert 'class="sheet a4"' in page.text
    everyone = client.post(f"/organiser/events/{event.id}/badges", data={"paper": "letter"})
    assert everyone.text.count('class="name-badge"') == 2
    assert 'class="sheet letter"' in everyone.text
    # Someone of another event is no one here.
    other = make_attendee(make_event(), "Cleo")
    stranger = client.post(
        f"/organiser/events/{event.id}/badges", data={"attendance": str(other.attendance.id)}
    )
    assert "Cleo" not in stranger.text and "No one is checked in yet" in stranger.text


@pytest.mark.parametrize("typed", ["99999999999", "²", "-1", "0", "1" * 40, "x"])
def test_an_odd_person_to_print_is_no_one(client, make_event, make_organiser, make_attendee, typed):
    owner = make_organiser()
    event = make_event(owner)
    make_attendee(event, "Ana Lima")
    login(client, owner)
    page = client.post(f"/organiser/events/{event.id}/badges", data={"attendance": typed})
    assert page.status_code == 200 and "Ana Lima" not in page.text
    desk = client.get(f"/organiser/events/{event.id}/door", query_string={"person": typed})
    assert desk.status_code == 200 and "is checked in</h2>" not in desk.text
