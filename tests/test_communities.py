"""Communities: people met before, first-timers and regulars, the organiser's community
pages, and the digest's memory of where people first met and of the next event."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import icalendar
import pytest
import sqlalchemy as sa

from domain.badges import edit_badge_profile, live_badge
from domain.communities import (
    attach_event,
    create_community,
    detach_event,
    next_event,
    overview,
    standing,
)
from domain.connections import block, remove_connection, request_connection, set_note
from domain.db import db, writing
from domain.events import local_time
from domain.followups import update_followup_settings
from domain.met_before import first_meetings, met_before_here
from domain.models import Attendance, Connection, Event
from domain.people import delete_person
from tests.conftest import live_versions_from, login, shown
from tests.mail_support import confirm_directly, end_now, link_in, run_worker_once
from tests.test_http_connect import Phone


def move_back(event: Event, days: int) -> None:
    """Move an event (checked in at now) into the past, as if it happened `days` ago."""
    with writing():
        event = db.session.get_one(Event, event.id)
        event.starts_at -= timedelta(days=days)
        event.ends_at -= timedelta(days=days)
        db.session.commit()


def connect(a, b, note_a: str = "", note_b: str = "") -> None:
    with writing():
        request_connection(a.attendance, b.attendance, note_a)
        request_connection(b.attendance, a.attendance, note_b)
        db.session.commit()


@pytest.fixture
def club(make_organiser, make_event, make_attendee):
    """The Sunday Brunch Club: at its first brunch (60 days ago) Ana and Ben connected, Ana
    with a note; tonight's brunch is its second, where Ana, Ben and Cleo (new) check in."""
    organiser = make_organiser()
    first = make_event(organiser, name="Sunday Brunch", venue="The Back Room")
    tonight = make_event(organiser, name="Sunday Brunch", venue="The Back Room")
    with writing():
        community = create_community(organiser, "Sunday Brunch Club", "Brunch, monthly.")
        attach_event(community, first)
        attach_event(community, tonight)
        db.session.commit()
    ana1 = make_attendee(
        first, "Ana", "ana@example.org", interests=["Marathons", "sourdough"], want_followups=True
    )
    ben1 = make_attendee(
        first, "Ben", "ben@example.org", interests=["marathon", "chess"], want_followups=True
    )
    connect(ana1, ben1, "we talked about the Hanoi night market")
    move_back(first, 60)
    ana = make_attendee(
        tonight,
        "Ana",
        "ana@example.org",
        interests=["Marathons", "sourdough"],
        person_id=ana1.attendance.person_id,
    )
    ben = make_attendee(
        tonight,
        "Ben",
        "ben@example.org",
        interests=["marathon", "chess"],
        person_id=ben1.attendance.person_id,
    )
    cleo = make_attendee(
        tonight, "Cleo", "cleo@example.org", interests=["Sourdough baking", "sourdough"]
    )
    db.session.expire_all()
    return SimpleNamespace(
        organiser=organiser,
        community=community,
        first=db.session.get_one(Event, first.id),
        tonight=db.session.get_one(Event, tonight.id),
        ana1=ana1,
        ben1=ben1,
        ana=db.session.get_one(Attendance, ana.attendance.id),
        ben=db.session.get_one(Attendance, ben.attendance.id),
        cleo=db.session.get_one(Attendance, cleo.attendance.id),
        checked_in={"ana": ana, "ben": ben, "cleo": cleo},
    )


def tick_followups(attendance: Attendance, interests: list[str]) -> None:
    """Tick "email me a follow-up" on a badge, as its edit page does, changing nothing else."""
    with writing():
        mine = db.session.get_one(Attendance, attendance.id)
        person = mine.person
        edit_badge_profile(
            mine,
            name=person.name,
            about=person.about,
            talk_about=person.talk_about,
            links=list(person.links or []),
            interests=interests,
            visibility={},
            want_followups=True,
        )
        db.session.commit()


def month_of(event: Event) -> str:
    return local_time(event, event.starts_at).strftime("%B")


# ---------------------------------------------------------------- met before


def test_people_met_at_an_earlier_event_are_found_with_where_and_my_note(club):
    [ben] = met_before_here(club.ana)
    assert ben.name == "Ben"
    assert ben.attendance_id == club.ben.id
    assert ben.note == "we talked about the Hanoi night market"
    assert ben.since.startswith(f"Sunday Brunch in {month_of(club.first)}")
    assert ben.shared == ["marathon"]  # as Ben typed it, matched on the key
    assert ben.email == "ben@example.org"  # shared with connections by default
    [ana] = met_before_here(club.ben)
    assert (ana.name, ana.note) == ("Ana", "")  # Ben wrote no note
    assert met_before_here(club.cleo) == []
    assert met_before_here(club.ana, only=club.cleo.id) == []
    assert [p.name for p in met_before_here(club.ana, only=club.ben.id)] == ["Ben"]


