"""Two phones scanning each other at the same moment make one accepted connection."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from domain.connections import block, request_connection
from domain.db import db, writing
from domain.models import Attendance, Block, Connection

ROUNDS = 50


def _at_once(app, move, pairs: list[tuple[int, int]]) -> list[BaseException]:
    """Run move(first, second) for each pair of attendance ids, each in its own thread and
    session, all released past one barrier at the same moment; return what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(pairs))

    def run(first_id: int, second_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                with writing():
                    move(
                        db.session.get_one(Attendance, first_id),
                        db.session.get_one(Attendance, second_id),
                    )
                    db.session.commit()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return errors


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
    for ana, ben in pairs:
        errors += _at_once(app, request_connection, [(ana, ben), (ben, ana)])
    assert errors == []
    db.session.rollback()  # end this test's own read snapshot before looking
    rows = db.session.execute(
        sa.select(Connection.low_attendance_id, Connection.high_attendance_id, Connection.status)
    ).all()
    assert len(rows) == ROUNDS
    assert {status for *_, status in rows} == {"accepted"}
    assert {(low, high) for low, high, _ in rows} == {tuple(sorted(pair)) for pair in pairs}


BLOCK_ROUNDS = 20


def test_blocking_at_the_same_moment_never_fails(app, make_event, make_attendee):
    event = make_event()
    pairs = []
    for n in range(BLOCK_ROUNDS):
        ana = make_attendee(event, f"Ana {n}").attendance
        ben = make_attendee(event, f"Ben {n}").attendance
        with writing():
            request_connection(ana, ben)
            request_connection(ben, ana)
            db.session.commit()
        pairs.append((ana.id, ana.person_id, ben.id, ben.person_id))
    db.session.remove()  # the main thread holds no transaction while the threads run
    errors: list[BaseException] = []
    expected: set[tuple[int, int]] = set()
    for ana_id, ana_person, ben_id, ben_person in pairs:
        expected |= {(ana_person, ben_person), (ben_person, ana_person)}
        # Each blocks the other, and each phone sends its block twice (a double tap).
        moves = [(ana_id, ben_id), (ben_id, ana_id), (ana_id, ben_id), (ben_id, ana_id)]
        errors += _at_once(app, block, moves)
    assert errors == []
    blocks = db.session.execute(sa.select(Block.blocker_person_id, Block.blocked_person_id)).all()
    assert set(blocks) == expected
    assert len(blocks) == len(expected)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Connection)) == 0
