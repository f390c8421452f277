"""Who sees what: what a viewer is to a profile's owner, and which fields and interests they see."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import sqlalchemy as sa

from domain.connections import find_connection
from domain.db import db
from domain.models import (
    PROFILE_FIELDS,
    Attendance,
    Connection,
    Interest,
    Visibility,
    attendance_interest,
)
from domain.vcard import Card


class Relation(enum.Enum):
    """What the viewer of a profile is to its owner."""

    SELF = "self"
    CONNECTION = "connection"
    ATTENDEE = "attendee"
    OUTSIDER = "outsider"


def shared_interest_names(mine: Attendance, others: list[Attendance]) -> dict[int, list[str]]:
    """Return, for each other attendance, the interests it shares with mine, in one query."""
    if not others:
        return {}
    rows = db.session.execute(
        _shared_statement(), {"mine": mine.id, "others": [other.id for other in others]}
    )
    shared: dict[int, list[str]] = {other.id: [] for other in others}
    for attendance_id, name in rows:
        shared[attendance_id].append(name)
    return shared


def my_interest_keys(mine: sa.ColumnElement[int]) -> sa.Select[tuple[str]]:
    """The keys of an attendance's interests: another's interest is shared when its key is
    one of them ("Marathons" here meets "marathon" there), and named as they typed it."""
    ours = sa.orm.aliased(attendance_interest)
    our_interest = sa.orm.aliased(Interest)
    return (
        sa.select(our_interest.key)
        .join(ours, ours.c.interest_id == our_interest.id)
        .where(ours.c.attendance_id == mine)
    )


@functools.cache
def _shared_statement() -> sa.Select[tuple[int, str]]:
    theirs = sa.orm.aliased(attendance_interest)
    return (
        sa.select(theirs.c.attendance_id, Interest.name)
        .join(Interest, Interest.id == theirs.c.interest_id)
        .where(
            theirs.c.attendance_id.in_(sa.bindparam("others", expanding=True)),
            Interest.key.in_(my_interest_keys(sa.bindparam("mine", type_=sa.Integer()))),
        )
        .order_by(Interest.key, Interest.name)
    )


def relation(owner: Attendance, viewer: Attendance | None) -> Relation:
    """Return what the viewer is to the owner of a profile."""
    return card_for(owner, viewer).relation


@dataclass(frozen=True)
class CardView:
    """What one person sees of another's card: who they are to them, and what is shown."""

    relation: Relation
    connection: Connection | None
    visible: frozenset[str]
    shared: list[str]


def card_for(owner: Attendance, viewer: Attendance | None) -> CardView:
    """Return what the viewer may see of the owner's card, with one look at their connection."""
    if viewer is None or viewer.event_id != owner.event_id:
        return CardView(Relation.OUTSIDER, None, frozenset(), [])
    if viewer.id == owner.id:
        seen_as, connection = Relation.SELF, None
    else:
        connection = find_connection(owner, viewer)
        accepted = connection is not None and connection.accepted
        seen_as = Relation.CONNECTION if accepted else Relation.ATTENDEE
    return CardView(
        seen_as,
        connection,
        visible_fields(owner, seen_as, connection if seen_as is Relation.CONNECTION else None),
        shared_interests(viewer, owner, seen_as),
    )


def can_see(
    owner: Attendance, field: str, viewer: Relation, connection: Connection | None = None
) -> bool:
    """Tell whether a viewer may see one field of the owner's profile.

    `connection` is the viewer's accepted connection with the owner, if known: through it
    the owner may show their email to that one person, whatever their event-wide choice.
    """
    if viewer is Relation.SELF:
        return True
    if (
        viewer is Relation.CONNECTION
        and field == "email"
        and connection is not None
        and connection.shares_email(owner)
    ):
        return True
    return shown_to(getattr(owner, f"{field}_visibility"), viewer)


def shown_to(setting: str, viewer: Relation) -> bool:
    """Tell whether a field with this visibility setting shows to a viewer."""
    if viewer is Relation.SELF:
        return True
    if viewer is Relation.CONNECTION:
        return setting in (Visibility.EVERYONE, Visibility.CONNECTIONS)
    if viewer is Relation.ATTENDEE:
        return setting == Visibility.EVERYONE
    return False