def test_met_before_needs_an_accepted_connection_at_an_earlier_event(
    club, make_event, make_attendee
):
    # A request never accepted is not a meeting.
    later = make_event(club.organiser, name="Run club")
    cleo_later = make_attendee(later, "Cleo", "cleo@example.org", person_id=club.cleo.person_id)
    ana_later = make_attendee(later, "Ana", "ana@example.org", person_id=club.ana.person_id)
    with writing():
        request_connection(cleo_later.attendance, ana_later.attendance)
        db.session.commit()
    assert met_before_here(club.ana, only=club.cleo.id) == []
    # A connection at an event that starts later than this one is not "before".
    connect(cleo_later, ana_later)
    assert met_before_here(club.ana, only=club.cleo.id) == []
    move_back(later, 10)  # now it is
    db.session.expire_all()
    assert [p.name for p in met_before_here(club.ana, only=club.cleo.id)] == ["Cleo"]


def test_met_before_is_derived_so_a_removed_connection_takes_it_away(club):
    with writing():
        connection = request_connection(club.ana1.attendance, club.ben1.attendance)
        remove_connection(club.ana1.attendance, connection)
        db.session.commit()
    assert met_before_here(club.ana) == []


@pytest.mark.parametrize("blocker", ["ana", "ben"])
def test_a_block_either_way_ends_met_before(club, blocker):
    with writing():
        if blocker == "ana":
            block(club.ana, club.ben)
        else:
            block(club.ben, club.ana)
        db.session.commit()
    assert met_before_here(club.ana) == []
    assert met_before_here(club.ben) == []
    assert first_meetings(club.ana, [club.ben]) == {}


def test_a_deleted_person_is_never_met_before(club):
    with writing():
        delete_person(club.ben.person)
        db.session.commit()
    db.session.expire_all()
    assert met_before_here(db.session.get_one(Attendance, club.ana.id)) == []


def test_met_before_costs_the_same_statements_at_1_and_20_past_events(
    make_organiser, make_event, make_attendee
):
    organiser = make_organiser()

    def statements_with(past_events: int) -> int:
        tag = f"x{past_events}"
        people: dict[str, int | None] = {"Ana": None, "Ben": None}

        def arrive(event: Event, name: str):
            result = make_attendee(
                event,
                name,
                f"{name.lower()}{tag}@example.org",
                interests=["chess"],
                person_id=people[name],
            )
            people[name] = result.attendance.person_id
            return result

        for number in range(past_events):
            past = make_event(organiser, name=f"Brunch {number}")
            connect(arrive(past, "Ana"), arrive(past, "Ben"), f"note {number}")
            move_back(past, 30 + number)
        tonight = make_event(organiser, name="Tonight")
        ana = arrive(tonight, "Ana")
        arrive(tonight, "Ben")
        mine = ana.attendance
        counted: list[str] = []

        def record(_conn, _cursor, statement, *_args):
            counted.append(statement)

        db.session.expire_all()
        mine = db.session.get_one(Attendance, mine.id)
        mine.event  # noqa: B018 - loaded before counting, as the badge page has it
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            found = met_before_here(mine)
            first = first_meetings(mine, [db.session.get_one(Attendance, found[0].attendance_id)])
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        assert [p.note for p in found] == ["note 0"]  # the latest note I wrote
        assert len(first) == 1
        return len(counted)

    assert statements_with(1) == statements_with(20)


# ---------------------------------------------------------------- first-timers and regulars


def test_first_timers_and_regulars_are_counted(club):
    counts = standing(club.tonight)
    assert counts.visits == {club.ana.id: 2, club.ben.id: 2, club.cleo.id: 1}
    assert (counts.first_timers, counts.returning, counts.return_rate) == (1, 2, 67)
    first = standing(club.first)
    assert (first.first_timers, first.returning, first.return_rate) == (2, 0, 0)


def test_an_event_outside_a_community_has_no_standing(make_event, make_attendee):
    event = make_event()
    make_attendee(event)
    assert standing(event) is None


def test_the_badge_shows_met_before_and_new_here_tonight_each_once(club):
    live = live_badge(club.ana)
    assert [(p.name, p.note) for p in live.met_before] == [
        ("Ben", "we talked about the Hanoi night market")
    ]
    # Cleo is new, and shares sourdough: a regular is the one to welcome her.
    assert [(p.name, p.shared) for p in live.new_here] == [("Cleo", ["sourdough"])]
    assert live.suggestions == []  # Ben and Cleo are listed once, above
    # Ben is a regular too; Cleo, new, sees no one new who shares her interests.
    assert [p.name for p in live_badge(club.ben).new_here] == []
    assert live_badge(club.cleo).new_here == []
    assert [p.name for p in live_badge(club.cleo).suggestions] == ["Ana"]


