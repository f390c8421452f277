"""A check-in's interests by id: remembered once committed, never from a rolled-back write.

With memos on (as deployed), the ids of interests this process saw committed in the last
few seconds cost a check-in no statement. An id the transaction itself inserted is believed
only once it commits (domain/db.py `on_commit`): after a rollback SQLite hands the same id
to the next new row, and a remembered one would link a check-in to someone else's interest.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain import caching
from domain.checkin import Profile, check_in
from domain.db import db, on_commit, writing
from domain.models import Attendance, Interest
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
        assert caching.recalled(caching.interest_id_key("Origami")) is None
        db.session.rollback()
    assert caching.recalled(caching.interest_id_key("Origami")) is None
    with writing():
        with db.session.begin_nested():
            [origami] = intern_interest_ids(["Origami"])
        db.session.commit()
    assert caching.recalled(caching.interest_id_key("Origami")) == origami


def test_without_memos_every_check_in_reads_its_interests(app, make_event):
    event = make_event()
    arrive(event, ["Jazz"])
    with counting() as statements:
        arrive(event, ["Jazz"])
    assert len(interest_statements(statements)) == 2
    assert caching.recalled(caching.interest_id_key("Jazz")) is None


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
