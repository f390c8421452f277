"""The network picture fits what it draws: every node and label inside the frame, the nodes
filling most of it, and sizes one can read from a couple of people to a full hall."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from flask import render_template

from domain.health import connection_health
from domain.pictures import RoomPictures, arrivals, network
from domain.room import Guest, Room

SVG = "{http://www.w3.org/2000/svg}"
# A label's width is estimated from its characters: about 0.6 em each in a sans-serif face.
EM_PER_CHARACTER = 0.6
INTERESTS = ["chess", "sourdough", "marathons", "travel in Asia", "jazz", "go", "climbing"]
LONG_NAME = "Maximiliana Wolfeschlegelsteinhausen-Bergerdorff"


def room_of_size(people: int, seed: int = 7) -> Room:
    """A room of `people`, each showing one or two interests, about one connection each."""
    rng = random.Random(seed)
    start = datetime(2030, 5, 1, 18, tzinfo=UTC)
    guests = [
        Guest(
            id=n + 1,
            person_id=n + 1,
            name=LONG_NAME if n == 1 else f"Person {n + 1}",
            arrived=start + timedelta(minutes=rng.randrange(180)),
            named=n % 5 != 4,
            interests=tuple(rng.sample(INTERESTS, rng.choice((1, 2)))),
        )
        for n in range(people)
    ]
    pairs = {tuple(sorted(rng.sample(range(1, people + 1), 2))) for _ in range(people // 2)}
    return Room(guests, sorted(pairs))


def drawn(app, room: Room) -> ET.Element:
    """Draw a room's pictures with the real template; return the network SVG, parsed."""
    room_pictures = RoomPictures(
        arrivals=arrivals(room, "UTC"),
        most_arrivals=1,
        network=network(room),
        health=connection_health(room),
    )
    with app.test_request_context():
        page = render_template(
            "organiser/_pictures.html",
            event=SimpleNamespace(timezone="UTC"),
            pictures=room_pictures,
        )
    [markup] = re.findall(r'<svg class="chart network".*?</svg>', page, re.S)
    return ET.fromstring(markup)


def frame_of(svg: ET.Element) -> tuple[float, float, float, float]:
    x, y, width, height = (float(part) for part in svg.get("viewBox").split())
    return x, y, x + width, y + height


def boxes(svg: ET.Element) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]], float]:
    """Return the box of every node and of every label, and the labels' size."""
    nodes = [
        (
            float(c.get("cx")) - float(c.get("r")),
            float(c.get("cy")) - float(c.get("r")),
            float(c.get("cx")) + float(c.get("r")),
            float(c.get("cy")) + float(c.get("r")),
        )
        for c in svg.iter(f"{SVG}circle")
    ]
    group = svg.find(f"{SVG}g[@class='labels']")
    font = float(group.get("font-size")) if group is not None else 0.0
    labels = []
    for text in svg.iter(f"{SVG}text"):
        x, y = float(text.get("x")), float(text.get("y"))
        width = len(text.text) * font * EM_PER_CHARACTER
        left = x - width if text.get("text-anchor") == "end" else x
        labels.append((left, y - font * 0.75, left + width, y + font * 0.2))
    return nodes, labels, font


@pytest.mark.parametrize("people", [2, 3, 4, 10, 60, 200, 2000])
def test_every_node_and_label_lies_inside_the_frame(app, people):
    svg = drawn(app, room_of_size(people))
    left, top, right, bottom = frame_of(svg)
    nodes, labels, font = boxes(svg)
    assert len(nodes) == people
    for box in nodes + labels:
        assert left <= box[0] and box[2] <= right, (box, (left, right))
        assert top <= box[1] and box[3] <= bottom, (box, (top, bottom))
    if people <= 150:
        assert len(labels) == sum(1 for n in range(people) if n % 5 != 4)
        assert font >= 12  # names readable at the picture's natural size
    else:
        assert labels == []  # a crowd's names would only cover each other


@pytest.mark.parametrize("people", [3, 10, 200])
def test_the_nodes_fill_most_of_the_frame(app, people):
    svg = drawn(app, room_of_size(people))
    left, top, right, bottom = frame_of(svg)
    nodes, _labels, _font = boxes(svg)
    spread_x = max(box[2] for box in nodes) - min(box[0] for box in nodes)
    spread_y = max(box[3] for box in nodes) - min(box[1] for box in nodes)
    filled = max(spread_x / (right - left), spread_y / (bottom - top))
    assert filled >= 0.6, filled


@pytest.mark.parametrize("people", [2, 3, 10, 200, 2000])
def test_nodes_stay_readable_from_a_few_people_to_a_full_hall(app, people):
    svg = drawn(app, room_of_size(people))
    left, _top, right, _bottom = frame_of(svg)
    radius = float(next(svg.iter(f"{SVG}circle")).get("r"))
    # Drawn at its natural size (one unit a pixel), shrunk only to fit a 36rem column.
    shown_width = min(right - left, 576)
    assert float(svg.get("width")) == right - left
    on_screen = radius * shown_width / (right - left)
    assert on_screen >= 1.5, on_screen  # a dot one can see
    assert radius * 2 / (right - left) <= 0.06  # and not a blob filling the picture


def one_interest_room(people: int) -> Room:
    """A room where everyone shows the same one interest: one cluster, one disc."""
    start = datetime(2030, 5, 1, 18, tzinfo=UTC)
    guests = [
        Guest(
            id=n + 1,
            person_id=n + 1,
            name=f"Person {n + 1}",
            arrived=start + timedelta(minutes=n),
            named=True,
            interests=("a longer interest name",),
        )
        for n in range(people)
    ]
    return Room(guests, [(n, n + 1) for n in range(1, people, 2)])


@pytest.mark.parametrize(
    "room",
    [room_of_size(4), room_of_size(10)] + [one_interest_room(n) for n in (3, 8, 12, 20)],
)
def test_no_two_names_cover_each_other_in_a_small_room(app, room):
    svg = drawn(app, room)
    _nodes, labels, _font = boxes(svg)
    assert labels
    for index, (left, top, right, bottom) in enumerate(labels):
        for other in labels[index + 1 :]:
            apart = other[0] >= right or other[2] <= left or other[1] >= bottom or other[3] <= top
            assert apart, (labels[index], other)


@pytest.mark.parametrize("people", [12, 30, 60, 150])
def test_names_move_people_apart_only_while_the_picture_stays_readable(app, people):
    # Spread further, a larger room's picture would be shrunk to fit the page until its
    # names were too small to read: it stops at the width where that begins.
    left, _top, right, _bottom = frame_of(drawn(app, room_of_size(people)))
    assert right - left <= 640 * 1.25


def test_a_long_name_is_cut_short_on_the_picture_and_whole_in_its_tooltip(app):
    svg = drawn(app, room_of_size(3))
    captions = [text.text for text in svg.iter(f"{SVG}text")]
    assert LONG_NAME not in captions
    assert [c for c in captions if c.startswith("Maximiliana")] == [LONG_NAME[:23] + "\u2026"]
    titles = [title.text for title in svg.iter(f"{SVG}title")]
    assert LONG_NAME in titles
