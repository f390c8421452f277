"""Pictures of the room, as numbers and places: arrivals over time and the network of the night.

What is drawn, and where, is decided here; the SVG markup is the templates' business
(templates/organiser/_pictures.html). Places are in a square NETWORK_SIZE wide, (0, 0) top
left, rounded to a tenth, so the template writes them as they are.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.health import Health, connection_health
from domain.limits import ARRIVALS_BIN, ARRIVALS_MAX_BINS, NETWORK_CLUSTERS
from domain.models import Event
from domain.room import Room, room_of

GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))
# Arrival bins widen by these factors of ARRIVALS_BIN when an event is too long to draw.
BIN_FACTORS = (1, 2, 3, 6, 12, 24, 48, 96, 288)
NETWORK_SIZE = 600
# How far apart people sit within their cluster's disc, against the gap between discs.
SPACING = 0.5
NO_CLUSTER = "no interest shown"
OTHER_CLUSTER = "other interests"


@dataclass(frozen=True)
class ArrivalBin:
    """How many people checked in from `starts` (in the event's zone) for `minutes`."""

    starts: datetime
    minutes: int
    count: int


def arrivals(room: Room, timezone: str) -> list[ArrivalBin]:
    """Count check-ins per bin (5 minutes, wider for long events), empty bins included."""
    if not room.guests:
        return []
    zone = ZoneInfo(timezone)
    first = min(guest.arrived for guest in room.guests)
    last = max(guest.arrived for guest in room.guests)
    span = last - first
    width = next(
        (
            ARRIVALS_BIN * factor
            for factor in BIN_FACTORS
            if span / (ARRIVALS_BIN * factor) < ARRIVALS_MAX_BINS
        ),
        ARRIVALS_BIN * BIN_FACTORS[-1],
    )
    # Bins start on the event's local clock (18:00, 18:05, ...): floor the local wall time.
    local_first = first.astimezone(zone)
    midnight = local_first.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (local_first - midnight) % width
    start = first - offset
    counts = Counter((guest.arrived - start) // width for guest in room.guests)
    return [
        ArrivalBin(
            (start + width * n).astimezone(zone), int(width / timedelta(minutes=1)), counts[n]
        )
        for n in range(max(counts) + 1)
    ]


@dataclass(frozen=True)
class Node:
    """One person in the network: where they are drawn, their cluster, and a label or None."""

    id: int
    x: float
    y: float
    cluster: int
    label: str | None
    connections: int


@dataclass(frozen=True)
class Edge:
    """One accepted connection, drawn from one person's place to the other's."""

    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Cluster:
    """A group of people drawn together: those whose most common shown interest is `name`."""

    index: int
    name: str
    people: int
    inside: int  # connections between two of its people
    outside: int  # connections from one of its people to someone in another cluster


@dataclass(frozen=True)
class Network:
    """The network of the night: people as nodes, accepted connections as edges."""

    nodes: list[Node]
    edges: list[Edge]
    clusters: list[Cluster]

    @property
    def labelled(self) -> int:
        """Return how many nodes carry a name."""
        return sum(1 for node in self.nodes if node.label is not None)


def network(room: Room) -> Network:
    """Lay out the room's network: each interest cluster a disc, the discs round a circle."""
    degree = Counter[int]()
    for low, high in room.pairs:
        degree[low] += 1
        degree[high] += 1
    cluster_of, names = _clusters(room)
    members: dict[int, list[int]] = {index: [] for index in range(len(names))}
    for guest in room.guests:
        members[cluster_of[guest.id]].append(guest.id)
    places = _places(members, degree)
    by_id = {guest.id: guest for guest in room.guests}
    order = [guest.id for guest in room.guests]
    nodes = [
        Node(
            id=guest_id,
            x=places[guest_id][0],
            y=places[guest_id][1],
            cluster=cluster_of[guest_id],
            label=by_id[guest_id].name if by_id[guest_id].named else None,
            connections=degree[guest_id],
        )
        for guest_id in order
    ]
    inside = Counter[int]()
    outside = Counter[int]()
    for low, high in room.pairs:
        if cluster_of[low] == cluster_of[high]:
            inside[cluster_of[low]] += 1
        else:
            outside[cluster_of[low]] += 1
            outside[cluster_of[high]] += 1
    clusters = [
        Cluster(index, name, len(members[index]), inside[index], outside[index])
        for index, name in enumerate(names)
        if members[index]
    ]
    edges = [Edge(*places[low], *places[high]) for low, high in room.pairs]
    return Network(nodes, edges, clusters)


def _clusters(room: Room) -> tuple[dict[int, int], list[str]]:
    """Put each guest in the cluster of their most popular shown interest.

    The NETWORK_CLUSTERS - 2 most popular interests get a cluster each; the rest share one,
    and people who show no interest have one of their own.
    """
    popularity = Counter(name for guest in room.guests for name in guest.interests)
    choice: dict[int, str | None] = {
        guest.id: min(guest.interests, key=lambda name: (-popularity[name], name))
        if guest.interests
        else None
        for guest in room.guests
    }
    chosen = Counter(name for name in choice.values() if name is not None)
    named = [name for name, _n in sorted(chosen.items(), key=lambda i: (-i[1], i[0]))]
    own = named[: NETWORK_CLUSTERS - 2]
    names = [*own, OTHER_CLUSTER, NO_CLUSTER]
    index = {name: n for n, name in enumerate(own)}
    cluster_of = {
        guest_id: len(own) + 1 if name is None else index.get(name, len(own))
        for guest_id, name in choice.items()
    }
    return cluster_of, names


def _places(members: dict[int, list[int]], degree: Counter[int]) -> dict[int, tuple[float, float]]:
    """Place each cluster's people in a sunflower disc (busiest in the middle), the discs
    round a circle, and scale the whole into the unit square."""
    discs = [(index, ids) for index, ids in members.items() if ids]
    # Each disc holds its people a little apart; the discs keep a gap between them.
    radius = {index: SPACING * math.sqrt(len(ids)) + 2 for index, ids in discs}
    around = sum(2 * radius[index] for index, _ids in discs)
    ring = around / (2 * math.pi) if len(discs) > 1 else 0.0
    raw: dict[int, tuple[float, float]] = {}
    angle = 0.0
    for index, ids in discs:
        share = 2 * math.pi * (2 * radius[index]) / around if around else 0.0
        centre_angle = angle + share / 2
        angle += share
        cx, cy = ring * math.cos(centre_angle), ring * math.sin(centre_angle)
        for k, guest_id in enumerate(sorted(ids, key=lambda i: (-degree[i], i))):
            r = SPACING * math.sqrt(k + 0.5)
            raw[guest_id] = (
                cx + r * math.cos(k * GOLDEN_ANGLE),
                cy + r * math.sin(k * GOLDEN_ANGLE),
            )
    if not raw:
        return {}
    xs = [x for x, _y in raw.values()]
    ys = [y for _x, y in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    left = (min(xs) + max(xs)) / 2 - span / 2
    top = (min(ys) + max(ys)) / 2 - span / 2
    return {
        guest_id: (
            round((x - left) / span * NETWORK_SIZE, 1),
            round((y - top) / span * NETWORK_SIZE, 1),
        )
        for guest_id, (x, y) in raw.items()
    }


@dataclass(frozen=True)
class RoomPictures:
    """Everything the pictures of an event's room show."""

    arrivals: list[ArrivalBin]
    most_arrivals: int
    network: Network
    health: Health


def room_pictures(event: Event) -> RoomPictures:
    """Read an event's room once and return its pictures and health figures."""
    room = room_of(event)
    bins = arrivals(room, event.timezone)
    return RoomPictures(
        arrivals=bins,
        most_arrivals=max((b.count for b in bins), default=0),
        network=network(room),
        health=connection_health(room),
    )
