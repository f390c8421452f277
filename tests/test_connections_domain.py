"""Domain rules for connecting: pairs, requests, acceptance, blocking, suggestions, vCards."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain.badges import PersonShown, live_badge
from domain.connections import (
    ConnectError,
    accept_connection,
    block,
    connection_counts,
    connections_of,
    decline_connection,
    is_blocked,
    ordered,
    remove_connection,
    request_connection,
    set_note,
)
from domain.db import db, writing
from domain.limits import CONNECTION_REQUESTS_PER_HOUR
from domain.models import Block, Connection
from domain.suggestions import suggestions
from domain.vcard import Card, escape, fold, vcard
from domain.visibility import Relation, can_see, relation


@pytest.fixture
def people(make_event, make_attendee):
    """Ana, Ben and Cleo at one event; Dan at another."""
    event = make_event()
    ana = make_attendee(event, "Ana", interests=["marathons", "sourdough", "chess"]).attendance
    ben = make_attendee(event, "Ben", interests=["marathons", "sourdough"]).attendance
    cleo = make_attendee(event, "Cleo", interests=["chess"]).attendance
    dan = make_attendee(make_event(name="Other"), "Dan", interests=["marathons"]).attendance
    return ana, ben, cleo, dan


def rows() -> list[Connection]:
    return db.session.scalars(sa.select(Connection)).all()


def commit(function, *args):
    with writing():
        result = function(*args)
        db.session.commit()
    return result


def test_pair_is_stored_low_then_high(people):
    ana, ben, *_ = people
    assert ordered(ana, ben) == ordered(ben, ana) == (min(ana.id, ben.id), max(ana.id, ben.id))
    commit(request_connection, ben, ana)
    [row] = rows()
    assert (row.low_attendance_id, row.high_attendance_id) == ordered(ana, ben)
    assert row.requested_by_id == ben.id and row.status == "requested"


def test_requesting_twice_is_one_row(people):
    ana, ben, *_ = people
    commit(request_connection, ana, ben)
    commit(request_connection, ana, ben)
    assert len(rows()) == 1 and rows()[0].status == "requested"


def test_mutual_requests_become_accepted(people):
    ana, ben, *_ = people
    commit(request_connection, ana, ben)
    connection = commit(request_connection, ben, ana)
    assert connection.status == "accepted" and connection.accepted_at is not None
    assert len(rows()) == 1


def test_accept_decline_remove_transitions(people):
    ana, ben, cleo, _ = people
    connection = commit(request_connection, ben, ana)
    with pytest.raises(ConnectError) as own:
        commit(accept_connection, ben, connection)
    assert own.value.code == "own_request"
    db.session.rollback()
    with pytest.raises(ConnectError) as stranger:
        commit(accept_connection, cleo, connection)
    assert stranger.value.code == "not_yours"
    db.session.rollback()
    commit(accept_connection, ana, connection)
    assert connection.status == "accepted"
    commit(accept_connection, ana, connection)  # accepting again changes nothing
    with pytest.raises(ConnectError) as answered:
        commit(decline_connection, ana, connection)
    assert answered.value.code == "not_pending"
    db.session.rollback()
    commit(remove_connection, ben, connection)
    assert rows() == []
    again = commit(request_connection, ben, ana)  # after removal either may ask again
    assert again.status == "requested"


def test_declined_request_stays_declined_for_the_requester(people):
    ana, ben, *_ = people
    connection = commit(request_connection, ben, ana)
    commit(decline_connection, ana, connection)
    commit(request_connection, ben, ana)
    assert rows()[0].status == "declined"
    assert connections_of(ben).outgoing == [connection]  # Ben is not told
    assert connections_of(ana).incoming == []
    commit(request_connection, ana, ben)  # Ana changed her mind
    assert rows()[0].status == "accepted"


def test_self_connect_is_refused(people):
    ana, *_ = people
    with pytest.raises(ConnectError) as raised:
        request_connection(ana, ana)
    assert raised.value.code == "self"


def test_other_event_is_refused(people):
    ana, _, _, dan = people
    with pytest.raises(ConnectError) as raised:
        request_connection(ana, dan)
    assert raised.value.code == "other_event"


def test_block_removes_connections_and_refuses_new_requests(people):
    ana, ben, *_ = people
    connection = commit(request_connection, ana, ben)
    commit(accept_connection, ben, connection)
    commit(block, ana, ben)
    assert rows() == []
    assert is_blocked(ana, ben) and is_blocked(ben, ana)
    for requester, target in ((ben, ana), (ana, ben)):
        with pytest.raises(ConnectError) as raised:
            request_connection(requester, target)
        assert raised.value.code == "blocked"
    commit(block, ana, ben)  # blocking twice is one row
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Block)) == 1


def test_notes_are_per_side(people):
    ana, ben, *_ = people
    connection = commit(request_connection, ben, ana, "Hanoi night market")
    assert connection.note_of(ben) == "Hanoi night market"
    assert connection.note_of(ana) == ""
    commit(set_note, ana, connection, "runs the Berlin marathon")
    assert connection.note_of(ana) == "runs the Berlin marathon"
    assert connection.note_of(ben) == "Hanoi night market"
    with pytest.raises(ConnectError):
        set_note(ana, connection, "x" * 281)
    with pytest.raises(ConnectError):
        set_note(ana, connection, "bell\x07")


def test_hourly_cap(make_event, make_attendee):
    event = make_event()
    me = make_attendee(event, "Me").attendance
    others = [make_attendee(event).attendance for _ in range(CONNECTION_REQUESTS_PER_HOUR + 1)]
    for other in others[:CONNECTION_REQUESTS_PER_HOUR]:
        commit(request_connection, me, other)
    with pytest.raises(ConnectError) as raised:
        request_connection(me, others[-1])
    assert raised.value.code == "rate_limited"
    db.session.rollback()
    # Answering someone else's request is not a new request, so it is still allowed.
    commit(request_connection, others[-1], me)
    assert commit(request_connection, me, others[-1]).status == "accepted"


def test_suggestions_rank_by_shared_interests(people, make_attendee):
    ana, ben, cleo, _ = people
    found = suggestions(ana)
    assert [(s.name, s.shared) for s in found] == [
        ("Ben", ["marathons", "sourdough"]),
        ("Cleo", ["chess"]),
    ]


def test_suggestions_exclude_connected_blocked_hidden_and_other_events(people, make_attendee):
    ana, ben, cleo, dan = people
    event = ana.event
    hidden = make_attendee(event, "Hidden", interests=["chess"], share_profile=False).attendance
    nothing_shared = make_attendee(event, "Eve", interests=["knitting"]).attendance
    names = {s.name for s in suggestions(ana)}
    assert names == {"Ben", "Cleo"}
    assert hidden.id and nothing_shared.id and dan.id
    commit(request_connection, ana, ben)  # asked: no longer suggested
    commit(block, cleo, ana)  # blocked: neither sees the other
    assert suggestions(ana) == []
    assert "Ana" not in {s.name for s in suggestions(cleo)}


def test_suggestions_query_count_does_not_grow(make_event, make_attendee, app):
    event = make_event()
    me = make_attendee(event, "Me", interests=["a", "b"]).attendance

    def count_queries(n: int) -> int:
        for _ in range(n):
            make_attendee(event, interests=["a", "b"])
        statements = []
        engine = db.engine

        def record(*_args):
            statements.append(1)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            db.session.expire_all()
            result = suggestions(me, limit=50)
            # What the badge page reads of each suggestion.
            [(s.name, s.about, s.shared) for s in result]
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        return len(statements)

    assert count_queries(3) == count_queries(30)


def test_a_suggestion_tells_its_about_line_only_when_it_is_shown_to_everyone(
    make_event, make_attendee
):
    event = make_event()
    me = make_attendee(event, "Me", interests=["chess", "Marathons"]).attendance
    both = make_attendee(
        event, "Both", interests=["marathon", "Chess", "knitting"], about="Runs, plays blitz"
    )
    shy = make_attendee(event, "Shy", interests=["chess"], about="Only for my connections")
    plain = make_attendee(event, "Plain", interests=["chess"])
    with writing():
        db.session.get_one(type(shy.attendance), shy.attendance.id).about_visibility = "connections"
        db.session.commit()
    found = suggestions(me)
    # Most shared first; what we share named as they typed it, never what we don't share.
    assert [(s.name, s.about, s.shared) for s in found] == [
        ("Both", "Runs, plays blitz", ["Chess", "marathon"]),
        ("Plain", "", ["chess"]),
        ("Shy", "", ["chess"]),
    ]
    assert {s.attendance_id for s in found} == {
        both.attendance.id,
        shy.attendance.id,
        plain.attendance.id,
    }


def test_relation_and_visibility(people):
    ana, ben, cleo, dan = people
    assert relation(ana, ana) is Relation.SELF
    assert relation(ana, ben) is Relation.ATTENDEE
    assert relation(ana, dan) is Relation.OUTSIDER
    assert relation(ana, None) is Relation.OUTSIDER
    connection = commit(request_connection, ana, ben)
    assert relation(ana, ben) is Relation.ATTENDEE  # not until accepted
    commit(accept_connection, ben, connection)
    assert relation(ana, ben) is Relation.CONNECTION
    assert can_see(ana, "email", Relation.CONNECTION)
    assert not can_see(ana, "email", Relation.ATTENDEE)
    assert can_see(ana, "interests", Relation.ATTENDEE)
    assert not can_see(ana, "interests", Relation.OUTSIDER)


def test_live_badge_lists_plain_values_each_person_lets_me_see(people):
    ana, ben, cleo, _ = people
    with writing():
        ben.person.links = ["https://ben.example.org"]
        ben.email_visibility = "nobody"
        cleo.person.about = "Chess coach"
        db.session.commit()
    connection = commit(request_connection, ben, ana)
    commit(set_note, ana, connection, "Runs the sourdough club")

    asked = live_badge(ana)
    assert asked.incoming == [
        PersonShown("Ben", shared=["marathons", "sourdough"], connection_id=connection.id)
    ]
    assert asked.accepted == []
    assert live_badge(ben).outgoing == [PersonShown("Ana", connection_id=connection.id)]

    commit(accept_connection, ana, connection)
    shown = live_badge(ana)
    assert shown.incoming == []
    assert shown.accepted == [
        PersonShown(
            "Ben",
            shared=["marathons", "sourdough"],
            email=None,  # Ben shows his address to nobody
            links=["https://ben.example.org"],
            note="Runs the sourdough club",
            connection_id=connection.id,
        )
    ]
    assert live_badge(ben).accepted[0].email == ana.person.email
    assert shown.suggestions == [
        PersonShown("Cleo", shared=["chess"], about="Chess coach", attendance_id=cleo.id)
    ]


def test_connection_counts(people):
    ana, ben, cleo, _ = people
    first = commit(request_connection, ana, ben)
    commit(accept_connection, ben, first)
    commit(request_connection, ana, cleo)  # pending: not counted
    assert connection_counts(ana.event_id) == {ana.id: 1, ben.id: 1}


def test_vcard_escapes_folds_and_uses_crlf():
    card = vcard(
        Card(
            name="Ana María López",
            email="ana@example.org",
            urls=["https://example.org/" + "x" * 100],
            note="Met at Brunch; chat, tea\nand more",
        )
    )
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert card.endswith("END:VCARD\r\n")
    assert "\n" not in card.replace("\r\n", "")
    assert "FN:Ana María López\r\n" in card
    assert "N:López;Ana María;;;\r\n" in card
    assert "NOTE:Met at Brunch\\; chat\\, tea\\nand more\r\n" in card
    assert all(len(line.encode()) <= 75 for line in card.split("\r\n"))
    unfolded = card.replace("\r\n ", "")
    assert "URL:https://example.org/" + "x" * 100 + "\r\n" in unfolded


def test_fold_never_splits_a_character():
    line = "NOTE:" + "é" * 80
    folded = fold(line)
    assert folded.replace("\r\n ", "") == line
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))


def test_escape():
    assert escape("a\\b;c,d\ne") == "a\\\\b\\;c\\,d\\ne"


def test_suggestions_come_from_the_latest_arrivals(make_event, make_attendee, monkeypatch):
    # At a conference the ranking looks at a fixed number of the latest arrivals who show
    # their interests, so its cost does not grow with the crowd.
    import domain.suggestions

    monkeypatch.setattr(domain.suggestions, "SUGGESTION_CANDIDATES", 3)
    event = make_event()
    early = make_attendee(event, "Early", interests=["chess"]).attendance
    me = make_attendee(event, "Me", interests=["chess"]).attendance
    assert [s.attendance_id for s in suggestions(me)] == [early.id]
    later = [make_attendee(event, interests=["knitting"]).attendance for _ in range(2)]
    assert suggestions(me) == [] and later
    # Asked about by name (a tap on a suggestion shown earlier), Early still counts.
    assert [s.attendance_id for s in suggestions(me, only=early.id)] == [early.id]
