"""Check-ins and profile edits at one event take their locks in one order (the interests'
names, the event's interest counts, the event's own row), so on PostgreSQL they wait for
each other at most, and never deadlock; on SQLite writers take turns anyway."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import domain.checkin
from domain.checkin import Profile, check_in
from domain.db import db, writing
from domain.models import Attendance, Event
from domain.profile import update_profile
from domain.tokens import new_token

PAUSE = 1.5  # longer than PostgreSQL's deadlock_timeout (1 s), which then looks for cycles


def in_a_transaction(app, work: Callable[[], None], outcomes: dict[str, str], name: str):
    """Return a thread that runs `work` in a write transaction of its own and notes how it
    ended."""

    def run() -> None:
        with app.app_context():
            try:
                with writing():
                    work()
                    db.session.commit()
                outcomes[name] = "committed"
            except Exception as error:  # noqa: BLE001 (the outcome is the finding)
                db.session.rollback()
                outcomes[name] = f"{type(error).__name__}: {getattr(error, 'orig', error)}"
            finally:
                db.session.remove()

    return threading.Thread(target=run, name=name, daemon=True)


def newcomer(event_id: int, interests: list[str], number: int = 0) -> Callable[[], None]:
    def work() -> None:
        check_in(
            db.session.get_one(Event, event_id),
            Profile(
                name=f"Guest {number}",
                email=f"guest-{new_token()[:12]}@example.org",
                interests=interests,
                share_profile=True,
            ),
            device_secret=new_token(),
        )

    return work


def edit(attendance_id: int, interests: list[str]) -> Callable[[], None]:
    def work() -> None:
        mine = db.session.get_one(Attendance, attendance_id)
        update_profile(
            mine, name="Ana", about="", talk_about="", interests=interests, links=[], visibility={}
        )

    return work


def test_an_edit_adding_an_interest_waits_for_a_check_in_counting_it(
    app, make_event, make_attendee, monkeypatch
):
    """The check-in has counted "chess" and is about to move the attendee page on when Ana
    adds "chess" to her profile: her edit waits for the check-in, which then finishes."""
    event = make_event()
    ana = make_attendee(event, "Ana", interests=["go"])
    counted = threading.Event()
    moving_on = domain.checkin.attendees_move_on

    def pausing(event_id: int) -> int:
        if threading.current_thread().name == "check-in":
            counted.set()
            time.sleep(PAUSE)
        return moving_on(event_id)

    monkeypatch.setattr(domain.checkin, "attendees_move_on", pausing)
    outcomes: dict[str, str] = {}
    arriving = in_a_transaction(app, newcomer(event.id, ["chess"]), outcomes, "check-in")
    editing = in_a_transaction(app, edit(ana.attendance.id, ["go", "chess"]), outcomes, "edit")
    db.session.remove()
    arriving.start()
    assert counted.wait(10)
    editing.start()
    for thread in (arriving, editing):
        thread.join(30)
    assert outcomes == {"check-in": "committed", "edit": "committed"}


def test_check_ins_and_edits_racing_over_shared_interests_all_commit(
    app, make_event, make_attendee
):
    event = make_event()
    event_id = event.id
    editors = [make_attendee(event, interests=["go"]).attendance.id for _ in range(3)]
    db.session.remove()
    outcomes: dict[str, str] = {}

    def arrivals(first: int) -> None:
        for number in range(first, first + 15):
            tags = ["chess", f"tag {number % 3}"]
            thread = in_a_transaction(
                app, newcomer(event_id, tags, number), outcomes, f"check-in {number}"
            )
            thread.start()
            thread.join(30)

    def edits(attendance_id: int) -> None:
        for round_ in range(10):
            tags = ["go", "chess", f"tag {round_ % 3}"] if round_ % 2 == 0 else ["go"]
            name = f"edit {attendance_id}.{round_}"
            thread = in_a_transaction(app, edit(attendance_id, tags), outcomes, name)
            thread.start()
            thread.join(30)

    workers = [threading.Thread(target=arrivals, args=(first,)) for first in (0, 100, 200)]
    workers += [threading.Thread(target=edits, args=(attendance_id,)) for attendance_id in editors]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    failed = {name: outcome for name, outcome in outcomes.items() if outcome != "committed"}
    assert failed == {}
    assert len(outcomes) == 3 * 15 + 3 * 10
    assert db.session.query(Attendance).filter_by(event_id=event_id).count() == 3 + 3 * 15
