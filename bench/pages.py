"""What the pages cost at a meetup and at a conference: statements, time and bytes.

    .venv/bin/python bench/pages.py [--database-url URL] [--sizes 100 5000] [--repeat 30]

Seeds one event per size in a fresh database (a temporary SQLite file by default;
PostgreSQL with --database-url, whose public schema is dropped first), each with that many
people checked in showing two of five interests, then asks each page through the app's test
client (no HTTP server: the page's own cost) and prints, per page and size: the statements
it sends (BEGIN included), its median and 90th-percentile time, and its bytes (as sent to a
browser taking Brotli). The last column is the time at the largest size
over the time at the smallest: 1.0 is flat.

Pages: the poster's landing page (first look in a process, then remembered), a badge page
(first view), its refresh (unchanged: 304; changed: the fragment), the organiser's attendee
page, its refresh (unchanged; one arrival since), and the CSV (which lists everyone, so it
grows by design).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from domain.db import db, writing  # noqa: E402
from domain.events import EventDetails, create_event, wall_clock_now  # noqa: E402
from domain.organisers import create_organiser  # noqa: E402
from tests.crowd import add_crowd  # noqa: E402
from tests.statements import counting  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
PASSWORD = "correct horse battery"
BROTLI = {"Accept-Encoding": "br"}


def build_app(url: str):
    return create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
        }
    )


def seed(app, sizes: list[int]) -> dict[int, tuple[int, str]]:
    """Return, per size, the event id and poster token of a fresh event with that crowd."""
    from datetime import timedelta

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
        with writing():
            organiser = create_organiser("organiser@rapport.example", PASSWORD)
            db.session.commit()
        events = {}
        for size in sizes:
            start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
            with writing():
                event = create_event(
                    organiser,
                    EventDetails(
                        name=f"{size} people",
                        starts_at=start,
                        ends_at=start + timedelta(hours=4),
                        timezone="Europe/London",
                        venue="Hall",
                        description="",
                    ),
                )
                db.session.commit()
            add_crowd(event.id, size)
            events[size] = (event.id, event.checkin_token)
        db.session.remove()
    return events


def measure(request: Callable[[], object], repeat: int) -> tuple[int, float, float, int]:
    """Return the statements, median ms, p90 ms and bytes sent (to a browser taking Brotli)."""
    with counting() as statements:
        response = request()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        request()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    sent = len(response.data)  # type: ignore[attr-defined]
    return len(statements), statistics.median(times), times[int(len(times) * 0.9)], sent


def pages(app, event_id: int, poster: str, size: int):
    """Yield (name, request) for each page, with the clients they need set up."""
    phone = app.test_client()
    phone.get(f"/e/{poster}")
    checked_in = phone.post(
        f"/e/{poster}",
        data={
            "name": "Ana",
            "email": f"ana.{size}@example.org",
            "interests": "jazz, chess",
            "share_profile": "y",
        },
    )
    badge = checked_in.headers["Location"]
    live = phone.get(f"{badge}/live")
    laptop = app.test_client()
    laptop.post("/login", data={"email": "organiser@rapport.example", "password": PASSWORD})
    page = f"/organiser/events/{event_id}"
    first = laptop.get(f"{page}/live")
    held = first.headers["ETag"]
    newcomer = app.test_client()
    newcomer.get(f"/e/{poster}")
    newcomer.post(f"/e/{poster}", data={"name": "Ben", "email": f"ben.{size}@example.org"})
    yield "landing page", lambda: app.test_client().get(f"/e/{poster}", headers=BROTLI)
    yield "badge page", lambda: phone.get(badge, headers=BROTLI)
    yield (
        "badge refresh, unchanged",
        lambda: phone.get(f"{badge}/live", headers={"If-None-Match": live.headers["ETag"]}),
    )
    yield "badge refresh, changed", lambda: phone.get(f"{badge}/live", headers=BROTLI)
    yield "people to meet", lambda: phone.get(f"{badge}/live/people", headers=BROTLI)
    yield "attendee page", lambda: laptop.get(page, headers=BROTLI)
    now = laptop.get(f"{page}/live").headers["ETag"]
    yield (
        "attendee refresh, unchanged",
        lambda: laptop.get(f"{page}/live", headers={**BROTLI, "If-None-Match": now}),
    )
    yield (
        "attendee refresh, one arrival",
        lambda: laptop.get(f"{page}/live", headers={**BROTLI, "If-None-Match": held}),
    )
    yield "CSV (everyone)", lambda: laptop.get(f"{page}/attendees.csv", headers=BROTLI)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 5000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/pages.sqlite"
        app = build_app(url)
        events = seed(app, args.sizes)
        results: dict[str, dict[int, tuple[int, float, float, int]]] = {}
        # Each request runs in its own app context, as under a real server.
        for size in args.sizes:
            event_id, poster = events[size]
            for name, request in pages(app, event_id, poster, size):
                results.setdefault(name, {})[size] = measure(request, args.repeat)
        with app.app_context():
            db.engine.dispose()
    print(f"engine: {url.split(':')[0]}, {args.repeat} requests each; ms median / p90")
    header = (
        f"{'page':32}"
        + "".join(f"{f'{size} people':>36}" for size in args.sizes)
        + f"{'time ratio':>12}"
    )
    print(header)
    for name, by_size in results.items():
        cells = "".join(
            f"{f'{s} stmts {m:6.1f}/{p:6.1f} ms {b / 1024:5.1f} KB':>36}"
            for s, m, p, b in (by_size[size] for size in args.sizes)
        )
        ratio = by_size[args.sizes[-1]][1] / by_size[args.sizes[0]][1]
        print(f"{name:32}{cells}{ratio:>12.2f}")


if __name__ == "__main__":
    main()