def test_first_timers_see_each_other_as_suggestions_not_as_new_here(club, make_attendee):
    dan = make_attendee(club.tonight, "Dan", "dan@example.org", interests=["sourdough"])
    dan = db.session.get_one(Attendance, dan.attendance.id)
    # Dan is new: newcomer Cleo is an ordinary suggestion to him, not "new here".
    assert live_badge(dan).new_here == []
    assert "Cleo" in [p.name for p in live_badge(dan).suggestions]
    assert "Dan" not in [p.name for p in live_badge(club.cleo).new_here]
    # Ana came before: both newcomers are new here to her.
    assert sorted(p.name for p in live_badge(club.ana).new_here) == ["Cleo", "Dan"]


def test_no_one_is_new_here_at_a_communitys_first_event(make_organiser, make_event, make_attendee):
    organiser = make_organiser()
    first = make_event(organiser, name="Sunday Brunch")
    with writing():
        community = create_community(organiser, "Sunday Brunch Club")
        attach_event(community, db.session.get_one(Event, first.id))
        db.session.commit()
    ana = make_attendee(first, "Ana", "ana@example.org", interests=["sourdough"])
    make_attendee(first, "Ben", "ben@example.org", interests=["sourdough"])
    live = live_badge(db.session.get_one(Attendance, ana.attendance.id))
    assert live.new_here == []
    assert [p.name for p in live.suggestions] == ["Ben"]


def test_the_community_overview_names_members_within_their_choices(club, make_attendee):
    make_attendee(club.tonight, "Dee Private", "dee@example.org", share_profile=False)
    seen = overview(club.community)
    assert [(e.attendance, e.first_timers) for e in seen.events] == [(4, 2), (2, 2)]
    assert [(m.name, m.attended) for m in seen.members] == [("Ana", 2), ("Ben", 2), ("Cleo", 1)]
    assert seen.unnamed == 1


def test_the_next_event_is_the_communitys_first_to_start_after_this_one(club, make_event):
    assert next_event(club.first) is None  # tonight's brunch has started already
    coming = make_event(club.organiser, name="Sunday Brunch", venue="The Back Room")
    with writing():
        coming = db.session.get_one(Event, coming.id)
        coming.starts_at += timedelta(days=14)
        coming.ends_at += timedelta(days=14)
        attach_event(club.community, coming)
        db.session.commit()
    assert next_event(club.tonight).id == coming.id
    assert next_event(club.first).id == coming.id


# ---------------------------------------------------------------- what phones see


def test_scanning_someone_met_before_says_since_when_with_my_note(app, club):
    ana, ben = Phone(app, club.checked_in["ana"]), Phone(app, club.checked_in["ben"])
    card = ana.get(f"/b/{ben.token}")
    assert card.status_code == 200
    assert f"You're already connected, since Sunday Brunch in {month_of(club.first)}" in card.text
    assert "we talked about the Hanoi night market" in card.text
    assert "ben@example.org" in card.text  # what Ben shares with his connections
    # Cleo, met nowhere before, is a stranger to Ana: no such line, only Connect.
    cleo = Phone(app, club.checked_in["cleo"])
    card = ana.get(f"/b/{cleo.token}")
    assert "already connected" not in card.text
    assert "Connect with Cleo" in shown(card)


def earlier_connections(club) -> int:
    people = (club.ana.person_id, club.ben.person_id)
    return db.session.scalar(
        sa.text(
            "SELECT count(*) FROM connection c"
            " JOIN attendance l ON l.id = c.low_attendance_id"
            " JOIN attendance h ON h.id = c.high_attendance_id"
            " WHERE l.person_id IN (:a, :b) AND h.person_id IN (:a, :b)"
        ),
        {"a": people[0], "b": people[1]},
    )


def test_someone_met_before_is_not_offered_a_second_connection(app, club):
    ana, ben = Phone(app, club.checked_in["ana"]), Phone(app, club.checked_in["ben"])
    card = ana.get(f"/b/{ben.token}")
    assert "Connect at this event too" not in card.text
    assert "Connect with Ben" not in card.text
    assert "You share" in card.text and "marathon" in card.text
    # A crafted request is turned away too: the earlier connection, note and all, stands.
    refused = ana.post(f"/b/{ben.token}/connect", data={"note": "again"})
    assert refused.status_code == 303
    assert earlier_connections(club) == 1
    badge = ana.get(f"/b/{ana.token}/live").text
    assert "hasn't shared contact details yet" not in badge
    assert "we talked about the Hanoi night market" in badge
    assert "ben@example.org" in badge
    assert ana.post(f"/b/{ana.token}/suggestions/{club.ben.id}/connect").status_code == 404
    assert earlier_connections(club) == 1


