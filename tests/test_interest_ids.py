"""A check-in's interests by id: remembered once committed, never from a rolled-back write.

With memos on (as deployed), the ids of interests this process saw committed in the last
few seconds cost a check-in no statement. An id the transaction itself inserted is believed
only once it commits (domain/db.py `on_commit`): after a rollback SQLite hands the same id
to the next new row, and a remembered one would link a check-in to someone else's interest.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain import caching
from domain.checkin import Profile, check_in
from domain.db import db, on_commit, writing
from domain.events import EventDetails, create_event, wall_clock_now
from domain.models import Attendance, Event, Interest
from domain.organisers import create_organiser
from domain.profile import intern_interest_ids
from domain.tokens import new_token
from tests.statements import counting


@pytest.fixture
def remembering(app_factory, make_organiser, make_event):
    """An app whose memos last a minute, and an event on it."""
    app = app_factory(LOOKUP_CACHE_SECONDS=60)
    with app.app_context():
        yield make_event(make_organiser())
        db.session.remove()


numbers = iter(range(1, 10_000))


def arrive(event, interests: list[str], *, commit: bool = True) -> int:
    """Check someone new in with these interests; return their attendance's id."""
    number = next(numbers)
    profile = Profile(
        name=f"Guest {number}",
        email=f"guest{number}@example.org",
        interests=interests,
        share_profile=True,
    )
    with writing():
        result = check_in(event, profile, device_secret=new_token())
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
    return result.attendance_id


def interests_of(attendance_id: int) -> list[str]:
    db.session.expire_all()
    return [interest.name for interest in db.session.get_one(Attendance, attendance_id).interests]


def interest_statements(statements) -> list[str]:
    return [text for text in statements.sent if " interest " in f"{text} " or '"interest"' in text]


def test_interests_seen_committed_cost_the_next_check_in_no_statement(remembering):
    first = arrive(remembering, ["Jazz", "Chess"])
    with counting() as statements:
        second = arrive(remembering, ["Chess", "Jazz"])
    assert interest_statements(statements) == []
    assert interests_of(second) == interests_of(first) == ["Chess", "Jazz"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interest)) == 2


def test_only_the_unknown_interests_are_looked_up(remembering):
    arrive(remembering, ["Jazz"])
    with counting() as statements:
        second = arrive(remembering, ["Jazz", "Go"])
    looked_up = interest_statements(statements)
    assert len(looked_up) == 2, looked_up  # the insert of "Go" and the lookup of its id
    assert all("Jazz" not in text for text in looked_up)
    assert interests_of(second) == ["Go", "Jazz"]


def test_an_interest_a_rolled_back_check_in_added_is_not_remembered(remembering):
    arrive(remembering, ["Unicycling"], commit=False)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Interest)) == 0
    # SQLite gives the next new interest the id the rolled-back one had: a remembered
    # "Unicycling" would point at "Kites".
    arrive(remembering, ["Kites"])
    later = arrive(remembering, ["Unicycling"])
    assert interests_of(later) == ["Unicycling"]


def test_a_released_savepoint_remembers_nothing_until_its_transaction_commits(remembering):
    with writing():
        with db.session.begin_nested():
            intern_interest_ids(["Origami"])
        assert caching.interest_ids.recalled(caching.interest_id_key(db.engine, "Origami")) is None
        db.session.rollback()
    assert caching.interest_ids.recalled(caching.interest_id_key(db.engine, "Origami")) is None
    with writing():
        with db.session.begin_nested():
            [origami] = intern_interest_ids(["Origami"])
        db.session.commit()
    assert caching.interest_ids.recalled(caching.interest_id_key(db.engine, "Origami")) == origami


def test_without_memos_every_check_in_reads_its_interests(app, make_event):
    event = make_event()
    arrive(event, ["Jazz"])
    with counting() as statements:
        arrive(event, ["Jazz"])
    assert len(interest_statements(statements)) == 2
    assert caching.interest_ids.recalled(caching.interest_id_key(db.engine, "Jazz")) is None


def test_on_commit_runs_once_after_the_commit_and_never_after_a_rollback(app):
    ran: list[str] = []
    db.session.execute(sa.select(1))
    on_commit(lambda: ran.append("rolled back"))
    db.session.rollback()
    db.session.commit()
    assert ran == []
    db.session.execute(sa.select(1))
    on_commit(lambda: ran.append("committed"))
    assert ran == []
    db.session.commit()
    db.session.commit()
    assert ran == ["committed"]


def test_a_savepoint_rolled_back_drops_what_waited_for_the_commit(app):
    ran: list[str] = []
    with writing():
        on_commit(lambda: ran.append("before the savepoint"))
        savepoint = db.session.begin_nested()
        on_commit(lambda: ran.append("in the savepoint"))
        savepoint.rollback()
        db.session.commit()
    # Dropping too much costs only a statement later; running too much could be wrong.
    assert ran == []


def test_a_closed_or_reset_session_runs_nothing_at_a_later_commit(app):
    ran: list[str] = []
    for end in (db.session.close, db.session.reset):
        db.session.execute(sa.select(1))
        on_commit(lambda: ran.append("never committed"))
        end()
        db.session.execute(sa.select(1))
        db.session.commit()
    assert ran == []


def test_two_apps_in_one_process_never_take_each_others_interest_ids(app_factory, tmp_path):
    """Each database numbers its interests its own way: Jazz is 1 in one, Kites is 1 in the
    other, and a check-in in either is linked to what its person typed."""
    first = app_factory(LOOKUP_CACHE_SECONDS=60)
    second = app_factory(
        LOOKUP_CACHE_SECONDS=60, DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite'}"
    )
    events = {}
    for app in (first, second):
        with app.app_context():
            db.create_all()
            start = wall_clock_now("Europe/London") - timedelta(hours=1)
            ends = start + timedelta(hours=4)
            with writing():
                organiser = create_organiser("organiser@example.org", "correct horse battery")
                details = EventDetails("Run club", start, ends, "Europe/London")
                events[app] = create_event(organiser, details).id
                db.session.commit()
            db.session.remove()

    def arrive_in(app, interests):
        with app.app_context():
            names = interests_of(arrive(db.session.get_one(Event, events[app]), interests))
            db.session.remove()
            return names

    assert arrive_in(second, ["Jazz"]) == ["Jazz"]
    assert arrive_in(first, ["Kites"]) == ["Kites"]
    assert arrive_in(first, ["Jazz"]) == ["Jazz"]
    assert arrive_in(second, ["Chess", "Kites"]) == ["Chess", "Kites"]


def test_many_names_typed_never_push_out_what_the_door_looks_up(remembering, monkeypatch):
    monkeypatch.setattr(caching.interest_ids, "size", 3)
    poster = caching.poster_key(remembering.checkin_token)
    caching.remembered(poster, lambda: "the event")
    for name in ("One", "Two", "Three", "Four", "Five"):
        arrive(remembering, [name])
    assert caching.remembered(poster, lambda: "looked up again") == "the event"
    # The interest ids' own store stays within its size.
    assert len(caching.interest_ids._entries) <= 3
