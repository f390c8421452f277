"""Change versions: cheap answers to "has anything I show changed since I last looked?".

The live pages refresh every few seconds on every phone and every organiser's tab, so
each has a version the refresh sends back (as an ETag); an unchanged version is answered
with 304 after one indexed lookup, without rendering anything.

Two scopes, one function each to call from any domain function that changes what a scope
shows (in the caller's transaction, so a version moves exactly when its change is saved):

- a person's badge page at an event: `badge_changed(attendance_id, ...)` for a change to
  that person's own list (a request, an answer, a note, a block, a connection's profile),
  and `interests_changed(event_id, keys)` when someone showing those interests
  arrives or changes what they show: the suggestions of everyone sharing one of them may
  change, and the version of that half of their page (`badge_tag(...).to_meet`) includes
  these counts, so no one's row is touched and no one's own list is re-rendered;
- the organiser's attendee page of an event: `attendees_changed(event_id, attendance_id,
  ...)` for any change of the people listed (an arrival, a connection made or gone, a
  profile shown differently). The event's `attendees_version` moves on and each changed
  row remembers it, so a refresh asks only for the rows changed since the version it holds.

A new section of either page calls the same function from the domain change that alters
it; nothing else is needed for the refresh to pick it up.

Lock order. On PostgreSQL these updates lock rows until the commit, so every change takes
the rows it writes in one order, and two changes can wait for each other but never
deadlock: the interests' names, the events' interest counts (by event, then key), the
connections (by id), the events' own rows (by id), the people, and the attendances last,
by id. A check-in counts its interests, then moves its event on, then adds its attendance
(a new row, which no one else can hold: a returning person's own row is updated after it);
a change to what a person shows goes through `changing_person`; a connection made or gone
moves its event on before the badges. Each update of several attendances takes them in
the order of their ids (`in_order`), and a change that updates attendances in more than
one statement takes them all first (`attendances_locked`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from domain.db import db, rows_locked
from domain.models import (
    Attendance,
    Connection,
    Event,
    EventInterest,
    Interest,
    Visibility,
    attendance_interest,
)
from domain.tokens import hash_token


def badge_changed(*attendance_ids: int) -> None:
    """Move the badge page of these attendances on: what it shows has changed."""
    ids = sorted(set(attendance_ids))
    if ids:
        db.session.flush()  # as an ORM update would: rows added before it are in the table
        db.session.execute(_badge_moves_on(), {"ids": ids})


@functools.cache
def _badge_moves_on() -> sa.Update:
    # Built once, on the table: an update through the mapped class costs seven times as
    # much, and each check-in and connection request makes two of these.
    table = Attendance.__table__
    return (
        sa.update(table)
        .where(in_order(sa.bindparam("ids", expanding=True)))
        .values(badge_version=table.c.badge_version + 1)
    )


def in_order(
    ids: sa.BindParameter[Any] | sa.Select[Any] | sa.CompoundSelect,
) -> sa.ColumnElement[bool]:
    """Return the condition "an attendance among these ids" for an update, which then locks
    them in the order of their ids (on PostgreSQL; SQLite's writers take turns anyway)."""
    table = Attendance.__table__
    return table.c.id.in_(
        sa.select(table.c.id)
        .where(table.c.id.in_(ids))
        .order_by(table.c.id)
        .with_for_update(key_share=True)
    )


def attendances_locked(ids: Iterable[int] | sa.Select[Any] | sa.CompoundSelect) -> None:
    """Lock these attendances, in the order of their ids, for a change that then updates
    them in more than one statement (FOR NO KEY UPDATE, what an update takes)."""
    if not isinstance(ids, sa.Select | sa.CompoundSelect):
        ids = sorted(set(ids))
        if not ids:
            return
    rows_locked(Attendance.id, Attendance.id.in_(ids), updating=True)


def events_locked(event_id: int, *community_ids: int | None, removal: bool = False) -> None:
    """Lock an event and the events of these communities, in the order of their ids, before
    a change writes any of them: FOR NO KEY UPDATE, what an update takes, or FOR UPDATE for
    an event about to be deleted (its community's others are then locked the same way)."""
    communities = sorted({c for c in community_ids if c is not None})
    where = Event.id == event_id
    if communities:
        where = sa.or_(where, Event.community_id.in_(communities))
    rows_locked(Event.id, where, updating=not removal)


def connected_with(attendance_ids: Iterable[int]) -> sa.CompoundSelect:
    """Return the ids of the attendances connected (or asked) with these."""
    ids = sorted(set(attendance_ids))
    return sa.union(
        sa.select(Connection.high_attendance_id).where(Connection.low_attendance_id.in_(ids)),
        sa.select(Connection.low_attendance_id).where(Connection.high_attendance_id.in_(ids)),
    )


def connections_changed(attendance_ids: Iterable[int]) -> None:
    """Move on the badge pages of everyone connected (or asked) with these attendances."""
    ids = sorted(set(attendance_ids))
    if ids:
        _moved_on(connected_with(ids))


def badges_moved_on(*sets: sa.Select[Any] | sa.CompoundSelect | Iterable[int]) -> None:
    """Move on the badge pages of several sets of attendances (selects of ids, or ids) in
    one statement, so in the order of their ids."""
    selects: list[sa.Select[Any]] = []
    for ids in sets:
        if isinstance(ids, sa.CompoundSelect):
            selects.extend(ids.selects)  # one flat union: SQLite nests none
        elif isinstance(ids, sa.Select):
            selects.append(ids)
        elif listed := sorted(set(ids)):
            selects.append(sa.select(Attendance.id).where(Attendance.id.in_(listed)))
    if selects:
        db.session.flush()
        _moved_on(sa.union(*selects))


def _moved_on(ids: sa.Select[Any] | sa.CompoundSelect) -> None:
    db.session.execute(
        sa.update(Attendance)
        .where(in_order(ids))
        .values(badge_version=Attendance.badge_version + 1)
        .execution_options(synchronize_session=False)
    )


def interests_changed(event_id: int, keys: Iterable[str]) -> None:
    """Count that someone showing interests (by key) arrived at an event, or changed them."""
    distinct = sorted(set(keys))
    if distinct:
        db.session.execute(
            _count_arrival(), [{"event_id": event_id, "key": key} for key in distinct]
        )


@functools.cache
def _count_arrival() -> sa.TextClause:
    # As text: both engines speak this upsert alike, and it is compiled once.
    return sa.text(
        'INSERT INTO event_interest (event_id, "key", arrivals) VALUES (:event_id, :key, 1) '
        'ON CONFLICT (event_id, "key") DO UPDATE SET arrivals = event_interest.arrivals + 1'
    )


@contextlib.contextmanager
def changing_person(
    person_id: int, counted: Mapping[int, Iterable[str]] | None = None, *, leaving: bool = False
) -> Iterator[None]:
    """Around a change to what a person shows (or their leaving), move on every page that
    shows them, taking its rows in the module's lock order.

    Before the block: the interest counts of the events where they show interests, with
    `counted` (interest keys by event: what the change starts or stops showing), then (when
    `leaving`) their connections, then those events' rows. The block changes the person's
    row. After it: the badges of the people connected with them or meeting them again, and
    their lines on the attendee pages.
    """
    attendances = db.session.execute(
        sa.select(Attendance.id, Attendance.event_id, Attendance.interests_visibility)
        .where(Attendance.person_id == person_id)
        .order_by(Attendance.event_id, Attendance.id)
    ).all()
    own = [row.id for row in attendances]
    keys: dict[int, set[str]] = {
        event_id: set(shown) for event_id, shown in (counted or {}).items()
    }
    for row in attendances:
        if row.interests_visibility == Visibility.EVERYONE.value:
            keys.setdefault(row.event_id, set()).update(_keys_of(row.id))
    for event_id in sorted(keys):
        _count_unless_gone(event_id, keys[event_id])
    if leaving:
        rows_locked(
            Connection.id,
            sa.or_(Connection.low_attendance_id.in_(own), Connection.high_attendance_id.in_(own)),
        )
    lines: dict[int, list[int]] = {}
    for row in attendances:
        lines.setdefault(row.event_id, []).append(row.id)
    marked = attendee_pages_move_on(lines)
    yield
    db.session.flush()
    if own:
        # One flat union (SQLite nests none): the connected, the met before, then their own.
        others = [*connected_with(own).selects, met_before_of(person_id)]
        attendances_locked(
            sa.union(*others, sa.select(Attendance.id).where(Attendance.id.in_(own)))
        )
        _moved_on(sa.union(*others))
    marked()


def person_shown_changed(person_id: int) -> None:
    """Move on every page that shows a person about to leave for good, their connections
    locked for the leaving."""
    with changing_person(person_id, leaving=True):
        pass


def _count_unless_gone(event_id: int, keys: Iterable[str]) -> None:
    """Count interests at an event, unless it was deleted while this change waited for its
    counts (a person's other event, deleted by its organiser meanwhile): nothing to count."""
    try:
        with db.session.begin_nested():
            interests_changed(event_id, keys)
    except sa.exc.IntegrityError:
        if db.session.get(Event, event_id, populate_existing=True) is not None:
            raise


def met_before_changed(*person_ids: int) -> None:
    """Move on the badge pages that show these people as met before: those, at every event
    where one of them is too, of the people they connected with at any event."""
    if person_ids:
        _moved_on(met_before_of(*person_ids))


def met_before_of(*person_ids: int) -> sa.Select[tuple[int]]:
    """Return the ids of the attendances whose badge pages show these people as met before."""
    people = sorted(set(person_ids))
    theirs = sa.select(Attendance.id).where(Attendance.person_id.in_(people))
    met = sa.select(Attendance.person_id).where(
        Attendance.id.in_(
            sa.union(
                sa.select(Connection.high_attendance_id).where(
                    Connection.low_attendance_id.in_(theirs)
                ),
                sa.select(Connection.low_attendance_id).where(
                    Connection.high_attendance_id.in_(theirs)
                ),
            )
        )
    )
    where = sa.select(Attendance.event_id).where(Attendance.person_id.in_(people))
    return sa.select(Attendance.id).where(
        Attendance.person_id.in_(met), Attendance.event_id.in_(where)
    )


def events_changed(event_ids: Iterable[int]) -> None:
    """Move on every page of these events: who is new or returning there is counted afresh."""
    everyone = {
        event_id: list(
            db.session.scalars(sa.select(Attendance.id).where(Attendance.event_id == event_id))
        )
        for event_id in set(event_ids)
    }
    marked = attendee_pages_move_on(everyone)
    # Every badge in one statement, in the order of ids; the lines are among them.
    badge_changed(*(attendance_id for ids in everyone.values() for attendance_id in ids))
    marked()


def communities_changed(*community_ids: int | None, also: Iterable[int] = ()) -> None:
    """Move on every page of the events in these communities (and of the events `also`):
    their marks are counted afresh."""
    ids = sorted({community_id for community_id in community_ids if community_id is not None})
    events = set(also)
    if ids:
        events.update(db.session.scalars(sa.select(Event.id).where(Event.community_id.in_(ids))))
    if events:
        events_changed(events)


def _keys_of(attendance_id: int) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Interest.key)
            .join(attendance_interest, attendance_interest.c.interest_id == Interest.id)
            .where(attendance_interest.c.attendance_id == attendance_id)
        )
    )