def test_removing_someone_met_before_from_the_badge_needs_no_block(app, club):
    ana = Phone(app, club.checked_in["ana"])
    badge = ana.get(f"/b/{ana.token}").text
    path = f"/b/{ana.token}/met-before/{club.ben.id}/remove"
    assert f'action="{path}"' in badge and "Remove Ben" in shown(badge)
    # Only someone I met before, on my own phone.
    assert ana.post(f"/b/{ana.token}/met-before/{club.cleo.id}/remove").status_code == 404
    cleo = Phone(app, club.checked_in["cleo"])
    assert cleo.post(path.replace(ana.token, cleo.token)).status_code == 404
    assert app.test_client().post(path).status_code == 404
    assert earlier_connections(club) == 1
    assert ana.post(path).status_code == 303
    assert earlier_connections(club) == 0
    assert met_before_here(club.ana) == [] and met_before_here(club.ben) == []
    assert "People here you've met before" not in ana.get(f"/b/{ana.token}").text
    # Not a block: Ben's card is open to Ana, with Connect.
    card = ana.get(f"/b/{club.checked_in['ben'].badge_token}")
    assert card.status_code == 200 and "Connect with Ben" in shown(card)


def signed_in_to_me(phone: Phone) -> Phone:
    """Sign a phone in to /me as its badge's person, as an emailed link would."""
    with phone.client.session_transaction() as session:
        session["me"] = session["person"]
    return phone


def test_removing_someone_from_my_connections_on_me_needs_no_block(app, club):
    ana = signed_in_to_me(Phone(app, club.checked_in["ana"]))
    page = ana.get("/me/").text
    [connection_id] = re.findall(r'action="/me/connections/(\d+)/remove"', page)
    # Nobody else's /me removes it, nor a phone signed in to no one.
    cleo = signed_in_to_me(Phone(app, club.checked_in["cleo"]))
    assert cleo.post(f"/me/connections/{connection_id}/remove").status_code == 404
    assert app.test_client().post(f"/me/connections/{connection_id}/remove").status_code == 404
    assert ana.post("/me/connections/999999/remove").status_code == 404
    assert earlier_connections(club) == 1
    removed = ana.post(f"/me/connections/{connection_id}/remove")
    assert removed.status_code == 303 and removed.location == "/me/"
    assert earlier_connections(club) == 0
    assert met_before_here(club.ana) == []
    assert "Removed Ben" in shown(ana.get("/me/"))
    assert ana.get(f"/b/{club.checked_in['ben'].badge_token}").status_code == 200


def test_my_badge_lists_people_met_before_above_new_here_and_suggestions(app, club):
    ana = Phone(app, club.checked_in["ana"])
    page = ana.get(f"/b/{ana.token}").text
    assert "People here you've met before" in page
    assert "we talked about the Hanoi night market" in page
    assert "New here tonight" in page
    met = page.index("People here you've met before")
    assert met < page.index("Cleo") and met < page.index("People here you might like to meet")
    # The page's two live halves: Ana's own list with Ben, then the people to meet.
    mine = ana.get(f"/b/{ana.token}/live").text
    assert "we talked about the Hanoi night market" in mine and "New here tonight" not in mine
    to_meet = ana.get(f"/b/{ana.token}/live/people").text
    assert "New here tonight" in to_meet and "Cleo" in to_meet and "Ben" not in to_meet
    # Cleo is new here: no one she met before, and the regulars are not "new".
    cleo_page = Phone(app, club.checked_in["cleo"]).get(f"/b/{club.checked_in['cleo'].badge_token}")
    assert "met before" not in cleo_page.text
    assert "New here tonight" not in cleo_page.text


# ---------------------------------------------------------------- the organiser's pages


