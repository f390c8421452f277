"""Rules for what a person may type into their profile, shared by every form that edits it."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

import sqlalchemy as sa

from domain import caching
from domain.db import db, insert_many_ignoring_conflict, on_commit, utcnow
from domain.errors import DomainError
from domain.interest_keys import interest_key, without_format_characters
from domain.limits import INTEREST_MARKS_MAX, INTEREST_MAX, LINK_MAX, MAX_INTERESTS, MAX_LINKS
from domain.models import (
    PROFILE_FIELDS,
    VISIBILITY_VALUES,
    Attendance,
    Interest,
    Person,
    Visibility,
)
from domain.versions import (
    badge_changed,
    changing_person,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r"\s+")
# Direction embeddings, overrides and isolates: typed into a name they can make it read
# otherwise on a badge or in a list, and a browser lays out every script without them.
# Direction marks (U+200E, U+200F) and joiners, which some scripts need, stay.
_DIRECTION_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# Letters that draw nothing: the Hangul fillers and the blank Braille pattern.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# A scheme such as "javascript:" or "mailto:"; a dot before the colon means a host name.
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+-]*):(?!\d)")


LINK_INVALID_MESSAGE = "Links must be web addresses starting with https://."


class ProfileError(DomainError):
    """A profile value breaks a rule; `code` is stable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def has_control_characters(value: str, *, allow_newlines: bool = False) -> bool:
    """Tell whether text holds control characters (newlines too, unless allowed)."""
    pattern = _CONTROL_EXCEPT_NEWLINES if allow_newlines else _CONTROL
    return bool(pattern.search(value))


def without_direction_controls(text: str) -> str:
    """Return text without bidirectional embedding, override and isolate characters."""
    return _DIRECTION_CONTROLS.sub("", text)


def shows_nothing(text: str) -> bool:
    """Tell whether text would show as nothing: spaces, invisible characters, lone accents."""
    # Any mark counts, not only those with a combining class: a variation selector, an
    # enclosing circle or a vowel sign on no letter draws nothing a reader can name.
    return all(
        char.isspace()
        or unicodedata.category(char).startswith("M")
        or unicodedata.category(char) in ("Cc", "Cf")
        or char in _BLANK_LETTERS
        for char in text
    )


def normalise_email(email: str) -> str:
    """Return the form of an address used to tell people apart: without direction controls
    (as forms take it), trimmed and lower-cased."""
    return without_direction_controls(email).strip().lower()


