"""Met before asked from many threads at once, as a threaded server's first requests ask it.

Real threads against a real database (a SQLite file, or PostgreSQL when TEST_DATABASE_URL is
set). Each start reloads domain/met_before.py and builds a new engine, so every start is a
fresh server process: its aliases, statements and compiled SQL made while threads race.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from domain import met_before
from domain.checkin import CheckInResult
from domain.connections import request_connection
from domain.db import db, writing
from domain.models import Attendance, Event

PEOPLE = 6
THREADS = 8  # as many as one pool lends at once without waiting
STARTS = 20
WAIT = 60  # seconds: the most one thread may take


@dataclass(frozen=True)
class Reunion:
    """Tonight's event, where everyone connected with everyone at an earlier one."""

    event_id: int
    attendance_ids: list[int]
    names: dict[int, str]  # by person id


@pytest.fixture
def reunion(
    make_organiser: Callable[..., Any],
    make_event: Callable[..., Event],
    make_attendee: Callable[..., CheckInResult],
) -> Reunion:
    organiser = make_organiser()
    first = make_event(organiser, name="Spring meetup")
    tonight = make_event(organiser, name="Summer meetup")
    there = [
        make_attendee(first, f"Person {n}", f"person{n}@example.org").attendance
        for n in range(PEOPLE)
    ]
    with writing():
        for n, mine in enumerate(there):
            for theirs in there[n + 1 :]:
                request_connection(mine, theirs, "")
                request_connection(theirs, mine, "")
        earlier = db.session.get_one(Event, first.id)
        earlier.starts_at -= timedelta(days=30)
        earlier.ends_at -= timedelta(days=30)
        db.session.commit()
    here = [
        make_attendee(
            tonight, f"Person {n}", f"person{n}@example.org", person_id=then.person_id
        ).attendance
        for n, then in enumerate(there)
    ]
    reunion = Reunion(
        tonight.id, [a.id for a in here], {a.person_id: f"Person {n}" for n, a in enumerate(here)}
    )
    db.session.remove()  # the test's own thread holds no transaction while the threads run
    return reunion


def ask_at_once(app: Flask, reunion: Reunion) -> list[str]:
    """Ask every met-before question from THREADS threads at once; return what went wrong."""
    barrier = threading.Barrier(THREADS)
    failures: list[str] = []

    def ask(index: int) -> None:
        with app.app_context():
            try:
                mine = db.session.get_one(Attendance, reunion.attendance_ids[index % PEOPLE])
                others = [
                    db.session.get_one(Attendance, other)
                    for other in reunion.attendance_ids
                    if other != mine.id
                ]
                event = db.session.get_one(Event, reunion.event_id)
                expected = sorted(
                    name for person, name in reunion.names.items() if person != mine.person_id
                )
                barrier.wait(WAIT)
                found = met_before.met_before_here(mine)
                assert sorted(m.name for m in found) == expected
                assert all(m.first.event_name == "Spring meetup" for m in found)
                arriving = met_before.met_here_before(event, mine.person_id)
                assert sorted(arriving) == sorted(o.id for o in others)
                first = met_before.first_meetings(mine, others)
                assert sorted(reunion.names[p] for p in first) == expected
            except BaseException as error:  # reported by the test, in its own thread
                failures.append(f"{type(error).__name__}: {error}")
                barrier.abort()  # no thread is left waiting for one that failed
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(THREADS)]
    # Switch threads as often as the interpreter allows, so a race shows within a few starts.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(2 * WAIT)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads), "threads still running"
    return [f for f in failures if not f.startswith("BrokenBarrierError")] or failures


def test_met_before_answers_every_thread_of_a_fresh_process(
    app_factory: Callable[..., Flask], reunion: Reunion
) -> None:
    for start in range(STARTS):
        importlib.reload(met_before)  # a fresh process: aliases and statements made anew
        app = app_factory()  # and a fresh engine, with nothing compiled yet
        try:
            failures = ask_at_once(app, reunion)
        finally:
            with app.app_context():
                db.engine.dispose()
        assert failures == [], f"start {start + 1}: {failures[0]}"