def test_organiser_creates_a_community_and_attaches_their_events(
    client, make_organiser, make_event
):
    organiser = make_organiser()
    brunch = make_event(organiser, name="December brunch")
    login(client, organiser)
    page = client.get("/organiser/communities/")
    assert page.status_code == 200
    bad = client.post("/organiser/communities/", data={"name": "  "})
    assert bad.status_code == 200 and "Give the community a name." in bad.text
    made = client.post(
        "/organiser/communities/", data={"name": "Sunday Brunch Club", "description": "Monthly"}
    )
    assert made.status_code == 303
    path = made.location
    page = client.get(path)
    assert "Sunday Brunch Club" in page.text and "December brunch" in page.text
    community_id = int(path.rstrip("/").rsplit("/", 1)[1])
    assert client.post(f"{path}/events", data={"event": "nonsense"}).status_code == 400
    assert client.post(f"{path}/events", data={"event": str(brunch.id)}).status_code == 303
    db.session.expire_all()
    assert db.session.get_one(Event, brunch.id).community_id == community_id
    # A new event can start inside the community.
    form = client.get(f"/organiser/events/new?community={community_id}")
    assert f'<option selected value="{community_id}">Sunday Brunch Club</option>' in form.text
    created = client.post(
        "/organiser/events/new",
        data={
            "name": "January brunch",
            "starts_at": "2027-01-10T11:00",
            "ends_at": "2027-01-10T13:00",
            "timezone": "Europe/London",
            "followup_timing": "next_morning",
            "nudge_days": "7",
            "checkin_opens_minutes": "120",
            "checkin_closes_minutes": "360",
            "community": str(community_id),
        },
    )
    assert created.status_code == 303
    january = db.session.scalars(sa.select(Event).where(Event.name == "January brunch")).one()
    assert january.community_id == community_id
    assert client.post(f"{path}/events/{brunch.id}/detach").status_code == 303
    db.session.expire_all()
    assert db.session.get_one(Event, brunch.id).community_id is None


def test_community_page_shows_attendance_members_and_counts(client, club, make_attendee):
    make_attendee(club.tonight, "Dee Private", "dee@example.org", share_profile=False)
    login(client, club.organiser)
    page = client.get(f"/organiser/communities/{club.community.id}").text
    assert "Members (4)" in page
    assert "<td>Ana</td><td>2</td>" in shown(page) and "<td>Cleo</td><td>1</td>" in shown(page)
    assert "Dee Private" not in page
    assert "1 more person keeps their profile to themselves" in page


def test_the_events_offered_to_a_community_say_their_date_in_their_zone(
    client, make_organiser, make_event
):
    organiser = make_organiser()
    with writing():
        community = create_community(organiser, "Sunday Brunch Club")
        db.session.commit()
    # Two brunches of one name, each at 12:00 UTC: 01:00 the next day in Auckland.
    for day in (7, 14):
        brunch = make_event(organiser, name="Sunday Brunch", timezone="Pacific/Auckland")
        with writing():
            brunch = db.session.get_one(Event, brunch.id)
            starts = datetime(2026, 12, day, 12, 0, tzinfo=UTC)
            brunch.starts_at, brunch.ends_at = starts, starts + timedelta(hours=2)
            db.session.commit()
    login(client, organiser)
    page = client.get(f"/organiser/communities/{community.id}").text
    options = re.findall(r"<option[^>]*>([^<]*)</option>", page)
    assert options == ["Sunday Brunch, Tue 15 Dec 2026", "Sunday Brunch, Tue 8 Dec 2026"]


def test_the_community_tables_are_styled_as_the_attendee_table(client, club):
    login(client, club.organiser)
    page = client.get(f"/organiser/communities/{club.community.id}").text
    tables = re.findall(r"<table[^>]*>", page)
    assert len(tables) == 2 and all('class="attendees"' in table for table in tables)


def test_the_event_page_and_the_events_list_name_the_community(client, club, make_event):
    alone = make_event(club.organiser, name="A night on its own")
    login(client, club.organiser)
    link = f'<a href="/organiser/communities/{club.community.id}">Sunday Brunch Club</a>'
    assert link in client.get(f"/organiser/events/{club.tonight.id}").text
    assert "Sunday Brunch Club" not in client.get(f"/organiser/events/{alone.id}").text
    listing = client.get("/organiser/").text
    assert listing.count(link) == 2  # both brunches, not the night on its own


def test_attendee_page_marks_first_timers_and_regulars(client, club):
    login(client, club.organiser)
    page = client.get(f"/organiser/events/{club.tonight.id}/live").text
    assert "<strong>1</strong> first-timer · <strong>2</strong> returning (67% return rate)" in page
    assert page.count('<span class="tag">first time</span>') == 1
    assert page.count('<span class="tag">2 events</span>') == 2


# ---------------------------------------------------------------- the digest


