"""The live refresh moves on for changes people see that happen away from their event:
someone met before leaves or changes, an earlier event is renamed or joins a community,
and the organiser's page takes away the line of someone no longer here."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from domain.communities import attach_event, create_community
from domain.connections import share_email
from domain.db import db, utcnow, writing
from domain.events import EventDetails, local_time, update_event
from domain.models import Attendance, Community, Connection, Event, Person
from domain.people import delete_person
from domain.profile import update_person
from domain.retention import purge_event
from domain.versions import attendees_version
from tests.conftest import live_versions_from, login
from tests.test_communities import connect, move_back
from tests.test_http_connect import Phone


class Badge:
    """A phone polling one badge's live part, as the badge page's script does."""

    def __init__(self, app, checked_in) -> None:
        self.phone = Phone(app, checked_in)
        page = self.phone.get(f"/b/{self.phone.token}")
        self.page = page.text
        self.etag = live_versions_from(page.text)[f"/b/{self.phone.token}/live"]

    def refresh(self):
        db.session.remove()
        response = self.phone.get(
            f"/b/{self.phone.token}/live", headers={"If-None-Match": self.etag}
        )
        self.etag = response.headers["ETag"]
        return response

    def unchanged(self) -> bool:
        return self.refresh().status_code == 304

    def changed(self) -> str:
        response = self.refresh()
        assert response.status_code == 200, "expected a changed fragment"
        return response.text


@pytest.fixture
def met(make_organiser, make_event, make_attendee):
    """Ana and Ben connected at an earlier event (out of any community); both are here
    tonight, so Ana's badge shows Ben as met before."""
    organiser = make_organiser()
    first = make_event(organiser, name="Sunday Brunch")
    tonight = make_event(organiser, name="Sunday Brunch")
    ana1 = make_attendee(first, "Ana", "ana@example.org", interests=["sourdough"])
    ben1 = make_attendee(first, "Ben", "ben@example.org", interests=["chess"])
    connect(ana1, ben1)
    move_back(first, 30)
    ana = make_attendee(tonight, "Ana", "ana@example.org", person_id=ana1.person.id)
    ben = make_attendee(tonight, "Ben", "ben@example.org", person_id=ben1.person.id)
    return dataclasses.make_dataclass(
        "Met", ["organiser", "first", "tonight", "ana1", "ben1", "ana", "ben"]
    )(organiser, first, tonight, ana1, ben1, ana, ben)


def ben_person(met) -> Person:
    return db.session.get_one(Person, met.ben.person.id)


def test_a_deleted_person_leaves_the_badges_that_met_them_before(app, met):
    badge = Badge(app, met.ana)
    assert "Ben" in badge.page and badge.unchanged()
    with writing():
        delete_person(ben_person(met))
        db.session.commit()
    assert "Ben" not in badge.changed()


def test_a_person_purged_with_an_earlier_event_leaves_the_badges_that_met_them(app, met):
    badge = Badge(app, met.ana)
    assert "Ben" in badge.page and badge.unchanged()
    with writing():
        purge_event(db.session.get_one(Event, met.first.id), utcnow())
        db.session.commit()
    assert "met before" not in badge.changed()


def test_the_organiser_refresh_takes_away_the_line_of_a_deleted_person(app, met):
    laptop = app.test_client()
    login(laptop, met.organiser)
    live = f"/organiser/events/{met.tonight.id}/live"
    etag = laptop.get(live).headers["ETag"]
    shown = f"{met.ana.attendance_id},{met.ben.attendance_id}"
    assert laptop.get(f"{live}?shown={shown}", headers={"If-None-Match": etag}).status_code == 304
    with writing():
        delete_person(ben_person(met))
        db.session.commit()
    answer = laptop.get(f"{live}?shown={shown},x,-3", headers={"If-None-Match": etag})
    assert answer.status_code == 200 and answer.headers["ETag"] != etag
    assert f'data-removed="{met.ben.attendance_id}"' in answer.text
    assert "<strong>1</strong> checked in" in answer.text