def visible_fields(
    owner: Attendance, viewer: Relation, connection: Connection | None = None
) -> frozenset[str]:
    """Return the names of the owner's fields the viewer may see."""
    return frozenset(field for field in PROFILE_FIELDS if can_see(owner, field, viewer, connection))


@dataclass(frozen=True)
class ShownField:
    """One part of a profile as a viewer sees it, in plain values."""

    key: str  # "about", "interests", "talk", "links" or "email"
    label: str
    text: str = ""
    items: tuple[str, ...] = ()  # interests or links


FIELD_LABELS = {
    "about": "About",
    "interests": "Interests",
    "talk": "Happy to talk about",
    "links": "Links",
    "email": "Email",
}


def shown_fields(owner: Attendance, visible: frozenset[str]) -> list[ShownField]:
    """Return the parts of the owner's profile in `visible` that have something to show."""
    person = owner.person
    values: dict[str, ShownField] = {
        "about": ShownField("about", FIELD_LABELS["about"], text=person.about or ""),
        "interests": ShownField(
            "interests", FIELD_LABELS["interests"], items=tuple(interest_names(owner))
        ),
        "talk": ShownField("talk", FIELD_LABELS["talk"], text=person.talk_about or ""),
        "links": ShownField("links", FIELD_LABELS["links"], items=tuple(person.links or [])),
        "email": ShownField("email", FIELD_LABELS["email"], text=person.email),
    }
    return [
        values[field]
        for field in PROFILE_FIELDS
        if field in visible and (values[field].text or values[field].items)
    ]


def interest_names(attendance: Attendance) -> list[str]:
    """Return the names of an attendance's interests, in the order they show.

    From its collection when that is loaded already; else in one statement that makes no
    ORM object (a badge page shows my interests and needs nothing else of them).
    """
    if "interests" not in sa.inspect(attendance).unloaded:
        return [interest.name for interest in attendance.interests]
    return list(db.session.scalars(_names_statement(), {"attendance": attendance.id}))


@functools.cache
def _names_statement() -> sa.Select[tuple[str]]:
    return (
        sa.select(Interest.name)
        .join(attendance_interest, attendance_interest.c.interest_id == Interest.id)
        .where(
            attendance_interest.c.attendance_id == sa.bindparam("attendance", type_=sa.Integer())
        )
        .order_by(Interest.key, Interest.name)
    )


@dataclass(frozen=True)
class CardPreview:
    """My card as others see it: a stranger at the event, and a connection."""

    stranger: list[ShownField]
    connection: list[ShownField]


def preview_card(mine: Attendance) -> CardPreview:
    """Return my card as a stranger at my event and as a connection see it."""
    return CardPreview(
        stranger=shown_fields(mine, visible_fields(mine, Relation.ATTENDEE)),
        connection=shown_fields(mine, visible_fields(mine, Relation.CONNECTION)),
    )


def shared_interests(a: Attendance, b: Attendance, viewer: Relation) -> list[str]:
    """Return the interests two people share, as far as `b` lets the viewer see them.

    From their collections when both are loaded already (a badge's connections come with
    them); else in one statement that makes no ORM object (a card).
    """
    if not can_see(b, "interests", viewer):
        return []
    if not {"interests"} & (sa.inspect(a).unloaded | sa.inspect(b).unloaded):
        mine = {interest.key for interest in a.interests}
        return [interest.name for interest in b.interests if interest.key in mine]
    return shared_interest_names(a, [b])[b.id]


def contact_card(mine: Attendance, connection: Connection) -> Card:
    """Return the contact details the other side of a connection shares with me."""
    other = connection.other(mine)
    shown = visible_fields(other, Relation.CONNECTION, connection)
    return Card(
        name=other.person.name,
        email=other.person.email if "email" in shown else None,
        urls=list(other.person.links or []) if "links" in shown else [],
        note=f"Met at {mine.event.name}",
    )
