"""Connection health: did the networking work? The figures no other tool gives organisers."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from domain.limits import INTRODUCTIONS_EACH, TOP_SHARED_INTERESTS, UNCONNECTED_LISTED
from domain.room import Guest, Room


@dataclass(frozen=True)
class Introduction:
    """Someone who met no one, what they show, and people here who share an interest."""

    name: str
    interests: tuple[str, ...]
    could_meet: tuple[str, ...]


@dataclass(frozen=True)
class Health:
    """How connected an event's room is."""

    attendees: int
    connected: int  # people with at least one accepted connection
    share_connected: float  # connected / attendees, 0 when no one came
    median_connections: float  # over everyone who came, people with none included
    connections: int
    unconnected: int
    introductions: list[Introduction]  # the first UNCONNECTED_LISTED of the unconnected
    top_shared: list[tuple[str, int]]  # interests both sides of a connection show, by count


def connection_health(room: Room) -> Health:
    """Return the connection-health figures of a room."""
    degree = Counter[int]()
    for low, high in room.pairs:
        degree[low] += 1
        degree[high] += 1
    attendees = len(room.guests)
    connected = sum(1 for guest in room.guests if degree[guest.id])
    alone = [guest for guest in room.guests if not degree[guest.id]]
    showing: dict[str, list[Guest]] = {}
    for guest in room.guests:
        for interest in guest.interests:
            showing.setdefault(interest, []).append(guest)
    return Health(
        attendees=attendees,
        connected=connected,
        share_connected=connected / attendees if attendees else 0.0,
        median_connections=(
            float(statistics.median(degree[guest.id] for guest in room.guests))
            if attendees
            else 0.0
        ),
        connections=len(room.pairs),
        unconnected=len(alone),
        introductions=[_introduction(guest, room, showing) for guest in alone[:UNCONNECTED_LISTED]],
        top_shared=top_shared_interests(room),
    )


def top_shared_interests(room: Room) -> list[tuple[str, int]]:
    """Return the interests most often shown by both sides of an accepted connection."""
    interests = {guest.id: set(guest.interests) for guest in room.guests}
    counts = Counter[str]()
    for low, high in room.pairs:
        counts.update(interests.get(low, set()) & interests.get(high, set()))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_SHARED_INTERESTS]


def _introduction(guest: Guest, room: Room, showing: dict[str, list[Guest]]) -> Introduction:
    """Suggest people to introduce a guest to: those who show an interest they show too."""
    shared = Counter[int]()
    names: dict[int, str] = {}
    for interest in guest.interests:
        for other in showing[interest]:
            if other.id != guest.id and frozenset((guest.person_id, other.person_id)) not in (
                room.blocked
            ):
                shared[other.id] += 1
                names[other.id] = other.name
    best = sorted(shared, key=lambda other: (-shared[other], names[other], other))
    return Introduction(
        name=guest.name,
        interests=guest.interests,
        could_meet=tuple(names[other] for other in best[:INTRODUCTIONS_EACH]),
    )
