"""Pictures of the room, as numbers and places: arrivals over time and the network of the night.

What is drawn, and where, is decided here; the SVG markup is the templates' business
(templates/organiser/_pictures.html). The network is laid out in CSS pixels at its natural
size, rounded to a tenth: nodes sized for how many people came, spread at least MIN_SPAN
across, and a frame (the viewBox) that holds every node and label with a margin, no more,
so a small room is not a few dots in a large empty square.
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
from domain.room import Guest, Room, room_of

GOLDEN_ANGLE = math.pi * (3 - math.sqrt(5))
# Arrival bins widen by these factors of ARRIVALS_BIN when an event is too long to draw.
BIN_FACTORS = (1, 2, 3, 6, 12, 24, 48, 96, 288)
# How far apart people sit within their cluster's disc, against the gap between discs; in
# a room of a few people up to twice as far (less as more come), so names do not touch.
SPACING = 0.5
FEW = 5  # up to this many, twice as far; from FEW + 25 on, SPACING itself
# Node radius and label size (px) by how many people came: (up to this many, radius, font).
# Past LABELS_UP_TO people the names would cover each other, so none is drawn (0).
NODE_SIZES = ((30, 7.0, 14.0), (150, 6.0, 13.0), (1000, 4.0, 0.0), (math.inf, 3.0, 0.0))
LABELS_UP_TO = 150
# Pixels per unit of the raw layout, per px of node radius: neighbours sit ~4 radii apart.
UNIT_PER_RADIUS = 5.0
# Where names would cover each other, people sit this much further apart, step by step,
# up to MAX_STRETCH times the spacing of their dots and a picture STRETCHED_WIDTH_MAX wide
# (past that, shrunk to fit the page, its names would be too small to read anyway).
STRETCH_STEP = 1.25
MAX_STRETCH = 6.0
STRETCHED_WIDTH_MAX = 640.0
MIN_SPAN = 180.0  # the nodes of a small room spread at least this wide (or tall)
MIN_FRAME = (200.0, 120.0)  # the smallest picture, for one or two people
MARGIN = 8.0
LABEL_GAP = 3.0  # between a node and its label
LABEL_CHARS = 24  # a longer name is cut short on the picture (in full in its tooltip)
# A label's width, estimated from its characters: an average glyph is ~0.55 em in a
# sans-serif face; 0.62 keeps wide names inside the frame.
CHAR_WIDTH_EM = 0.62
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
    """One person in the network: where they are drawn, their cluster, and a label or None.

    The label is drawn from (label_x, label_y), on the side of the node facing the middle
    of the picture (`anchor` "start": to the right, "end": to the left).
    """

    id: int
    x: float
    y: float
    cluster: int
    label: str | None
    connections: int
    caption: str | None = None  # the label as drawn: a long name cut short
    label_x: float = 0.0
    label_y: float = 0.0
    anchor: str = "start"


@dataclass(frozen=True)
class Frame:
    """The network picture's viewBox and the sizes drawn in it, in px at its natural size."""

    x: float
    y: float
    width: float
    height: float
    radius: float
    font: float  # the labels' size; 0 when no labels are drawn


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
    frame: Frame

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
    radius, font = _sizes(len(room.guests))
    places = _places(members, degree, radius)

    def laid_out(places: dict[int, tuple[float, float]]) -> list[Node]:
        middle = _middle(places)
        return [
            _node(
                guest,
                places[guest.id],
                cluster_of[guest.id],
                degree[guest.id],
                radius,
                font,
                middle,
            )
            for guest in room.guests
        ]

    nodes = laid_out(places)
    # Dots are spaced for dots; names are wider. Where two names would cover each other
    # (a small room in one interest, say), the people sit further apart until they don't.
    stretch = 1.0
    while (
        font
        and stretch < MAX_STRETCH
        and _frame(nodes, radius, font).width * STRETCH_STEP <= STRETCHED_WIDTH_MAX
        and _labels_overlap(nodes, font)
    ):
        stretch *= STRETCH_STEP
        places = {
            guest_id: (round(x * STRETCH_STEP, 1), round(y * STRETCH_STEP, 1))
            for guest_id, (x, y) in places.items()
        }
        nodes = laid_out(places)
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
    return Network(nodes, edges, clusters, _frame(nodes, radius, font))


def _sizes(people: int) -> tuple[float, float]:
    """Return the node radius and label size for a room of this many people."""
    return next((radius, font) for most, radius, font in NODE_SIZES if people <= most)