def mask_email(email: str) -> str:
    """Return an address as a screen may show it to its owner: "a…@example.org"."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}\u2026@{domain}"


def normalise_interest(tag: str) -> str:
    """Return an interest tag as it is shown: as typed, trimmed, inner spaces collapsed,
    without invisible format characters (zero-width spaces, bidi controls)."""
    visible = without_format_characters(unicodedata.normalize("NFKC", tag))
    return _SPACES.sub(" ", visible).strip()


def most_marks_on_a_letter(text: str) -> int:
    """Return the longest run of combining marks (accents) in a text."""
    # Marks of combining class 0 are a script's own vowel signs and stacked letters (four
    # in a row spell a Burmese word), except the enclosing ones, which only ever pile up.
    longest = run = 0
    for char in text:
        stacks = unicodedata.combining(char) or unicodedata.category(char) == "Me"
        run = run + 1 if stacks else 0
        longest = max(longest, run)
    return longest


def _check_interest(raw: str, tag: str) -> None:
    """Raise ProfileError for a tag (normalised from `raw`) that would show as nothing."""
    if shows_nothing(tag):
        raise ProfileError(
            "interest_invisible",
            "One of the interests has nothing you can see: type it in letters or symbols.",
        )
    if most_marks_on_a_letter(tag) > INTEREST_MARKS_MAX:
        raise ProfileError(
            "interest_marks",
            f"An interest can carry at most {INTEREST_MARKS_MAX} accents on one letter.",
        )
    if len(tag) > INTEREST_MAX:
        typed = without_format_characters(raw).strip()
        shown = typed if len(typed) <= 20 else typed[:20] + "\u2026"
        raise ProfileError(
            "interest_too_long",
            f"Keep each interest to {INTEREST_MAX} characters (\u201c{shown}\u201d is longer).",
        )


def normalise_interests(tags: list[str]) -> list[str]:
    """Return the tags given, one per meaning (the first spelling wins), trimmed, in order.

    Two tags with the same key ("Marathons", "marathon") are one interest. Raise
    ProfileError past a limit.
    """
    seen: dict[str, str] = {}
    for raw in tags:
        if has_control_characters(_SPACES.sub(" ", raw)):
            raise ProfileError("interest_control", "Interests can't contain control characters.")
        if not raw.strip():
            continue
        tag = normalise_interest(raw)
        _check_interest(raw, tag)
        seen.setdefault(interest_key(tag), tag)
    if len(seen) > MAX_INTERESTS:
        raise ProfileError(
            "too_many_interests", f"Pick at most {MAX_INTERESTS} interests ({len(seen)} given)."
        )
    return list(seen.values())


def split_interests(text: str) -> list[str]:
    """Split the comma-separated Interests field into raw tags."""
    return [part for part in re.split(r"[,;\n]", text) if part.strip()]


def normalise_links(lines: list[str]) -> list[str]:
    """Return the distinct http(s) links given; raise ProfileError for anything else."""
    links: list[str] = []
    for raw in lines:
        link = raw.strip()
        if not link:
            continue
        if has_control_characters(link) or " " in link:
            raise ProfileError("link_invalid", "A link can't contain spaces or control characters.")
        scheme = _SCHEME.match(link)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise ProfileError("link_scheme", LINK_INVALID_MESSAGE)
        if "://" not in link:
            link = "https://" + link
        if not _is_web_address(link):
            raise ProfileError("link_invalid", LINK_INVALID_MESSAGE)
        if len(link) > LINK_MAX:
            raise ProfileError("link_too_long", f"Keep each link to {LINK_MAX} characters.")
        if link not in links:
            links.append(link)
    if len(links) > MAX_LINKS:
        raise ProfileError("too_many_links", f"Add at most {MAX_LINKS} links.")
    return links


def _is_web_address(link: str) -> bool:
    """Tell whether a link parses as an http(s) address with a host and a valid port."""
    # The parser raises ValueError for brackets that are not a valid IP literal and for
    # ports that are not numbers in range; every such link is simply not a web address.
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def update_profile(
    attendance: Attendance,
    *,
    name: str,
    about: str,
    talk_about: str,
    interests: list[str],
    links: list[str],
    visibility: dict[str, str],
) -> None:
    """Change what a person shows at an event and to whom.

    Interests and visibility are per event; name, about, talking points and links are
    the person's own and follow them to their next event.
    """
    tags = normalise_interests(interests)
    settings = {
        field: visibility.get(field, getattr(attendance, f"{field}_visibility"))
        for field in PROFILE_FIELDS
    }
    if any(setting not in VISIBILITY_VALUES for setting in settings.values()):
        raise ProfileError("visibility_invalid", "Choose who can see each part of your profile.")
    # In the order every change takes them (domain/versions.py): the interests' names, then
    # (in update_person) the interest counts (the suggestions sharing an interest shown
    # before or after move on) and the events' rows, then the person, this check-in last.
    interned = intern_interests(tags)
    showing = attendance.interests_visibility == Visibility.EVERYONE
    shown = [interest.key for interest in attendance.interests] if showing else []
    if settings["interests"] == Visibility.EVERYONE:
        shown += [interest.key for interest in interned]
    update_person(
        attendance.person,
        name=name,
        about=about,
        talk_about=talk_about,
        links=links,
        counted={attendance.event_id: shown},
    )
    for field, setting in settings.items():
        setattr(attendance, f"{field}_visibility", setting)
    shows_anything = any(
        getattr(attendance, f"{field}_visibility") != Visibility.NOBODY for field in PROFILE_FIELDS
    )
    if shows_anything and attendance.profile_consent_at is None:
        attendance.profile_consent_at = utcnow()
    elif not shows_anything:
        attendance.profile_consent_at = None
    attendance.interests = interned
    db.session.flush()
    badge_changed(attendance.id)


def update_person(
    person: Person,
    *,
    name: str,
    about: str,
    talk_about: str,
    links: list[str],
    counted: Mapping[int, list[str]] | None = None,
) -> None:
    """Change the profile a person carries from event to event, moving on every page that
    shows it; `counted` is what an edit at one event starts or stops showing there (interest
    keys by event), whose suggestions move on too."""
    links = normalise_links(links)
    with changing_person(person.id, counted):
        person.name = name.strip()
        person.about = about.strip()
        person.talk_about = talk_about.strip()
        person.links = links


def intern_interests(names: list[str]) -> list[Interest]:
    """Return the Interest rows for normalised names, creating the missing ones with their key."""
    if not names:
        return []
    _insert_interests(names)
    return list(db.session.scalars(sa.select(Interest).where(Interest.name.in_(names))))


def intern_interest_ids(names: list[str]) -> list[int]:
    """Return the ids of the interests with normalised names, creating the missing ones.

    An interest is never renamed or deleted, so the ids this process saw committed in the
    last few seconds (domain/caching.py) cost no statement: at a busy door most people pick
    interests someone picked just before.
    """
    database = db.session.get_bind()
    known = {
        name: caching.interest_ids.recalled(caching.interest_id_key(database, name))
        for name in names
    }
    missing = [name for name, interest_id in known.items() if interest_id is None]
    if missing:
        _insert_interests(missing)
        rows = db.session.execute(
            sa.select(Interest.name, Interest.id).where(Interest.name.in_(missing))
        )
        found = {name: interest_id for name, interest_id in rows}
        known.update(found)
        on_commit(functools.partial(_remember_interest_ids, database, found))
    return [interest_id for interest_id in known.values() if interest_id is not None]


def _remember_interest_ids(database: object, ids_by_name: dict[str, int]) -> None:
    for name, interest_id in ids_by_name.items():
        caching.interest_ids.keep(caching.interest_id_key(database, name), interest_id)


def _insert_interests(names: list[str]) -> None:
    """Add the interests not known yet, in one statement."""
    # In one order for everyone, so two check-ins adding the same new tags never deadlock.
    rows = [{"name": name, "key": interest_key(name)} for name in sorted(names)]
    insert_many_ignoring_conflict(Interest.__table__, rows, ["name"])
