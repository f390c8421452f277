"""Interests match as people mean them: one key for every spelling of one interest."""

from __future__ import annotations

import pytest

from domain.attendees import list_attendees, popular_interests
from domain.badges import live_badge
from domain.db import db, writing
from domain.interest_keys import interest_key
from domain.models import Attendance
from domain.profile import ProfileError, normalise_interests, split_interests, update_profile
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
    ("Board-games", "board games"),
    ("board_games", "Board Games"),
    ("C#", "c sharp"),
    ("C++", "c++"),
    ("chess\u200b", "chess"),
    ("\ufeffchess", "Chess"),
    ("ch\u200dess", "chess"),
    ("#running", "running"),
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
    ("C++", "C#"),
    ("C++", "C"),
    ("C#", "C"),
    ("F#", "F"),
    ("C++", "C+"),
    ("A+", "A"),
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


def test_c_plus_plus_c_sharp_and_c_are_three_interests() -> None:
    assert normalise_interests(split_interests("C++, C#, C, F#, F")) == [
        "C++",
        "C#",
        "C",
        "F#",
        "F",
    ]
    assert normalise_interests(split_interests("Board-games, board games")) == ["Board-games"]


@pytest.mark.parametrize(
    "typed",
    [
        "\u200b",
        "\u200d\u200d",
        "\ufeff",
        "\u202e\u202c",
        "\u2066\u2069",
        "\u0301\u0301\u0301",
        "\u200b \u0301",
        "\ufe0f\u034f\u20dd",
    ],
)
def test_an_interest_with_nothing_visible_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(ProfileError) as refused:
        normalise_interests(["chess", typed])
    assert refused.value.code == "interest_invisible"
    assert "nothing you can see" in refused.value.message


def test_invisible_characters_are_taken_out_of_an_interest() -> None:
    assert normalise_interests(["\u202eche\u200bss\u202c", "\ufeffsourdough"]) == [
        "chess",
        "sourdough",
    ]


def test_a_stack_of_accents_is_refused() -> None:
    assert normalise_interests(["Phở", "Crème brûlée"]) == ["Phở", "Crème brûlée"]
    with pytest.raises(ProfileError) as refused:
        normalise_interests(["cha" + "\u0301\u0300\u0302\u0303\u0304" * 4 + "t"])
    assert refused.value.code == "interest_marks"
    # Enclosing marks pile up though they have no combining class; vowel signs and
    # medials that spell a word (Burmese "ကြွေး") don't.
    with pytest.raises(ProfileError) as refused:
        normalise_interests(["chat" + "\u0489" * 4])
    assert refused.value.code == "interest_marks"
    debt = "\u1000\u103c\u103d\u1031\u1038"
    assert normalise_interests([debt]) == [debt]


def test_a_length_error_quotes_what_was_typed() -> None:
    typed = "\ufdfa\ufdfa\ufdfa"  # three characters, 54 once NFKC spells them out
    with pytest.raises(ProfileError) as too_long:
        normalise_interests([typed])
    assert too_long.value.code == "interest_too_long"
    assert f"\u201c{typed}\u201d" in too_long.value.message


def test_suggestions_and_shared_highlights_match_on_the_key(make_event, make_attendee) -> None:
    event = make_event()
    ana = make_attendee(event, "Ana", interests=["Marathons", "Café"]).attendance
    ben = make_attendee(event, "Ben", interests=["marathon", "cafe", "chess"]).attendance
    make_attendee(event, "Cleo", interests=["runner"])

    found = suggestions(ana)
    assert [(s.name, s.shared) for s in found] == [("Ben", ["cafe", "marathon"])]
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


def test_the_popular_list_offers_the_spelling_most_people_typed(make_event, make_attendee):
    event = make_event()
    for _ in range(4):
        make_attendee(event, interests=["Surfing"])
    make_attendee(event, interests=["Surf"])
    make_attendee(event, interests=["jazz"])
    make_attendee(event, interests=["jazz"])
    make_attendee(event, interests=["Jazz", "chess"])
    assert popular_interests(event) == ["Surfing", "jazz", "chess"]


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


def test_organiser_search_finds_names_in_any_case_and_without_accents(
    make_event, make_attendee
) -> None:
    event = make_event()
    for name in ("Élodie Dubois", "ÖZGE ŞAHİN", "Seán O'Brien", "Straße Weiß", "Ана Петрова"):
        make_attendee(event, name)
    make_attendee(event, "Eli 100%_sure")

    def found(term: str) -> list[str]:
        return sorted(a.person.name for a in list_attendees(event, term))

    # SQLite's lower() folds ASCII only: these would miss there without the folded key.
    assert found("élodie") == ["Élodie Dubois"]
    assert found("elodie") == ["Élodie Dubois"]
    assert found("ÉLODIE") == ["Élodie Dubois"]
    assert found("özge") == ["ÖZGE ŞAHİN"]
    assert found("sahin") == ["ÖZGE ŞAHİN"]
    assert found("sean o'brien") == ["Seán O'Brien"]
    assert found("strasse") == ["Straße Weiß"]
    assert found("АНА") == ["Ана Петрова"]
    assert found("100%_") == ["Eli 100%_sure"]
    assert found("%") == ["Eli 100%_sure"]  # a wildcard typed is a character searched
    assert found("zz") == []


def test_a_renamed_person_is_found_by_the_new_name(make_event, make_attendee) -> None:
    event = make_event()
    ana = make_attendee(event, "Ana")
    with writing():
        update_profile(
            db.session.get_one(Attendance, ana.attendance.id),
            name="Zoë Ångström",
            about="",
            talk_about="",
            interests=[],
            links=[],
            visibility={},
        )
        db.session.commit()
    assert [a.person.name for a in list_attendees(event, "angstrom")] == ["Zoë Ångström"]
    assert list_attendees(event, "ana") == []


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
