"""A crowd checked in at once, straight into the database: for tests and benches at scale."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from domain.db import db, utcnow, writing
from domain.interest_keys import interest_key
from domain.models import Attendance, Interest, Person, attendance_interest
from domain.tokens import hash_token, new_token

INTERESTS = ("sourdough", "marathons", "chess", "travel in asia", "jazz")


def add_crowd(event_id: int, size: int) -> None:
    """Check `size` new people in at an event directly, each showing two interests."""
    now = utcnow()
    with writing():
        known = set(db.session.scalars(sa.select(Interest.name)))
        missing = [name for name in INTERESTS if name not in known]
        if missing:
            db.session.execute(
                sa.insert(Interest.__table__),
                [{"name": name, "key": interest_key(name)} for name in missing],
            )
        interest_ids = list(
            db.session.scalars(
                sa.select(Interest.id).where(Interest.name.in_(INTERESTS)).order_by(Interest.id)
            )
        )
        person_ids = db.session.scalars(
            sa.insert(Person).returning(Person.id, sort_by_parameter_order=True),
            [
                {
                    "email": f"crowd{n}.{event_id}@example.org",
                    "name": f"Crowd {n}",
                    "links": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(size)
            ],
        ).all()
        attendance_ids = db.session.scalars(
            sa.insert(Attendance).returning(Attendance.id, sort_by_parameter_order=True),
            [
                {
                    "event_id": event_id,
                    "person_id": person_id,
                    "badge_token_hash": hash_token(new_token()),
                    "checked_in_at": now - timedelta(seconds=size - n),
                    "interests_visibility": "everyone",
                }
                for n, person_id in enumerate(person_ids)
            ],
        ).all()
        db.session.execute(
            sa.insert(attendance_interest),
            [
                {"attendance_id": attendance_id, "interest_id": interest_ids[(n + k) % 5]}
                for n, attendance_id in enumerate(attendance_ids)
                for k in (0, 1)
            ],
        )
        db.session.commit()