def test_a_name_or_links_changed_tonight_move_the_badges_that_met_them_before(app, met):
    badge = Badge(app, met.ana)
    assert badge.unchanged()
    with writing():
        update_person(ben_person(met), name="Benedict", about="", talk_about="", links=[])
        db.session.commit()
    assert "Benedict" in badge.changed()
    with writing():
        update_person(
            ben_person(met),
            name="Benedict",
            about="",
            talk_about="",
            links=["https://ben.example.org"],
        )
        db.session.commit()
    badge.changed()


def test_sharing_an_email_on_an_earlier_connection_moves_the_badge_that_met_them(app, met):
    badge = Badge(app, met.ana)
    assert "ben@example.org" in badge.page and badge.unchanged()
    with writing():
        ben1 = db.session.get_one(Attendance, met.ben1.attendance_id)
        earlier = db.session.scalars(
            sa.select(Connection).where(Connection.event_id == met.first.id)
        ).one()
        share_email(ben1, earlier, False)
        db.session.commit()
    badge.changed()  # the page that shows Ben as met before moves on


def details_of(event: Event, **changes) -> EventDetails:
    return dataclasses.replace(
        EventDetails(
            name=event.name,
            starts_at=local_time(event, event.starts_at).replace(tzinfo=None),
            ends_at=local_time(event, event.ends_at).replace(tzinfo=None),
            timezone=event.timezone,
            venue=event.venue,
            retention_days=event.retention_days,
            community_id=event.community_id,
        ),
        **changes,
    )


def test_renaming_an_earlier_event_moves_the_badges_that_name_it(app, met):
    badge = Badge(app, met.ana)
    assert badge.unchanged()
    with writing():
        first = db.session.get_one(Event, met.first.id)
        update_event(first, details_of(first, name="Saturday Brunch"))
        db.session.commit()
    assert "Saturday Brunch" in badge.changed()


def test_an_earlier_event_joining_a_community_moves_the_pages_of_its_events(app, met):
    with writing():
        community = create_community(met.organiser, "Sunday Brunch Club")
        attach_event(community, db.session.get_one(Event, met.tonight.id))
        db.session.commit()
        community_id = community.id
    badge = Badge(app, met.ana)
    assert badge.unchanged()
    version = attendees_version(met.tonight.id)
    with writing():
        community = db.session.get_one(Community, community_id)
        attach_event(community, db.session.get_one(Event, met.first.id))
        db.session.commit()
    badge.changed()
    assert attendees_version(met.tonight.id) > version


def test_putting_tonight_into_a_community_through_the_event_form_moves_its_pages(app, met):
    with writing():
        community = create_community(met.organiser, "Sunday Brunch Club")
        attach_event(community, db.session.get_one(Event, met.first.id))
        db.session.commit()
        community_id = community.id
    badge = Badge(app, met.ana)
    assert badge.unchanged()
    version = attendees_version(met.tonight.id)
    with writing():
        tonight = db.session.get_one(Event, met.tonight.id)
        update_event(tonight, details_of(tonight, community_id=community_id))
        db.session.commit()
    badge.changed()
    assert attendees_version(met.tonight.id) > version


def test_the_refresh_counts_the_matches_of_the_search_it_holds(
    app, make_organiser, make_event, make_attendee
):
    organiser = make_organiser()
    event = make_event(organiser)
    make_attendee(event, "Guest 130")
    make_attendee(event, "Guest 131")
    laptop = app.test_client()
    login(laptop, organiser)
    live = f"/organiser/events/{event.id}/live?q=Guest+130"
    etag = laptop.get(live).headers["ETag"]
    make_attendee(event, "Dee")
    answer = laptop.get(live, headers={"If-None-Match": etag})
    assert answer.status_code == 200
    assert "<strong>3</strong> checked in" in answer.text
    assert "1 matching" in answer.text
