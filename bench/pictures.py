"""What drawing the pictures of a full room costs, against the attendee table's own refresh.

    .venv/bin/python bench/pictures.py [--attendees 5000] [--connections 2] [--rounds 5]
                                       [--database-url URL]

Seeds one event with `--attendees` people (each showing two of 40 interests, arriving over
three hours) and about `--connections` accepted connections per person in a fresh database
(a temporary SQLite file by default; PostgreSQL with --database-url, whose public schema is
dropped first). Then, as the signed-in organiser, it times `--rounds` requests of:

* the baseline: the attendee table fragment (`/organiser/events/<id>/live`), which the event
  page fetches every 5 seconds;
* the pictures fragment (`/organiser/events/<id>/pictures/live`), which it fetches once, then
  every minute, and the same asked with the ETag it got (304 while no one came or connected).

It prints the median time of each, their ratio, and the pictures' size, and how much of the
organiser's time the pictures take per minute compared with the table's twelve refreshes.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from domain.db import db, utcnow, writing  # noqa: E402
from domain.events import EventDetails, create_event  # noqa: E402
from domain.models import (  # noqa: E402
    Attendance,
    Connection,
    Interest,
    Person,
    attendance_interest,
)
from domain.organisers import create_organiser  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
PASSWORD = "correct horse battery"


def seed(app, attendees: int, per_person: int) -> int:
    """Fill a fresh database with one big event; return its id."""
    rng = random.Random(7)
    now = utcnow()
    with app.app_context(), writing():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
        organiser = create_organiser("organiser@rapport.example", PASSWORD)
        start = now.replace(tzinfo=None, microsecond=0) - timedelta(hours=3)
        event = create_event(
            organiser,
            EventDetails(
                name="Big night",
                starts_at=start,
                ends_at=start + timedelta(hours=5),
                timezone="Europe/Berlin",
            ),
        )
        db.session.execute(
            sa.insert(Person),
            [
                {"email": f"p{n}@example.org", "name": f"Person {n}", "links": []}
                for n in range(attendees)
            ],
        )
        people = db.session.scalars(sa.select(Person.id).order_by(Person.id)).all()
        db.session.execute(
            sa.insert(Attendance),
            [
                {
                    "event_id": event.id,
                    "person_id": person_id,
                    "badge_token_hash": hashlib.sha256(f"b{person_id}".encode()).hexdigest(),
                    "checked_in_at": now - timedelta(seconds=rng.randrange(3 * 3600)),
                    "profile_consent_at": now if n % 4 else None,
                }
                for n, person_id in enumerate(people)
            ],
        )
        db.session.execute(sa.insert(Interest), [{"name": f"topic {n}"} for n in range(40)])
        topics = db.session.scalars(sa.select(Interest.id)).all()
        ids = db.session.scalars(sa.select(Attendance.id).order_by(Attendance.id)).all()
        db.session.execute(
            sa.insert(attendance_interest),
            [{"attendance_id": a, "interest_id": t} for a in ids for t in rng.sample(topics, 2)],
        )
        pairs = set()
        while len(pairs) < attendees * per_person // 2:
            low, high = sorted(rng.sample(ids, 2))
            pairs.add((low, high))
        db.session.execute(
            sa.insert(Connection),
            [
                {
                    "event_id": event.id,
                    "low_attendance_id": low,
                    "high_attendance_id": high,
                    "requested_by_id": low,
                    "status": "accepted",
                    "created_at": now,
                    "accepted_at": now,
                }
                for low, high in pairs
            ],
        )
        db.session.commit()
        return event.id


def timed(client, path: str, rounds: int, headers=None, status: int = 200) -> tuple[float, int]:
    """Return the median seconds of `rounds` GETs of a path, and the last body's size."""
    client.get(path, headers=headers)  # warm: templates compiled, statements cached
    times = []
    size = 0
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == status, response.status_code
        size = len(response.data)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attendees", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=2, help="per person")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.database_url or f"sqlite:///{folder}/bench.sqlite"
        app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url, "WTF_CSRF_ENABLED": False})
        event_id = seed(app, options.attendees, options.connections)
        client = app.test_client()
        client.post("/login", data={"email": "organiser@rapport.example", "password": PASSWORD})
        table, table_bytes = timed(client, f"/organiser/events/{event_id}/live", options.rounds)
        path = f"/organiser/events/{event_id}/pictures/live"
        pictures, pictures_bytes = timed(client, path, options.rounds)
        tag = client.get(path).headers["ETag"]
        unchanged, _ = timed(client, path, options.rounds, {"If-None-Match": tag}, 304)
        with app.app_context():
            db.engine.dispose()
    pairs = options.attendees * options.connections // 2
    print(f"{options.attendees} attendees, ~{pairs} connections")
    print(
        f"attendee table fragment (baseline): {table * 1000:.0f} ms, {table_bytes / 1024:.0f} KiB"
    )
    kib = pictures_bytes / 1024
    print(f"pictures fragment:                  {pictures * 1000:.0f} ms, {kib:.0f} KiB")
    print(f"pictures unchanged (304):           {unchanged * 1000:.1f} ms")
    print(f"ratio pictures / table: {pictures / table:.2f}")
    print(
        "per minute on the event page: table 12 x = "
        f"{12 * table * 1000:.0f} ms, pictures 1 x = {pictures * 1000:.0f} ms "
        f"({pictures / (12 * table):.0%} of the table's)"
    )


if __name__ == "__main__":
    main()
