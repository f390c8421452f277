"""Moving a person's badge to the phone they are signing in on."""

from __future__ import annotations

import sqlalchemy as sa

from domain.checkin import CheckInResult, badge_token_for
from domain.db import db
from domain.models import Attendance, Person
from domain.tokens import hash_token


def give_badge_to_device(person: Person, event_id: int, device_secret: str) -> CheckInResult | None:
    """Give a person's badge at an event to this device; the old badge link stops working."""
    attendance = db.session.scalars(
        sa.select(Attendance).where(
            Attendance.person_id == person.id, Attendance.event_id == event_id
        )
    ).one_or_none()
    if attendance is None:
        return None
    token = badge_token_for(device_secret, attendance.event)
    attendance.badge_token_hash = hash_token(token)
    db.session.flush()
    return CheckInResult(attendance, token, created=False)