def _node(
    guest: Guest,
    place: tuple[float, float],
    cluster: int,
    connections: int,
    radius: float,
    font: float,
    middle: float,
) -> Node:
    """Place one person, with their label (if they show their name) facing the middle."""
    x, y = place
    label = guest.name if guest.named else None
    caption = None
    if label is not None and font:
        caption = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "\u2026"
    right = x <= middle
    return Node(
        id=guest.id,
        x=x,
        y=y,
        cluster=cluster,
        label=label,
        connections=connections,
        caption=caption,
        label_x=round(x + (radius + LABEL_GAP) * (1 if right else -1), 1),
        # Baseline a third of the text's size below the centre: the text sits level with the dot.
        label_y=round(y + font * 0.35, 1),
        anchor="start" if right else "end",
    )


def label_width(caption: str, font: float) -> float:
    """Estimate how wide a label is drawn, from its characters."""
    return len(caption) * font * CHAR_WIDTH_EM


def _label_box(node: Node, font: float) -> tuple[float, float, float, float]:
    """Return the box (left, top, right, bottom) a node's label is drawn in."""
    assert node.caption is not None
    width = label_width(node.caption, font)
    start = node.label_x if node.anchor == "start" else node.label_x - width
    # Ascenders reach ~0.8 em above the baseline, descenders ~0.25 em below.
    return start, node.label_y - font * 0.8, start + width, node.label_y + font * 0.25


def _labels_overlap(nodes: list[Node], font: float) -> bool:
    """Tell whether any two labels would be drawn over each other."""
    boxes = sorted(_label_box(node, font) for node in nodes if node.caption)
    for index, (_left, top, right, bottom) in enumerate(boxes):
        for other_left, other_top, _other_right, other_bottom in boxes[index + 1 :]:
            if other_left >= right:
                break  # sorted by their left edge: none further on reaches this one
            if other_top < bottom and top < other_bottom:
                return True
    return False


def _middle(places: dict[int, tuple[float, float]]) -> float:
    if not places:
        return 0.0
    xs = [x for x, _y in places.values()]
    return (min(xs) + max(xs)) / 2


def _frame(nodes: list[Node], radius: float, font: float) -> Frame:
    """Fit the viewBox to the nodes and labels with a margin, never smaller than MIN_FRAME."""
    if not nodes:
        return Frame(0.0, 0.0, *MIN_FRAME, radius, font)
    left = min(node.x for node in nodes) - radius
    right = max(node.x for node in nodes) + radius
    top = min(node.y for node in nodes) - radius
    bottom = max(node.y for node in nodes) + radius
    for node in nodes:
        if node.caption is None:
            continue
        start, label_top, end, label_bottom = _label_box(node, font)
        left, right = min(left, start), max(right, end)
        top, bottom = min(top, label_top), max(bottom, label_bottom)
    left, top = left - MARGIN, top - MARGIN
    width, height = right + MARGIN - left, bottom + MARGIN - top
    min_width, min_height = MIN_FRAME
    if width < min_width:
        left -= (min_width - width) / 2
        width = min_width
    if height < min_height:
        top -= (min_height - height) / 2
        height = min_height
    x, y = math.floor(left), math.floor(top)
    return Frame(
        float(x),
        float(y),
        float(math.ceil(left + width) - x),
        float(math.ceil(top + height) - y),
        radius,
        font if any(node.caption for node in nodes) else 0.0,
    )


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


def _places(
    members: dict[int, list[int]], degree: Counter[int], node_radius: float
) -> dict[int, tuple[float, float]]:
    """Place each cluster's people in a sunflower disc (busiest in the middle), the discs
    round a circle, in pixels: neighbours a few node radii apart, at least MIN_SPAN across."""
    discs = [(index, ids) for index, ids in members.items() if ids]
    # Each disc holds its people a little apart; the discs keep a gap between them.
    people = sum(len(ids) for _index, ids in discs)
    spacing = SPACING * min(2.0, max(1.0, 2.0 - (people - FEW) / 25))
    radius = {index: spacing * math.sqrt(len(ids)) + 2 for index, ids in discs}
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
            r = spacing * math.sqrt(k + 0.5)
            raw[guest_id] = (
                cx + r * math.cos(k * GOLDEN_ANGLE),
                cy + r * math.sin(k * GOLDEN_ANGLE),
            )
    if not raw:
        return {}
    xs = [x for x, _y in raw.values()]
    ys = [y for _x, y in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys))
    scale = UNIT_PER_RADIUS * node_radius
    if span:
        scale = max(scale, MIN_SPAN / span)
    left, top = min(xs), min(ys)
    # A crowd's dots are drawn to the whole pixel: a tenth would be invisible, and its
    # digits would add a tenth to the size of the picture.
    if len(raw) > LABELS_UP_TO:
        return {
            guest_id: (round((x - left) * scale), round((y - top) * scale))
            for guest_id, (x, y) in raw.items()
        }
    return {
        guest_id: (round((x - left) * scale, 1), round((y - top) * scale, 1))
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