def test_digest_says_where_we_first_met_and_ends_with_the_next_event_and_its_calendar(
    app, sendgrid_app, fake_sendgrid, club, make_organiser, make_event, make_attendee
):
    coming = make_event(club.organiser, name="Sunday Brunch", venue="The Back Room")
    with writing():
        coming = db.session.get_one(Event, coming.id)
        coming.starts_at += timedelta(days=14)
        coming.ends_at += timedelta(days=14)
        attach_event(club.community, coming)
        update_followup_settings(club.tonight, timing="at_end", nudge_days=0)
        db.session.commit()
    ana, ben = club.checked_in["ana"], club.checked_in["ben"]
    # They tick "email me a follow-up" on their badges, and make no new connection: having
    # met before, they are connected already.
    tick_followups(club.ana, ["Marathons", "sourdough"])
    tick_followups(club.ben, ["marathon", "chess"])
    confirm_directly(ana, ben)
    end_now(club.tonight)
    run_worker_once(sendgrid_app)

    def text_to(address: str) -> str:
        [text] = [
            next(part["value"] for part in r.body["content"] if part["type"] == "text/plain")
            for r in fake_sendgrid.requests
            if r.body["personalizations"][0]["to"][0]["email"] == address
            and (r.body["personalizations"][0].get("subject") or r.body["subject"]).startswith(
                "The people you met at"
            )
        ]
        return text

    to_ana = text_to("ana@example.org")
    db.session.expire_all()
    coming = db.session.get_one(Event, coming.id)
    starts = local_time(coming, coming.starts_at)
    assert f"You first met at Sunday Brunch, {month_of(club.first)}" in to_ana
    assert f"Next: Sunday Brunch, {starts.day} {starts:%B}, {starts:%H:%M}, The Back Room" in to_ana
    assert "You first met at" in text_to("ben@example.org")

    assert "\n\nNext: Sunday Brunch" in to_ana  # a blank line sets it apart
    assert re.search(r"\.ics\n\nAll your connections", to_ana)  # and one from the footer

    path = link_in(SimpleNamespace(text=to_ana), "/f/", ".ics")
    assert f"/events/{coming.id}/" in path
    download = app.test_client().get(path)
    assert download.status_code == 200
    assert download.mimetype == "text/calendar"
    [entry] = icalendar.Calendar.from_ical(download.data).events
    assert entry.start == coming.starts_at and entry.end == coming.ends_at
    assert str(entry.start.tzinfo) == "Europe/London" == str(entry.end.tzinfo)
    assert entry.start.replace(tzinfo=None) == starts.replace(tzinfo=None)
    assert str(entry["location"]) == "The Back Room"
    assert str(entry["summary"]) == "Sunday Brunch"
    assert str(entry["url"]) == f"{app.config['PUBLIC_URL']}/e/{coming.checkin_token}"
    # Another token, another event under this signature, or another signature opens nothing.
    assert app.test_client().get(path.replace("/f/", "/f/x")).status_code == 404
    other = make_event(club.organiser, name="Private dinner")
    assert app.test_client().get(path.replace(f"/{coming.id}/", f"/{other.id}/")).status_code == 404
    token, _, _, signed = path.removeprefix("/f/").removesuffix(".ics").split("/")
    forged = path.replace(signed, signed[::-1])
    assert app.test_client().get(forged).status_code == 404

    # An earlier brunch is set later on: the old digest still gives the one it announced.
    sooner = make_event(club.organiser, name="Extra brunch")
    with writing():
        sooner = db.session.get_one(Event, sooner.id)
        sooner.starts_at += timedelta(days=7)
        sooner.ends_at += timedelta(days=7)
        attach_event(club.community, sooner)
        db.session.commit()
    assert next_event(club.tonight).id == sooner.id
    [entry] = icalendar.Calendar.from_ical(app.test_client().get(path).data).events
    assert str(entry["summary"]) == "Sunday Brunch" and entry.start == coming.starts_at

    # Its owner deletes the announced event: a clear page says so.
    owner = app.test_client()
    login(owner, club.organiser)
    deleted = owner.post(f"/organiser/events/{coming.id}/delete", data={"name": "Sunday Brunch"})
    assert deleted.status_code == 303
    assert db.session.scalar(sa.select(Event.id).where(Event.id == coming.id)) is None
    gone = app.test_client().get(path)
    assert gone.status_code == 410
    assert "This event is no longer on Rapport" in gone.text
    # A new event under the deleted one's id (SQLite reuses the highest id; here it is given
    # by hand, on either engine) is not what the email announced: it stays gone.
    offsite = make_event(make_organiser(), name="Private offsite", venue="Room 9")
    with writing():
        db.session.execute(sa.update(Event).where(Event.id == offsite.id).values(id=coming.id))
        db.session.commit()
    reused = app.test_client().get(path)
    assert reused.status_code == 410 and "Private offsite" not in reused.text
    # The community carries on: its page, and the next brunch after tonight's.
    db.session.expire_all()
    page = owner.get(f"/organiser/communities/{club.community.id}")
    assert page.status_code == 200 and "Extra brunch" in page.text
    assert next_event(db.session.get_one(Event, club.tonight.id)).id == sooner.id