def attendees_changed(event_id: int, *attendance_ids: int) -> None:
    """Move the organiser's attendee page of an event on, marking the rows that changed."""
    attendee_pages_move_on({event_id: attendance_ids})()


def attendee_pages_move_on(changed: Mapping[int, Iterable[int]]) -> Callable[[], None]:
    """Move on the attendee pages of these events, in the order of their ids; return what
    marks the lines (ids by event) that changed, to be called after the rows of any other
    kind the change writes."""
    marks = []
    for event_id in sorted(changed):
        version = _event_moved_on(event_id)
        if version is not None:  # else the event was deleted while this change waited
            marks.append((version, sorted(set(changed[event_id]))))
    return functools.partial(_mark_lines, marks)


def _mark_lines(marks: list[tuple[int, list[int]]]) -> None:
    """Mark each event's changed lines with the version its page moved on to."""
    for version, ids in marks:
        if ids:
            db.session.execute(_lines_marked(), {"ids": ids, "version": version})


def attendees_move_on(event_id: int) -> int:
    """Move the organiser's attendee page of an event on; return its new version.

    A row about to be added carries it as its `listed_version`, so it needs no marking of
    its own. Call it after counting the arrival's interests (`interests_changed`), as the
    module's lock order says. Raise NoResultFound if the event is gone.
    """
    version = _event_moved_on(event_id)
    if version is None:
        raise sa.exc.NoResultFound(f"event {event_id} is gone")
    return version


