"""What an organiser sees of the people at their event, and the tags they share."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from domain import caching
from domain.connections import connection_counts
from domain.db import db, like_anywhere
from domain.events import local_time
from domain.interest_keys import key_pattern, name_key
from domain.limits import ATTENDEES_PAGE, SEARCH_MAX, SUGGESTED_INTERESTS
from domain.models import (
    Attendance,
    Connection,
    ConnectionStatus,
    Event,
    Interest,
    Person,
    Visibility,
    attendance_interest,
)
from domain.profile import normalise_interest

CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ("Name", "Checked in", "Interests", "Connections")

# The organiser is no one's connection: of a person's profile they see what that person
# shows everyone at the event, and their name always. Contact details (email, links) are
# never on an organiser's page: the organiser reaches people through Rapport's own emails.
ORGANISER_FIELDS = ("about", "interests", "talk")
ORGANISER_SEES = (Visibility.EVERYONE.value,)


def organiser_may_see(attendance: Attendance, field: str) -> bool:
    """Tell whether the organiser may see one field of an attendee's profile."""
    return (
        field in ORGANISER_FIELDS and getattr(attendance, f"{field}_visibility") in ORGANISER_SEES
    )


def _organiser_may_see_column(field: str) -> sa.ColumnElement[bool]:
    """The same rule as organiser_may_see, as a condition a query can filter on."""
    return getattr(Attendance, f"{field}_visibility").in_(ORGANISER_SEES)


@dataclass(frozen=True)
class OrganiserCard:
    """What the organiser sees of one attendee: the name, and fields shown to everyone."""

    attendance: Attendance
    name: str
    about: str
    talk_about: str
    interests: list[str]
    arrived: datetime  # when they checked in, in the event's time zone


def organiser_card(attendance: Attendance) -> OrganiserCard:
    """Return what the organiser may see of an attendee, on every organiser surface."""
    return _card_at(attendance.event, attendance, attendance.person)


def list_attendees(event: Event, search: str = "") -> list[Attendance]:
    """Return an event's attendances, latest arrival first, filtered by name or interest.

    An interest matches only where the organiser may see it: a search must not reveal
    what the person hid.
    """
    statement = (
        sa.select(Attendance)
        .join(Attendance.person)
        .where(Attendance.event_id == event.id, _matching(search))
        .options(selectinload(Attendance.person), selectinload(Attendance.interests))
        .order_by(Attendance.checked_in_at.desc(), Attendance.id.desc())
    )
    return list(db.session.scalars(statement))


def _matching(search: str) -> sa.ColumnElement[bool]:
    """The condition of a search by name, or by an interest the organiser may see."""
    term = normalise_interest(search).casefold()
    if not term:
        return sa.true()
    pattern = like_anywhere(term)
    # An interest matches on its key ("Marathons" finds "marathon"), or on part of
    # its name as typed ("marat").
    with_interest = (
        sa.select(attendance_interest.c.attendance_id)
        .join(Interest, Interest.id == attendance_interest.c.interest_id)
        .where(
            sa.or_(
                Interest.key.like(key_pattern(search) or pattern, escape="\\"),
                sa.func.lower(Interest.name).like(pattern, escape="\\"),
            )
        )
    )
    shown_interest = sa.and_(
        _organiser_may_see_column("interests"), Attendance.id.in_(with_interest)
    )
    by_name = [sa.func.lower(Person.name).like(pattern, escape="\\")]
    folded = name_key(search)
    if folded:
        by_name.append(Person.name_key.like(like_anywhere(folded), escape="\\"))
    return sa.or_(*by_name, shown_interest)


def attendee_cards(event: Event, search: str = "") -> list[OrganiserCard]:
    """Return what the organiser may see of an event's attendees, filtered as list_attendees."""
    return [organiser_card(attendance) for attendance in list_attendees(event, search)]


def clean_search(typed: str) -> str:
    """Return a search as typed, cut to length and without control codes."""
    # What a person types in a search box never reaches the database as a control code.
    return "".join(c for c in typed[:SEARCH_MAX] if c.isprintable())


@dataclass(frozen=True)
class AttendeeRow:
    """One line of the organiser's attendee page."""

    card: OrganiserCard
    connections: int  # accepted connections made here


@dataclass(frozen=True)
class AttendeeListing:
    """One window of the organiser's attendee page, with the event's counts.

    `version` is the event's attendees_version the listing was read at; `since` is set
    when the rows are only those changed after that version.
    """

    rows: list[AttendeeRow]
    total: int
    total_connections: int
    matching: int
    version: int
    search: str
    page: int
    pages: int
    since: int | None = None
    removed: tuple[int, ...] = ()  # lines the page shows whose person is no longer here


