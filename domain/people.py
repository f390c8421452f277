"""A person's own data across events: the relationship memory, export and erasure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain.connections import connections_of
from domain.db import db
from domain.events import local_time
from domain.followups import request_sign_in
from domain.models import Attendance, Block, Connection, Event, OutboxMessage, Person
from domain.profile import normalise_email
from domain.suppression import is_suppressed, suppress
from domain.vcard import Card
from domain.versions import person_shown_changed
from domain.visibility import Relation, contact_card, shared_interests


@dataclass(frozen=True)
class Memory:
    """One relationship as I remember it: who, where we met, what we share, my note."""

    connection: Connection
    mine: Attendance
    other: Attendance
    shared: list[str]
    note: str
    met_on: datetime  # the event's start, in its own time zone
    card: Card  # what they share with me: email and links, as the visibility rules allow


def find_person(email: str) -> Person | None:
    """Return the person with this address, or None."""
    return db.session.scalars(
        sa.select(Person).where(Person.email == normalise_email(email))
    ).one_or_none()


def send_sign_in_link(email: str, event: Event | None = None) -> None:
    """Email a sign-in link to this address if it belongs to someone we may still email."""
    person = find_person(email)
    if person is not None and not is_suppressed(person.email):
        request_sign_in(person, event)


def attendances_of(person: Person) -> list[Attendance]:
    """Return a person's check-ins, the latest event first."""
    return list(
        db.session.scalars(
            sa.select(Attendance)
            .where(Attendance.person_id == person.id)
            .options(selectinload(Attendance.event), selectinload(Attendance.interests))
            .order_by(Attendance.checked_in_at.desc())
        )
    )


def memories(person: Person) -> list[Memory]:
    """Return every accepted connection of a person, across events, newest first."""
    found = []
    for mine in attendances_of(person):
        for connection in connections_of(mine).accepted:
            other = connection.other(mine)
            found.append(
                Memory(
                    connection,
                    mine,
                    other,
                    shared_interests(mine, other, Relation.CONNECTION),
                    connection.note_of(mine),
                    local_time(mine.event, mine.event.starts_at),
                    contact_card(mine, connection),
                )
            )
    return found


def memory_of(person: Person, connection_id: int) -> Memory | None:
    """Return one of a person's accepted connections, or None if it isn't theirs."""
    for memory in memories(person):
        if memory.connection.id == connection_id:
            return memory
    return None


def export(person: Person) -> dict[str, Any]:
    """Return everything Rapport holds about a person, as plain data."""
    return {
        "profile": {
            "name": person.name,
            "email": person.email,
            "email_confirmed_at": _iso(person.email_confirmed_at),
            "about": person.about,
            "happy_to_talk_about": person.talk_about,
            "links": list(person.links or []),
        },
        "events": [
            {
                "event": mine.event.name,
                "venue": mine.event.venue,
                "starts_at": _iso(mine.event.starts_at),
                "checked_in_at": _iso(mine.checked_in_at),
                "interests": [interest.name for interest in mine.interests],
                "profile_consent_at": _iso(mine.profile_consent_at),
                "followup_consent_at": _iso(mine.followup_consent_at),
                "visibility": {
                    field: getattr(mine, f"{field}_visibility")
                    for field in ("about", "interests", "talk", "links", "email")
                },
            }
            for mine in attendances_of(person)
        ],
        "connections": [
            {
                "name": memory.other.person.name,
                "met_at": memory.mine.event.name,
                "accepted_at": _iso(memory.connection.accepted_at),
                "shared_interests": memory.shared,
                "my_note": memory.note,
            }
            for memory in memories(person)
        ],
        "emails": [
            {"kind": message.kind, "status": message.status, "created_at": _iso(message.created_at)}
            for message in db.session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.person_id == person.id)
            )
        ],
    }


def end_sessions(person: Person) -> None:
    """End every /me session of a person, on every phone, by moving their session epoch on."""
    # Incremented by the database, so two phones letting go at once both end what came before.
    person.session_epoch = Person.session_epoch + 1
    db.session.flush()


def session_is_current(person: Person, epoch: object) -> bool:
    """Tell whether a phone's reference made in `epoch` still names the person."""
    return isinstance(epoch, int) and epoch == person.session_epoch


def delete_person(person: Person) -> None:
    """Erase a person everywhere; only a hash of the address stays, so we never email it."""
    suppress(person.email, "deleted")
    # Every page showing us moves on, our connections locked for going.
    person_shown_changed(person.id)
    mine = sa.select(Attendance.id).where(Attendance.person_id == person.id)
    connection_ids = sa.select(Connection.id).where(
        sa.or_(Connection.low_attendance_id.in_(mine), Connection.high_attendance_id.in_(mine))
    )
    # Emails to others about our connections go too; so do mine, sent or not.
    db.session.execute(
        sa.delete(OutboxMessage).where(
            sa.or_(
                OutboxMessage.person_id == person.id,
                OutboxMessage.connection_id.in_(connection_ids),
            )
        )
    )
    db.session.execute(sa.delete(Connection).where(Connection.id.in_(connection_ids)))
    db.session.execute(
        sa.delete(Block).where(
            sa.or_(Block.blocker_person_id == person.id, Block.blocked_person_id == person.id)
        )
    )
    db.session.delete(person)
    db.session.flush()


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None