def test_no_next_event_no_calendar(met, mailbox):
    end_now(met.event)
    mailbox.deliver()
    digest = mailbox.one("ana@example.org", "digest")
    assert "Next:" not in digest.text and ".ics" not in digest.text
    assert "You first met" not in digest.text
    # A blank line sets the last card apart from the footer, as it does the "Next:" block.
    assert "\n\nAll your connections, across events" in digest.text


def test_people_who_meet_again_get_a_digest_naming_each_other_without_a_new_connection(
    make_organiser, make_event, make_attendee, mailbox
):
    organiser = make_organiser()
    first = make_event(organiser, name="Run club")
    ana1 = make_attendee(first, "Ana", "ana@example.org", interests=["trail running"])
    ben1 = make_attendee(first, "Ben", "ben@example.org", interests=["trail runs"])
    connect(ana1, ben1, "ask about the Lakeland 50")
    move_back(first, 30)
    tonight = make_event(organiser, name="Run club")
    with writing():
        update_followup_settings(tonight, timing="at_end", nudge_days=7)
        db.session.commit()

    def back(earlier, name: str, interests: list[str]):
        """Check in tonight as the same person, asking for follow-ups."""
        return make_attendee(
            tonight,
            name,
            f"{name.lower()}@example.org",
            interests=interests,
            person_id=earlier.attendance.person_id,
            want_followups=True,
        )

    ana = back(ana1, "Ana", ["trail running"])
    cleo = make_attendee(tonight, "Cleo", "cleo@example.org", want_followups=True)
    # Ben arrives: both digests are queued as he does (Cleo, who met nobody, gets none).
    ben = back(ben1, "Ben", ["trail runs"])
    confirm_directly(ana, ben, cleo)
    end_now(tonight)
    mailbox.deliver()

    to_ana = mailbox.one("ana@example.org", "digest")
    # One blank line under the greeting, as above tonight's connections.
    assert (
        "Here's who you saw again at Run club. A short hello today keeps the conversation "
        "going.\n\nPeople you've met before, here again:\n* Ben\n"
    ) in to_ana.text
    assert f"  You first met at Run club, {month_of(first)}" in to_ana.text
    assert "  You both like: trail runs\n  Your note: ask about the Lakeland 50\n" in to_ana.text
    assert "  Email: ben@example.org\n\nAll your connections" in to_ana.text
    assert "Add to contacts" not in to_ana.text  # their connection is the earlier event's
    assert "Great%20to%20see%20you%20again%20at%20Run%20club" in to_ana.html
    assert "People you've met before, here again</h2>" in to_ana.html
    to_ben = mailbox.one("ben@example.org", "digest")
    assert "* Ana\n" in to_ben.text and "Your note" not in to_ben.text
    assert mailbox.sent("cleo@example.org", "digest") == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 1


def test_a_digest_lists_tonights_connections_and_then_people_met_again(
    club, make_attendee, mailbox
):
    tick_followups(club.ana, ["Marathons", "sourdough"])
    tick_followups(club.cleo, ["sourdough"])
    confirm_directly(club.checked_in["ana"], club.checked_in["cleo"])
    connect(club.checked_in["ana"], club.checked_in["cleo"])
    with writing():
        update_followup_settings(
            db.session.get_one(Event, club.tonight.id), timing="at_end", nudge_days=0
        )
        db.session.commit()
    end_now(club.tonight)
    mailbox.deliver()
    text = mailbox.one("ana@example.org", "digest").text
    assert "who you connected with at Sunday Brunch, and who you saw again." in text
    assert text.index("* Cleo") < text.index("People you've met before, here again:\n* Ben")
    assert "You first met" not in text[: text.index("People you've met before")]
    assert text.count("Add to contacts") == 1  # Cleo's, made tonight


def test_met_again_alone_sends_no_digest_once_the_meeting_is_taken_away(
    club, make_attendee, mailbox
):
    tick_followups(club.ana, ["Marathons", "sourdough"])
    confirm_directly(club.checked_in["ana"])
    with writing():
        block(
            db.session.get_one(Attendance, club.ana.id), db.session.get_one(Attendance, club.ben.id)
        )
        db.session.commit()
    end_now(club.tonight)
    mailbox.deliver()
    assert mailbox.sent("ana@example.org", "digest") == []


