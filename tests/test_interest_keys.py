"""Interests match as people mean them: one key for every spelling of one interest."""

from __future__ import annotations

import pytest

from domain.attendees import list_attendees, popular_interests
from domain.badges import live_badge
from domain.interest_keys import interest_key
from domain.suggestions import suggestions
from domain.visibility import Relation, shared_interest_names, shared_interests

MUST_MATCH = [
    ("marathon", "Marathons"),
    ("café", "cafe"),
    ("Café Culture", "cafe culture"),
    ("board game", "board games"),
    ("Board Games", "board-game"),
    ("running", "run"),
    ("Running", "runs"),
    ("Travel in Asia", "travel in  asia"),
    ("Straße", "STRASSE"),
    ("Ｃｈｅｓｓ", "chess"),
    ("sci-fi", "Sci Fi"),
    ("Crème brûlée", "creme brulee"),
    ("studies", "study"),
    ("🏃", "🏃"),
]

MUST_NOT_MATCH = [
    ("running", "runner"),
    ("art", "artist"),
    ("Java", "JavaScript"),
    ("go", "golf"),
    ("travel in Asia", "travel in Africa"),
    ("board games", "board"),
    ("cafe", "coffee"),
    ("marathon", "half marathon"),
    ("🏃", "🏊"),
    ("C", "C++ and C"),
]


@pytest.mark.parametrize(("typed", "other"), MUST_MATCH)
def test_spellings_of_one_interest_share_a_key(typed: str, other: str) -> None:
    assert interest_key(typed) == interest_key(other)


@pytest.mark.parametrize(("typed", "other"), MUST_NOT_MATCH)
def test_different_interests_keep_different_keys(typed: str, other: str) -> None:
    assert interest_key(typed) != interest_key(other)


def test_a_key_is_never_empty_and_fits_the_column() -> None:
    assert interest_key("!!!") == "!!!"
    assert len(interest_key("marathons " * 10)) <= 40


def test_suggestions_and_shared_highlights_match_on_the_key(make_event, make_attendee) -> None:
    event = make_event()
    ana = make_attendee(event, "Ana", interests=["Marathons", "Café"]).attendance
    ben = make_attendee(event, "Ben", interests=["marathon", "cafe", "chess"]).attendance
    make_attendee(event, "Cleo", interests=["runner"])

    found = suggestions(ana)
    assert [(s.attendance.person.name, s.shared) for s in found] == [("Ben", ["cafe", "marathon"])]
    # Each side sees the other's interests as that person typed them.
    assert shared_interests(ana, ben, Relation.ATTENDEE) == ["cafe", "marathon"]
    assert shared_interests(ben, ana, Relation.ATTENDEE) == ["Café", "Marathons"]
    assert shared_interest_names(ana, [ben]) == {ben.id: ["cafe", "marathon"]}
    assert [p.shared for p in live_badge(ben).suggestions] == [["Café", "Marathons"]]


def test_the_popular_list_counts_spellings_together(make_event, make_attendee) -> None:
    event = make_event()
    make_attendee(event, interests=["Board Games"])
    make_attendee(event, interests=["board game"])
    make_attendee(event, interests=["board games"])
    make_attendee(event, interests=["chess"])
    make_attendee(event, interests=["Chess", "sourdough"])
    popular = popular_interests(event)
    assert len(popular) == 3
    assert [interest_key(tag) for tag in popular] == ["board game", "chess", "sourdough"]


def test_organiser_search_matches_on_the_key(make_event, make_attendee) -> None:
    event = make_event()
    make_attendee(event, "Ana", interests=["Marathons"])
    make_attendee(event, "Ben", interests=["café culture"])
    make_attendee(event, "Cleo", interests=["chess"])

    def found(term: str) -> list[str]:
        return sorted(a.person.name for a in list_attendees(event, term))

    assert found("marathon") == ["Ana"]
    assert found("MARATHONS") == ["Ana"]
    assert found("marat") == ["Ana"]
    assert found("Cafe") == ["Ben"]
    assert found("running") == []


def test_threads_stemming_at_once_get_the_keys_one_thread_gets() -> None:
    import threading

    from domain.interest_keys import _fold, _stemmer

    words = [
        f"{stem}{ending}" for stem in ("marathon", "travel", "bake") for ending in ("s", "ing")
    ]
    expected = [_stemmer().stemWords(_fold(word).split()) for word in words]
    barrier = threading.Barrier(8)
    wrong: list[str] = []

    def stem_many() -> None:
        barrier.wait()
        for _ in range(500):
            for word, key in zip(words, expected, strict=True):
                # Past the cache, as a threaded server's first sight of each tag is.
                if _stemmer().stemWords(_fold(word).split()) != key:
                    wrong.append(word)

    threads = [threading.Thread(target=stem_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