def attendee_listing(event: Event, search: str = "", page: int = 1) -> AttendeeListing:
    """Return one page of an event's attendees, latest arrival first, and its counts.

    Its cost does not grow with the crowd: one aggregate query for the counts, one for
    the page's rows and one for their interests (and one more count for a search).
    """
    total, total_connections, version = _counts(event.id)
    matching = _matching_count(event.id, search) if search else total
    pages = max(1, -(-matching // ATTENDEES_PAGE))
    page = min(max(page, 1), pages)
    rows = _rows(event, _matching(search), offset=(page - 1) * ATTENDEES_PAGE)
    return AttendeeListing(rows, total, total_connections, matching, version, search, page, pages)


def attendee_changes(
    event: Event, since: int, search: str = "", shown: tuple[int, ...] = ()
) -> AttendeeListing:
    """Return the attendees whose line changed after version `since`, and the counts.

    `shown` are the lines the page holds: those whose person left (deleted, or purged)
    come back as `removed`, for the page to take away.
    """
    total, total_connections, version = _counts(event.id)
    matching = _matching_count(event.id, search) if search else total
    changed = sa.and_(Attendance.listed_version > since, _matching(search))
    rows = _rows(event, changed, offset=0)
    return AttendeeListing(
        rows,
        total,
        total_connections,
        matching,
        version,
        search,
        1,
        1,
        since=since,
        removed=_gone(event.id, shown),
    )


def _gone(event_id: int, shown: tuple[int, ...]) -> tuple[int, ...]:
    """Return which of the attendance ids a page shows are no longer at the event."""
    if not shown:
        return ()
    here = set(
        db.session.scalars(
            sa.select(Attendance.id).where(
                Attendance.event_id == event_id, Attendance.id.in_(shown)
            )
        )
    )
    return tuple(sorted(set(shown) - here))


def _counts(event_id: int) -> tuple[int, int, int]:
    """Return the check-ins, the accepted connections and the page version, in one query."""
    checked_in = (
        sa.select(sa.func.count())
        .select_from(Attendance)
        .where(Attendance.event_id == event_id)
        .scalar_subquery()
    )
    connected = (
        sa.select(sa.func.count())
        .select_from(Connection)
        .where(
            Connection.event_id == event_id,
            Connection.status == ConnectionStatus.ACCEPTED.value,
        )
        .scalar_subquery()
    )
    row = db.session.execute(
        sa.select(checked_in, connected, Event.attendees_version).where(Event.id == event_id)
    ).one()
    return row[0], row[1], row[2]


def _matching_count(event_id: int, search: str) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .join(Attendance.person)
            .where(Attendance.event_id == event_id, _matching(search))
        )
        or 0
    )


def _rows(event: Event, condition: sa.ColumnElement[bool], *, offset: int) -> list[AttendeeRow]:
    connections = (
        sa.select(sa.func.count())
        .select_from(Connection)
        .where(
            Connection.status == ConnectionStatus.ACCEPTED.value,
            sa.or_(
                Connection.low_attendance_id == Attendance.id,
                Connection.high_attendance_id == Attendance.id,
            ),
        )
        .correlate(Attendance)
        .scalar_subquery()
    )
    found = db.session.execute(
        sa.select(Attendance, Person, connections)
        .join(Attendance.person)
        .where(Attendance.event_id == event.id, condition)
        .options(selectinload(Attendance.interests))
        .order_by(Attendance.checked_in_at.desc(), Attendance.id.desc())
        .offset(offset)
        .limit(ATTENDEES_PAGE)
    ).all()
    return [
        AttendeeRow(_card_at(event, attendance, person), count)
        for attendance, person, count in found
    ]


def _card_at(event: Event, attendance: Attendance, person: Person) -> OrganiserCard:
    """Return the organiser's card of an attendee whose event and person are loaded."""
    return OrganiserCard(
        attendance=attendance,
        name=person.name,
        about=person.about if organiser_may_see(attendance, "about") else "",
        talk_about=person.talk_about if organiser_may_see(attendance, "talk") else "",
        interests=[interest.name for interest in attendance.interests]
        if organiser_may_see(attendance, "interests")
        else [],
        arrived=local_time(event, attendance.checked_in_at),
    )


def popular_interests(event: Event) -> list[str]:
    """Return the interests most used at an event by people who show them to everyone.

    Spellings of one interest count together, and it is offered in one of them.
    Remembered for a few seconds (domain/caching.py): every phone at the door asks.
    """
    return caching.remembered(
        caching.popular_key(event.id, event.checkin_token),
        lambda: _popular_interests(event.id, SUGGESTED_INTERESTS),
    )


def _popular_interests(event_id: int, limit: int) -> list[str]:
    # Each spelling with its uses here; then, per key, all its spellings' uses together and
    # the spelling most people typed ("Surfing" typed by four beats "Surf" typed by one).
    spellings = (
        sa.select(Interest.key, Interest.name, sa.func.count().label("uses"))
        .join(attendance_interest, attendance_interest.c.interest_id == Interest.id)
        .join(Attendance, Attendance.id == attendance_interest.c.attendance_id)
        .where(
            Attendance.event_id == event_id,
            Attendance.interests_visibility == "everyone",
        )
        .group_by(Interest.key, Interest.name)
        .subquery()
    )
    by_key = {"partition_by": spellings.c.key}
    ranked = sa.select(
        spellings.c.key,
        spellings.c.name,
        sa.func.sum(spellings.c.uses).over(**by_key).label("total"),
        sa.func.row_number()
        .over(**by_key, order_by=(spellings.c.uses.desc(), spellings.c.name))
        .label("rank"),
    ).subquery()
    return list(
        db.session.scalars(
            sa.select(ranked.c.name)
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.total.desc(), ranked.c.key)
            .limit(limit)
        )
    )


def csv_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would otherwise run as a formula."""
    return "'" + value if value.startswith(CSV_FORMULA_PREFIXES) else value


def attendees_csv(event: Event) -> str:
    """Return the organiser's attendee list as CSV text, safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    counts = connection_counts(event.id)
    for card in attendee_cards(event):
        writer.writerow(
            [
                csv_safe(card.name),
                local_time(event, card.attendance.checked_in_at).isoformat(timespec="seconds"),
                csv_safe(", ".join(card.interests)),
                counts.get(card.attendance.id, 0),
            ]
        )
    return out.getvalue()


def attendance_of_event(event: Event, attendance_id: int) -> Attendance | None:
    """Return one attendance at an event, or None for any other id."""
    return db.session.scalars(
        sa.select(Attendance).where(Attendance.id == attendance_id, Attendance.event_id == event.id)
    ).one_or_none()
