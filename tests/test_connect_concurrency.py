"""Two phones scanning each other at the same moment make one accepted connection."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, writing
from domain.models import Attendance, Connection

ROUNDS = 50


def test_simultaneous_mutual_requests_make_one_accepted_connection(app, make_event, make_attendee):
    event = make_event()
    pairs = [
        (
            make_attendee(event, f"Ana {n}").attendance.id,
            make_attendee(event, f"Ben {n}").attendance.id,
        )
        for n in range(ROUNDS)
    ]
    errors: list[BaseException] = []

    def scan(requester_id: int, target_id: int, barrier: threading.Barrier) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                with writing():
                    requester = db.session.get(Attendance, requester_id)
                    target = db.session.get(Attendance, target_id)
                    request_connection(requester, target)
                    db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    for ana, ben in pairs:
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=scan, args=(ana, ben, barrier)),
            threading.Thread(target=scan, args=(ben, ana, barrier)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    db.session.rollback()  # end this test's own read snapshot before looking
    rows = db.session.execute(
        sa.select(Connection.low_attendance_id, Connection.high_attendance_id, Connection.status)
    ).all()
    assert len(rows) == ROUNDS
    assert {status for *_, status in rows} == {"accepted"}
    assert {(low, high) for low, high, _ in rows} == {tuple(sorted(pair)) for pair in pairs}
