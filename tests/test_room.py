"""The organiser's night: events list, states over time, pictures of the room, connection
health, a clean ending, retention and a paused sender."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, utcnow, writing
from domain.event_state import EventState, event_state
from domain.events import listed_events, wall_clock_now
from domain.health import connection_health
from domain.limits import EMAILS_PAGE_SIZE, RETENTION_DAYS
from domain.models import (
    Attendance,
    Block,
    Connection,
    EmailLink,
    Event,
    Organiser,
    OutboxMessage,
    Person,
    SenderState,
    attendance_interest,
)
from domain.pictures import arrivals
from domain.retention import purge_due
from domain.room import Guest, Room, room_of
from domain.sending import SENDER_STATE_ID, sending_hold
from tests.conftest import login
from tests.mail_support import confirm_directly, end_now, run_worker_once

SVG = "{http://www.w3.org/2000/svg}"


def connect(a, b) -> None:
    """Connect two attendees both ways, which accepts the connection."""
    with writing():
        request_connection(a.attendance, b.attendance)
        request_connection(b.attendance, a.attendance)
        db.session.commit()


@pytest.fixture
def night(app, make_event, make_attendee):
    """A hand-made room: six people, three connections, two who met no one, one block.

    Dan does not show his profile: no name on the pictures, no interests to the organiser.
    """
    event = make_event(name="Bread & running", timezone="Asia/Kathmandu")
    people = {
        "Ana": make_attendee(event, "Ana", interests=["sourdough", "marathons"]),
        "Ben": make_attendee(event, "Ben", interests=["sourdough", "chess"]),
        "Cleo": make_attendee(event, "Cleo", interests=["chess"]),
        "Dan": make_attendee(event, "Dan", interests=["sourdough"], share_profile=False),
        "Eve": make_attendee(event, "Eve", interests=["marathons"]),
        "Finn": make_attendee(event, "Finn", interests=["sourdough"]),
    }
    connect(people["Ana"], people["Ben"])
    connect(people["Ben"], people["Cleo"])
    connect(people["Ana"], people["Dan"])
    with writing():
        db.session.add(
            Block(
                blocker_person_id=people["Finn"].attendance.person_id,
                blocked_person_id=people["Ben"].attendance.person_id,
            )
        )
        db.session.commit()
    return event, people


# ---------------------------------------------------------------- states over time


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def test_an_event_moves_through_its_states_over_time(make_event, zone):
    local = ZoneInfo(zone)
    event = make_event(
        timezone=zone,
        starts_at=datetime(2030, 3, 9, 19, 0),
        ends_at=datetime(2030, 3, 9, 23, 0),
        checkin_opens_minutes=60,
    )
    start = datetime(2030, 3, 9, 19, 0, tzinfo=local)
    seen = [
        event_state(event, moment.astimezone(UTC))
        for moment in (
            start - timedelta(hours=3),
            start - timedelta(minutes=61),
            start - timedelta(minutes=60),
            start - timedelta(seconds=1),
            start,
            start + timedelta(hours=3, minutes=59),
            start + timedelta(hours=4),
            start + timedelta(days=200),
        )
    ]
    assert seen == [
        EventState.UPCOMING,
        EventState.UPCOMING,
        EventState.CHECKIN_OPEN,
        EventState.CHECKIN_OPEN,
        EventState.LIVE,
        EventState.LIVE,
        EventState.ENDED,
        EventState.ENDED,
    ]
    # The same instant in another zone is the same moment: the state does not move.
    moment = start.astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert event_state(event, moment) is EventState.LIVE


def test_ending_an_event_twice_keeps_its_first_end(make_event):
    event = make_event()
    end_now(event)
    first = db.session.get_one(Event, event.id).ends_at
    end_now(event)
    db.session.expire_all()
    assert db.session.get_one(Event, event.id).ends_at == first
    assert event_state(db.session.get_one(Event, event.id), utcnow()) is EventState.ENDED


# ---------------------------------------------------------------- events list


def test_events_list_shows_state_local_date_and_counts_in_one_query(
    app, client, make_organiser, make_event, make_attendee
):
    organiser = make_organiser()
    old = make_event(
        organiser,
        name="Last year's picnic",
        timezone="Australia/Sydney",
        starts_at=datetime(2026, 1, 10, 12, 0),
        ends_at=datetime(2026, 1, 10, 16, 0),
    )
    live = make_event(organiser, name="Tonight")
    later = make_event(
        organiser,
        name="Next year's gala",
        starts_at=datetime(2030, 5, 1, 19, 0),
        ends_at=datetime(2030, 5, 1, 23, 0),
    )
    a, b, c = (make_attendee(live) for _ in range(3))
    connect(a, b)
    with writing():
        request_connection(a.attendance, c.attendance)  # only asked: not a connection yet
        db.session.commit()

    owner = db.session.get_one(Organiser, organiser.id)
    statements = []

    def record(*args) -> None:
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        listed = listed_events(owner, utcnow())
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert [item.event.name for item in listed] == [later.name, live.name, old.name]
    assert [(item.state, item.attendees, item.connections) for item in listed] == [
        (EventState.UPCOMING, 0, 0),
        (EventState.LIVE, 3, 1),
        (EventState.ENDED, 0, 0),
    ]
    assert listed[2].starts.strftime("%d %b %Y %H:%M %Z") == "10 Jan 2026 12:00 AEDT"

    login(client, organiser)
    page = client.get("/organiser/").text
    assert "Sat 10 Jan 2026, 12:00" in page and "(Australia/Sydney)" in page
    assert re.search(r"Tonight</a>\s*<span class=\"state state-live\">Live</span>", page)
    assert "<strong>3</strong> checked in" in page
    assert "<strong>1</strong> connection\n" in page or "<strong>1</strong> connection " in page


def test_new_event_form_takes_the_latest_events_zone_and_offers_the_browsers(
    client, make_organiser, make_event
):
    organiser = make_organiser()
    login(client, organiser)
    first = client.get("/organiser/events/new").text
    assert re.search(r'id="timezone"[^>]*value="UTC"', first)
    assert "data-browser-timezone" in first and "organiser.js" in first
    make_event(organiser, timezone="America/Bogota")
    again = client.get("/organiser/events/new").text
    assert re.search(r'id="timezone"[^>]*value="America/Bogota"', again)
    asked = client.get("/organiser/events/new?timezone=Asia/Tokyo").text
    assert re.search(r'id="timezone"[^>]*value="Asia/Tokyo"', asked)
    assert "data-browser-timezone" not in asked


def test_description_shows_on_the_landing_page_escaped(client, make_event):
    event = make_event(description="Bring <b>bread</b>\nand shoes")
    page = client.get(f"/e/{event.checkin_token}").text
    assert "Bring &lt;b&gt;bread&lt;/b&gt;\nand shoes" in page
    assert "<b>bread</b>" not in page


# ---------------------------------------------------------------- health and pictures


def test_health_numbers_of_a_hand_made_event(night):
    event, _people = night
    health = connection_health(room_of(event))
    assert (health.attendees, health.connected, health.connections) == (6, 4, 3)
    assert health.share_connected == pytest.approx(4 / 6)
    assert health.median_connections == 1.0  # degrees 2, 2, 1, 1, 0, 0
    assert health.unconnected == 2
    by_name = {person.name: person for person in health.introductions}
    assert set(by_name) == {"Eve", "Finn"}
    assert by_name["Eve"].could_meet == ("Ana",)
    # Finn blocked Ben, and Dan hides his interests: only Ana is suggested.
    assert by_name["Finn"].could_meet == ("Ana",)
    # Ana-Dan shares nothing the organiser may see (Dan hides his interests).
    assert health.top_shared == [("chess", 1), ("sourdough", 1)]


def test_health_of_an_empty_room_is_zero_not_an_error():
    health = connection_health(Room([], []))
    assert (health.attendees, health.share_connected, health.median_connections) == (0, 0.0, 0.0)


def test_arrivals_are_counted_per_five_minutes_on_the_events_clock():
    zone = ZoneInfo("Asia/Kathmandu")  # UTC+05:45: five-minute bins on its own clock

    def guest(n: int, hour: int, minute: int) -> Guest:
        moment = datetime(2030, 1, 1, hour, minute, 30, tzinfo=zone).astimezone(UTC)
        return Guest(n, n, f"P{n}", moment, True, ())

    room = Room([guest(1, 18, 2), guest(2, 18, 4), guest(3, 18, 7), guest(4, 18, 21)], [])
    bins = arrivals(room, "Asia/Kathmandu")
    assert [(b.starts.strftime("%H:%M"), b.count) for b in bins] == [
        ("18:00", 2),
        ("18:05", 1),
        ("18:10", 0),
        ("18:15", 0),
        ("18:20", 1),
    ]
    assert {b.minutes for b in bins} == {5}


def svgs(page: str) -> dict[str, ET.Element]:
    """Parse every SVG picture on a page, by its chart class."""
    found = {}
    for markup in re.findall(r"<svg .*?</svg>", page, re.S):
        element = ET.fromstring(markup)
        kind = element.get("class", "").split()[-1]
        found[kind] = element
    return found


def test_pictures_parse_as_svg_and_count_what_the_data_holds(app, client, night):
    event, people = night
    with writing():
        # Arrivals spread over the evening: 18:02, 18:04, 18:07 ... in the event's zone.
        zone = ZoneInfo(event.timezone)
        for n, result in enumerate(people.values()):
            moment = datetime(2030, 1, 1, 18, 2 + 3 * n, tzinfo=zone).astimezone(UTC)
            db.session.get_one(Attendance, result.attendance.id).checked_in_at = moment
        db.session.commit()
    login(client, db.session.get_one(Event, event.id).organiser)
    page = client.get(f"/organiser/events/{event.id}/pictures/live")
    assert page.status_code == 200
    charts = svgs(page.text)
    assert set(charts) == {"arrivals", "network", "share", "shared"}

    bars = charts["arrivals"].findall(f"{SVG}rect")
    assert sum(int(bar.get("data-count")) for bar in bars) == 6
    # 18:02 | 18:05, 18:08 | 18:11, 18:14 | 18:17
    assert [int(bar.get("data-count")) for bar in bars] == [1, 2, 2, 1]

    network = charts["network"]
    assert len(network.findall(f".//{SVG}circle")) == 6
    assert len(network.findall(f".//{SVG}line")) == db.session.scalar(
        sa.select(sa.func.count()).select_from(Connection).where(Connection.status == "accepted")
    )
    labels = sorted(text.text for text in network.findall(f".//{SVG}text"))
    assert labels == ["Ana", "Ben", "Cleo", "Eve", "Finn"]  # not Dan: he shows no profile
    assert "Dan" not in ET.tostring(network, encoding="unicode")
    degrees = sorted(int(c.get("data-connections")) for c in network.iter(f"{SVG}circle"))
    assert degrees == [0, 0, 1, 1, 2, 2]

    assert int(charts["share"].findall(f"{SVG}rect")[1].get("data-count")) == 4
    shared = [int(bar.get("data-count")) for bar in charts["shared"].findall(f"{SVG}rect")]
    assert shared == [1, 1]
    # Each picture has a table saying the same to a screen reader.
    assert page.text.count('<div class="visually-hidden"><table>') == 3
    assert "<td>18:10</td>" not in page.text and re.search(
        r"<td>\w{3} 18:10</td><td>2</td>", page.text
    )


def test_event_page_loads_pictures_apart_from_the_attendee_refresh(client, night):
    event, _people = night
    login(client, db.session.get_one(Event, event.id).organiser)
    page = client.get(f"/organiser/events/{event.id}").text
    assert f'data-live-url="/organiser/events/{event.id}/pictures/live"' in page
    assert "<svg" not in page  # drawn on their own route, not with every page load
    live = client.get(f"/organiser/events/{event.id}/live").text
    assert "network" not in live
    summary = client.get(f"/organiser/events/{event.id}/pictures").text
    assert "Pictures of the room" in summary and 'class="chart network"' in summary


# ---------------------------------------------------------------- a clean ending


@pytest.fixture
def organiser_client(app, met):
    client = app.test_client()
    login(client, db.session.get_one(Event, met.event.id).organiser)
    return client


def test_ending_asks_first_and_says_who_gets_emails_when(organiser_client, met, make_attendee):
    page = organiser_client.get(f"/organiser/events/{met.event.id}")
    assert f'href="/organiser/events/{met.event.id}/end">End the event now' in page.text
    ask = organiser_client.get(f"/organiser/events/{met.event.id}/end")
    assert ask.status_code == 200
    # The digest goes when the event ends (the fixture's setting): now.
    assert "Follow-up emails go to <strong>2 people</strong> now." in ask.text
    assert db.session.get_one(Event, met.event.id).ends_at > utcnow()  # asking changed nothing

    ended = organiser_client.post(f"/organiser/events/{met.event.id}/end")
    assert ended.status_code == 303
    after = organiser_client.get(f"/organiser/events/{met.event.id}").text
    assert "<strong>Ended</strong> at" in after
    assert "End the event now" not in after
    emails = organiser_client.get(f"/organiser/events/{met.event.id}/emails").text
    assert "End the event now" not in emails


def test_an_event_that_has_not_started_cannot_be_ended(client, make_event, make_attendee):
    """Ended before its start it would last no time and its settings could not be saved."""
    soon = wall_clock_now("Europe/London").replace(microsecond=0) + timedelta(minutes=30)
    event = make_event(starts_at=soon, ends_at=soon + timedelta(hours=3))
    make_attendee(event, "Early Bird")  # check-in opens before the start
    before = db.session.get_one(Event, event.id)
    starts, ends = before.starts_at, before.ends_at
    login(client, before.organiser)
    page = client.get(f"/organiser/events/{event.id}").text
    assert "Check-in open" in page and "End the event now" not in page
    assert "End the event now" not in client.get(f"/organiser/events/{event.id}/emails").text
    ask = client.get(f"/organiser/events/{event.id}/end")
    assert ask.status_code == 200
    assert "hasn't started" in ask.text and "change its times" in ask.text
    refused = client.post(f"/organiser/events/{event.id}/end")
    assert refused.status_code == 409 and "hasn't started" in refused.text
    db.session.expire_all()
    after = db.session.get_one(Event, event.id)
    assert (after.starts_at, after.ends_at) == (starts, ends)


def test_ending_says_who_gets_emails_once_they_confirm(app, client, make_event, make_attendee):
    event = make_event()
    kofi = make_attendee(event, "Kofi", want_followups=True).attendance
    lena = make_attendee(event, "Lena", want_followups=True).attendance
    with writing():
        request_connection(kofi, lena)
        request_connection(lena, kofi)
        db.session.commit()
    login(client, db.session.get_one(Event, event.id).organiser)
    ask = client.get(f"/organiser/events/{event.id}/end").text
    # Both digests wait for their people to confirm: the page says so, not "none waiting".
    assert "No follow-up emails are waiting" not in ask
    assert re.search(r"go to <strong>2 people</strong> [^<]*once they confirm", ask)


def test_ending_the_morning_after_says_nine_tomorrow(app, client, make_event, make_attendee):
    # An evening event in a zone where it is evening now, so 09:00 "tomorrow" is true.
    zone = next(
        name
        for name in (
            "Pacific/Kiritimati",
            "Asia/Tokyo",
            "Europe/London",
            "America/Chicago",
            "Pacific/Honolulu",
            "Asia/Kolkata",
            "Australia/Perth",
            "Pacific/Auckland",
        )
        if 12 <= utcnow().astimezone(ZoneInfo(name)).hour < 20
    )
    event = make_event(timezone=zone)
    login(client, db.session.get_one(Event, event.id).organiser)
    ask = client.get(f"/organiser/events/{event.id}/end").text
    assert "go out at 09:00 tomorrow" in ask


def test_thank_you_note_goes_inside_every_digest_and_its_preview(organiser_client, met, mailbox):
    with writing():
        db.session.get_one(Event, met.event.id).thank_you_note = "Thanks for coming! <3 & see you"
        db.session.commit()
    preview = organiser_client.get(
        f"/organiser/events/{met.event.id}/emails/preview/{met.ana.attendance.id}"
    ).text
    assert "A note from the organiser" in preview
    assert "Thanks for coming! &lt;3 &amp; see you" in preview
    end_now(met.event)
    mailbox.deliver()
    for address in ("ana@example.org", "ben@example.org"):
        digest = mailbox.one(address, "digest")
        assert "Thanks for coming! <3 & see you" in digest.text
        assert "Thanks for coming! &lt;3 &amp; see you" in digest.html
    assert mailbox.sent(kind="nudge") == []  # no separate email


def test_rotating_the_poster_asks_and_says_printed_posters_stop(organiser_client, met):
    token = db.session.get_one(Event, met.event.id).checkin_token
    poster = organiser_client.get(f"/organiser/events/{met.event.id}/poster").text
    assert f'href="/organiser/events/{met.event.id}/poster/rotate"' in poster
    ask = organiser_client.get(f"/organiser/events/{met.event.id}/poster/rotate")
    assert "Printed posters stop working." in ask.text
    db.session.expire_all()
    assert db.session.get_one(Event, met.event.id).checkin_token == token
    assert (
        organiser_client.post(f"/organiser/events/{met.event.id}/poster/rotate").status_code == 303
    )
    db.session.expire_all()
    assert db.session.get_one(Event, met.event.id).checkin_token != token


# ---------------------------------------------------------------- the emails page


def test_emails_page_pages_its_messages_and_shows_due_only_for_unsent(
    organiser_client, met, mailbox
):
    mailbox.deliver()  # the two confirmations go
    with writing():
        for n in range(EMAILS_PAGE_SIZE + 5):
            db.session.add(
                OutboxMessage(
                    dedupe_key=f"extra:{n}",
                    kind="nudge",
                    person_id=met.ana.attendance.person_id,
                    event_id=met.event.id,
                    to_email="ana@example.org",
                    send_after=utcnow(),
                    next_attempt_at=utcnow() + timedelta(days=3),
                )
            )
        db.session.commit()
    total = EMAILS_PAGE_SIZE + 5 + 2 + 4  # extras, two sent confirmations, digests and nudges
    first = organiser_client.get(f"/organiser/events/{met.event.id}/emails").text
    assert first.count('<tr id="message-') == EMAILS_PAGE_SIZE
    assert f"Showing 1–{EMAILS_PAGE_SIZE} of {total}" in first
    last = organiser_client.get(f"/organiser/events/{met.event.id}/emails?page=2").text
    assert last.count('<tr id="message-') == total - EMAILS_PAGE_SIZE
    for confirm in db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "confirm")
    ):
        row = re.search(rf'<tr id="message-{confirm.id}">(.*?)</tr>', last, re.S).group(1)
        assert "sent " in row and "due " not in row and "Cancel" not in row
    junk = organiser_client.get(f"/organiser/events/{met.event.id}/emails?page=zz")
    assert junk.status_code == 200


def test_digest_preview_is_offered_only_for_people_who_get_one(
    organiser_client, met, make_attendee
):
    loner = make_attendee(met.event, "Lou", want_followups=True)
    page = organiser_client.get(f"/organiser/events/{met.event.id}/emails").text
    assert f"/emails/preview/{met.ana.attendance.id}" in page
    assert f"/emails/preview/{loner.attendance.id}" not in page
    gone = organiser_client.get(
        f"/organiser/events/{met.event.id}/emails/preview/{loner.attendance.id}"
    )
    assert gone.status_code == 404


# ---------------------------------------------------------------- sending paused


def test_a_refused_key_pauses_sending_and_the_organiser_resumes_it(
    sendgrid_app, fake_sendgrid, organiser_client, met
):
    end_now(met.event)
    fake_sendgrid.script(401)
    before = utcnow()
    run_worker_once(sendgrid_app)
    db.session.rollback()
    hold = sending_hold(utcnow())
    assert hold is not None and hold.refused and hold.since >= before.replace(microsecond=0)

    page = organiser_client.get(f"/organiser/events/{met.event.id}/emails").text
    assert "Sending is paused" in page
    assert (
        "The email service refused our key or sender at " + hold.since.strftime("%H:%M UTC") in page
    )
    assert f'action="/organiser/events/{met.event.id}/emails/resume"' in page
    assert "Resume sending" in page

    resumed = organiser_client.post(f"/organiser/events/{met.event.id}/emails/resume")
    assert resumed.status_code == 303
    db.session.rollback()
    assert sending_hold(utcnow()) is None
    assert db.session.get_one(SenderState, SENDER_STATE_ID).paused_at is None
    assert (
        "Sending is paused"
        not in organiser_client.get(f"/organiser/events/{met.event.id}/emails").text
    )
    # The refused digests go out at once on the next run, through the real client.
    run_worker_once(sendgrid_app)
    db.session.rollback()
    digests = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "digest"))
    assert [message.status for message in digests] == ["sent", "sent"]
    assert [r.status for r in fake_sendgrid.all_requests].count(401) == 1


def test_only_the_events_owner_resumes_sending(app, met, make_organiser):
    with writing():
        state = db.session.get(SenderState, SENDER_STATE_ID) or SenderState(id=SENDER_STATE_ID)
        state.paused_until = utcnow() + timedelta(minutes=5)
        state.paused_at = utcnow()
        db.session.add(state)
        db.session.commit()
    stranger = app.test_client()
    login(stranger, make_organiser())
    assert stranger.post(f"/organiser/events/{met.event.id}/emails/resume").status_code == 404
    anonymous = app.test_client().post(f"/organiser/events/{met.event.id}/emails/resume")
    assert anonymous.status_code in (302, 303, 401)
    db.session.rollback()
    assert sending_hold(utcnow()) is not None


# ---------------------------------------------------------------- retention


def table_counts() -> dict[str, int]:
    tables = {
        "attendance": Attendance,
        "connection": Connection,
        "outbox": OutboxMessage,
        "email_link": EmailLink,
        "person": Person,
        "event": Event,
    }
    counts = {
        name: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for name, model in tables.items()
    }
    counts["interest_links"] = db.session.scalar(
        sa.select(sa.func.count()).select_from(attendance_interest)
    )
    return counts


@pytest.fixture
def old_night(app, make_event, make_attendee):
    """An event that ended 91 days ago: Ana and Ben confirmed, Cleo and Dan never did.

    Cleo was also at a newer event; Dan was only here. Ana-Ben and Ana-Cleo are
    connected; Ben only asked Cleo.
    """
    event = make_event(name="Long ago")
    newer = make_event(name="Recently")
    ana = make_attendee(event, "Ana", "ana@example.org", interests=["chess"], want_followups=True)
    ben = make_attendee(event, "Ben", "ben@example.org", interests=["chess"], want_followups=True)
    cleo = make_attendee(event, "Cleo", "cleo@example.org", interests=["go"], want_followups=True)
    dan = make_attendee(event, "Dan", "dan@example.org", interests=["go"])
    make_attendee(newer, "Cleo", "cleo@example.org", person_id=cleo.attendance.person_id)
    confirm_directly(ana, ben)
    connect(ana, ben)
    connect(ana, cleo)
    with writing():
        request_connection(ben.attendance, cleo.attendance, "ask about go")
        db.session.add(
            EmailLink(
                person_id=dan.attendance.person_id,
                event_id=event.id,
                purpose="signin",
                token_hash="x" * 64,
                expires_at=utcnow(),
            )
        )
        ended = utcnow() - timedelta(days=RETENTION_DAYS + 1)
        stored = db.session.get_one(Event, event.id)
        stored.starts_at, stored.ends_at = ended - timedelta(hours=3), ended
        db.session.commit()
    return event, newer, {"ana": ana, "ben": ben, "cleo": cleo, "dan": dan}


def test_retention_purge_removes_exactly_what_it_should(old_night):
    event, newer, people = old_night
    before = table_counts()
    newer_before = db.session.scalar(
        sa.select(sa.func.count()).select_from(Attendance).where(Attendance.event_id == newer.id)
    )
    event_mail = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.event_id == event.id)
    )
    with writing():
        counts = purge_due(utcnow())
        db.session.commit()
    after = table_counts()
    assert (counts.events, counts.attendances, counts.people) == (1, 2, 1)
    assert (counts.connections, counts.kept_connections) == (2, 1)
    assert (counts.emails, counts.email_links, counts.interests) == (event_mail, 1, 2)
    assert after == {
        "attendance": before["attendance"] - 2,
        "connection": before["connection"] - 2,
        "outbox": before["outbox"] - event_mail,
        "email_link": before["email_link"] - 1,
        "person": before["person"] - 1,  # Dan; Cleo was at another event too
        "event": before["event"],
        "interest_links": before["interest_links"] - 2,
    }
    # What Ana and Ben own stays: their attendance, interests, and their connection with notes.
    kept = db.session.scalars(sa.select(Attendance).where(Attendance.event_id == event.id)).all()
    assert sorted(a.person.name for a in kept) == ["Ana", "Ben"]
    assert all([i.name for i in a.interests] == ["chess"] for a in kept)
    (pair,) = db.session.scalars(sa.select(Connection).where(Connection.event_id == event.id))
    assert pair.accepted and {pair.low.person.name, pair.high.person.name} == {"Ana", "Ben"}
    assert db.session.scalar(sa.select(Person).where(Person.email == "dan@example.org")) is None
    assert db.session.scalar(sa.select(Person).where(Person.email == "cleo@example.org"))
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .where(Attendance.event_id == newer.id)
        )
        == newer_before
    )
    assert db.session.get_one(Event, event.id).purged_at is not None
    with writing():
        assert purge_due(utcnow()).events == 0  # once only
        db.session.commit()


def test_retention_cli_dry_run_counts_and_deletes_nothing(runner, old_night):
    event, _newer, _people = old_night
    before = table_counts()
    dry = runner.invoke(args=["retention", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would delete the attendee data of 1 event(s): 2 attendance(s)" in dry.output
    db.session.rollback()
    assert table_counts() == before
    real = runner.invoke(args=["retention", "purge"])
    assert real.exit_code == 0, real.output
    assert (
        "Deleted the attendee data of 1 event(s): 2 attendance(s), 2 connection(s)" in real.output
    )
    assert "Kept 2 attendance(s) and 1 connection(s)" in real.output
    db.session.rollback()
    assert table_counts()["attendance"] == before["attendance"] - 2


def test_the_worker_purges_and_the_organiser_sees_the_date(app, client, old_night, mailbox):
    event, newer, _people = old_night
    login(client, db.session.get_one(Event, newer.id).organiser)
    page = client.get(f"/organiser/events/{newer.id}").text
    purge_on = db.session.get_one(Event, newer.id).ends_at + timedelta(days=RETENTION_DAYS)
    local = purge_on.astimezone(ZoneInfo(newer.timezone))
    assert f"attendee data will be deleted on {local.strftime('%d %b %Y')}" in page
    mailbox.deliver()  # the worker's housekeeping purges what is due
    db.session.expire_all()
    assert db.session.get_one(Event, event.id).purged_at is not None
    owner = app.test_client()
    login(owner, db.session.get_one(Event, event.id).organiser)
    page = owner.get(f"/organiser/events/{event.id}").text
    assert "attendee data deleted on" in page
    assert "only people who confirmed their email kept theirs" in page


def test_interests_typed_differently_count_as_one(app, make_event, make_attendee):
    event = make_event()
    ana = make_attendee(event, "Ana", interests=["Marathons"])
    ben = make_attendee(event, "Ben", interests=["marathon"])
    make_attendee(event, "Cleo", interests=["marathons"])
    connect(ana, ben)
    health = connection_health(room_of(event))
    assert len(health.top_shared) == 1 and health.top_shared[0][1] == 1
    (cleo,) = health.introductions
    assert cleo.could_meet == ("Ana", "Ben")


def test_event_page_says_when_where_and_whether_check_in_is_open(
    client, make_organiser, make_event
):
    organiser = make_organiser()
    event = make_event(
        organiser,
        timezone="America/Los_Angeles",
        venue="Dolores Park",
        starts_at=datetime(2030, 7, 4, 18, 0),
        ends_at=datetime(2030, 7, 4, 22, 0),
        checkin_opens_minutes=60,
    )
    login(client, organiser)
    page = client.get(f"/organiser/events/{event.id}").text
    assert "Thu 04 Jul 2030, 18:00–22:00" in page and "(America/Los_Angeles)" in page
    assert "Dolores Park" in page and ">Upcoming</span>" in page
    assert "Check-in opens Thu 04 Jul, 17:00" in page
    assert "attendee data will be deleted on 02 Oct 2030" in page


def test_pictures_answer_304_until_someone_arrives(client, night, make_attendee):
    event, _people = night
    login(client, db.session.get_one(Event, event.id).organiser)
    path = f"/organiser/events/{event.id}/pictures/live"
    first = client.get(path)
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag.startswith('W/"p')
    again = client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    make_attendee(db.session.get_one(Event, event.id), "Gus", interests=["chess"])
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert len(svgs(changed.text)["network"].findall(f".//{SVG}circle")) == 7