def _event_moved_on(event_id: int) -> int | None:
    """Move an event's attendee page on; return its new version, or None if it is gone."""
    db.session.flush()  # as an ORM update would: rows added before it are in the table
    version = db.session.execute(_attendees_move_on(), {"event": event_id}).scalar()
    return None if version is None else int(version)


@functools.cache
def _attendees_move_on() -> sa.Update:
    # Built once, on the tables, as _badge_moves_on: every check-in runs these two.
    table = Event.__table__
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("event", type_=sa.Integer()))
        .values(attendees_version=table.c.attendees_version + 1)
        .returning(table.c.attendees_version)
    )


@functools.cache
def _lines_marked() -> sa.Update:
    table = Attendance.__table__
    return (
        sa.update(table)
        .where(in_order(sa.bindparam("ids", expanding=True)))
        .values(listed_version=sa.bindparam("version", type_=sa.Integer()))
    )


@dataclass(frozen=True)
class BadgeTags:
    """The versions of a badge page's two live halves, as opaque tags.

    `mine` is my own list (requests, connections, people met before): it moves only with
    `badge_changed`. `to_meet` is the people to meet: it moves with that and with every
    arrival sharing one of my interests (`interests_changed`).
    """

    mine: str
    to_meet: str

    @classmethod
    def of(cls, badge_version: int, arrivals: int) -> BadgeTags:
        return cls(f"{badge_version}", f"{badge_version}.{arrivals}")

    def part(self, *, to_meet: bool) -> str:
        """Return the tag of one half: the people to meet, or my own list."""
        return self.to_meet if to_meet else self.mine