def test_the_badge_refresh_shows_someone_met_before_as_they_arrive(
    app, make_organiser, make_event, make_attendee
):
    organiser = make_organiser()
    first = make_event(organiser, name="Sunday Brunch")
    tonight = make_event(organiser, name="Sunday Brunch")
    with writing():
        community = create_community(organiser, "Sunday Brunch Club")
        attach_event(community, db.session.get_one(Event, first.id))
        attach_event(community, db.session.get_one(Event, tonight.id))
        db.session.commit()
    # Ana and Ben share no interest: only their meeting can bring Ben to Ana's page.
    ana1 = make_attendee(first, "Ana", "ana@example.org", interests=["sourdough"])
    ben1 = make_attendee(first, "Ben", "ben@example.org", interests=["chess"])
    connect(ana1, ben1, "the Hanoi night market")
    move_back(first, 30)
    ana = make_attendee(
        tonight,
        "Ana",
        "ana@example.org",
        interests=["sourdough"],
        person_id=ana1.attendance.person_id,
    )
    phone = Phone(app, ana)
    refresh = live_halves(phone)

    assert refresh("/live").status_code == 304
    assert refresh("/live/people").status_code == 304
    make_attendee(
        tonight, "Ben", "ben@example.org", interests=["chess"], person_id=ben1.attendance.person_id
    )
    arrived = refresh("/live")
    assert arrived.status_code == 200
    assert (
        "People here you've met before" in arrived.text and "the Hanoi night market" in arrived.text
    )
    assert refresh("/live").status_code == 304
    # Cleo, new and sharing sourdough, is counted by the interests' arrivals.
    make_attendee(tonight, "Cleo", "cleo@example.org", interests=["Sourdough"])
    assert refresh("/live").status_code == 304
    newcomer = refresh("/live/people")
    assert newcomer.status_code == 200 and "New here tonight" in newcomer.text
    # Out of the community, no one is new here: the page moves on with it.
    with writing():
        detach_event(community, db.session.get_one(Event, tonight.id))
        db.session.commit()
    detached = refresh("/live/people")
    assert detached.status_code == 200 and "New here tonight" not in detached.text


def live_halves(phone: Phone) -> Callable[[str], Any]:
    """Return a refresh of either live half of a phone's badge page ("/live" or
    "/live/people"), each sending back the version it last got, as the page's script does."""
    etags = live_versions_from(phone.get(f"/b/{phone.token}").text)

    def refresh(half: str) -> Any:
        url = f"/b/{phone.token}{half}"
        response = phone.get(url, headers={"If-None-Match": etags[url]})
        etags[url] = response.headers["ETag"]
        return response

    return refresh


def test_the_refresh_moves_on_when_an_earlier_connection_changes(app, club):
    phone = Phone(app, club.checked_in["ana"])
    refresh = functools.partial(live_halves(phone), "/live")

    assert refresh().status_code == 304
    with writing():
        earlier = request_connection(club.ana1.attendance, club.ben1.attendance)
        set_note(db.session.get_one(Attendance, club.ana1.attendance.id), earlier, "chess club")
        db.session.commit()
    noted = refresh()
    assert noted.status_code == 200 and "chess club" in noted.text
    with writing():
        earlier = request_connection(club.ana1.attendance, club.ben1.attendance)
        remove_connection(db.session.get_one(Attendance, club.ana1.attendance.id), earlier)
        db.session.commit()
    removed = refresh()
    assert removed.status_code == 200 and "met before" not in removed.text


def test_the_organisers_digest_preview_never_names_an_earlier_event(
    client, make_organiser, make_event, make_attendee
):
    """Organiser B's preview shows what each person shows everyone at B's event: not where
    they first met, least of all organiser A's private event."""
    organiser_a, organiser_b = make_organiser(), make_organiser()
    private = make_event(organiser_a, name="Quiet Supper at Number Nine")
    ana1 = make_attendee(private, "Ana", "ana@example.org")
    ben1 = make_attendee(private, "Ben", "ben@example.org")
    connect(ana1, ben1)
    move_back(private, 30)
    public = make_event(organiser_b, name="Open Meetup")
    make_attendee(public, "Ana", "ana@example.org", person_id=ana1.attendance.person_id)
    ben = make_attendee(
        public,
        "Ben",
        "ben@example.org",
        person_id=ben1.attendance.person_id,
        want_followups=True,
    )
    login(client, organiser_b)
    # Ben's digest will name Ana, met again; his organiser's preview names neither her nor
    # where they met: that is Ben's, and the earlier event may be another organiser's. With
    # no connection made tonight there is nothing of this event's to preview.
    preview = f"/organiser/events/{public.id}/emails/preview/{ben.attendance.id}"
    assert client.get(preview).status_code == 404
    cleo = make_attendee(public, "Cleo", "cleo@example.org")
    connect(ben, cleo)
    page = client.get(preview)
    assert page.status_code == 200
    assert "Cleo" in page.text and "Ana" not in page.text
    assert "Quiet Supper" not in page.text
    assert "You first met" not in page.text and "met before" not in page.text