def badge_tag(attendance_id: int) -> BadgeTags:
    """Return the versions of an attendance's badge page."""
    row = db.session.execute(_tag_by_id_statement(), {"id": attendance_id}).one()
    return BadgeTags.of(row[0], row[1])


@functools.cache
def _tag_by_id_statement() -> sa.Select[tuple[int, int]]:
    # Built once: every badge page runs it.
    return sa.select(Attendance.badge_version, _arrivals_sharing()).where(
        Attendance.id == sa.bindparam("id", type_=sa.Integer())
    )


@dataclass(frozen=True)
class BadgeVersion:
    """Whose badge a token opens, at which event, and the versions of its page."""

    attendance_id: int
    event_id: int
    tags: BadgeTags


def badge_version(token: str) -> BadgeVersion | None:
    """Return the versions of the badge page a token opens, in one indexed lookup."""
    return badge_version_on(db.session, token)


def badge_version_on(connection: sa.Connection | sa.orm.Session, token: str) -> BadgeVersion | None:
    """Return what badge_version does, asked on this connection (outside any request)."""
    row = connection.execute(
        _badge_tag_statement(), {"token_hash": hash_token(token)}
    ).one_or_none()
    if row is None:
        return None
    return BadgeVersion(row.id, row.event_id, BadgeTags.of(row.badge_version, row.arrivals))


def attendees_version(event_id: int) -> int:
    """Return the version of an event's attendee page."""
    return db.session.scalar(sa.select(Event.attendees_version).where(Event.id == event_id)) or 0


def _arrivals_sharing() -> sa.ScalarSelect[int]:
    """The arrivals counted for the keys of an attendance's own interests at its event."""
    return (
        sa.select(sa.func.coalesce(sa.func.sum(EventInterest.arrivals), 0))
        .select_from(attendance_interest)
        .join(Interest, Interest.id == attendance_interest.c.interest_id)
        .join(
            EventInterest,
            sa.and_(
                EventInterest.key == Interest.key,
                EventInterest.event_id == Attendance.event_id,
            ),
        )
        .where(attendance_interest.c.attendance_id == Attendance.id)
        .correlate(Attendance)
        .scalar_subquery()
    )


@functools.cache
def _badge_tag_statement() -> sa.Select[tuple[int, int, int, int]]:
    # Built once: the refresh of every phone runs it.
    return sa.select(
        Attendance.id,
        Attendance.event_id,
        Attendance.badge_version,
        _arrivals_sharing().label("arrivals"),
    ).where(Attendance.badge_token_hash == sa.bindparam("token_hash"))
