"""A conference door on this machine: Rapport as `make run` serves it, against a bare insert.

    .venv/bin/python bench/door.py [--postgresql URL] [--rounds 2] [--seconds 5]
                                   [--clients 16] [--rate 50] [--arrivals-for 20]

For SQLite (a temporary file) and, with --postgresql, for PostgreSQL (that database is
created if missing and emptied), it migrates a fresh database with `flask db upgrade`,
seeds an organiser and an event happening now, and starts two gunicorn servers with
--workers processes each: Rapport (`app:create_app()`, as `make run` starts it, behind
PROXY_HOPS=1 so each simulated phone has an address of its own) and bench/bare.py (one
`POST /insert` that adds one row: the framework, server and database's own limit).

Closed loop: --clients threads, each with one request in flight, run each flow for
--seconds, in --rounds rounds; every round measures the bare insert first, and each flow's
ratio is its rate over the bare rate of the same round. Flows: a full check-in (GET the
form, POST it; CSRF and cookies as a phone has them), the badge page's first view, its
refresh unchanged (304) and changed (the fragment), a card (someone else's badge), a
connection request, and the organiser's refresh.

Open loop: --rate arrivals a second for --arrivals-for seconds, each a check-in followed by
its badge page, sent on schedule whatever the server's pace; each latency is counted from
the arrival's scheduled time, so a queue shows.

After each engine's run the database must hold exactly what the responses said: one
check-in per 303 to a badge, one connection per accepted request, one bare row per 201.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from bench import bare  # noqa: E402
from domain.db import db, writing  # noqa: E402
from domain.events import EventDetails, create_event, wall_clock_now  # noqa: E402
from domain.models import Attendance, Connection  # noqa: E402
from domain.organisers import create_organiser  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
ORGANISER = "organiser@rapport.example"
PASSWORD = "correct horse battery"
INTERESTS = ["sourdough", "marathons", "chess", "travel in asia", "jazz", "go", "climbing"]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
addresses = itertools.count(1)
people = itertools.count(1)


# ------------------------------------------------------------------ a phone over HTTP


class Phone:
    """One phone: its own address, its own cookie, one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        number = next(addresses)
        self.address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
        self.cookie = ""
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.badge = ""
        self.etag = ""

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, dict[str, str], str]:
        body = urlencode(form) if form is not None else None
        sent = {"X-Forwarded-For": self.address, "Accept-Encoding": "identity", **headers}
        if self.cookie:
            sent["Cookie"] = self.cookie
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=sent)
                response = self.connection.getresponse()
                text = response.read().decode()
                break
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def check_in(phone: Phone, poster: str) -> bool:
    """GET the poster's form and POST it as someone new; True when it led to a badge."""
    status, _, page = phone.request("GET", f"/e/{poster}")
    token = CSRF.search(page)
    if status != 200 or token is None:
        return False
    number = next(people)
    status, headers, _ = phone.request(
        "POST",
        f"/e/{poster}",
        {
            "csrf_token": token.group(1),
            "name": f"Guest {number}",
            "email": f"guest{number}@example.org",
            "interests": ", ".join(INTERESTS[number % 7 : number % 7 + 2]),
            "share_profile": "y",
            "want_followups": "y",
        },
    )
    phone.badge = headers.get("location", "").replace(f"http://127.0.0.1:{phone.port}", "")
    return status == 303 and phone.badge.startswith("/b/")


# ------------------------------------------------------------------ measuring


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, ok: bool) -> None:
        with self.lock:
            self.latencies.append(time.monotonic() - started)
            self.errors += not ok

    def line(self, name: str, seconds: float, bare_rate: float | None) -> str:
        rate = len(self.latencies) / seconds
        ordered = sorted(self.latencies) or [0.0]
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        ratio = f"{rate / bare_rate:5.2f}x" if bare_rate else "      "
        return (
            f"  {name:28} {rate:7.1f}/s {ratio}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"  errors {self.errors}"
        )


def closed_loop(clients: int, seconds: float, step: Callable[[int], bool]) -> Tally:
    """Run `step(client)` in `clients` threads, one call in flight each, for `seconds`."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    def run(client: int) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                ok = step(client)
            except Exception:  # noqa: BLE001 - an error is counted, not fatal
                ok = False
            tally.add(started, ok)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def open_loop(rate: float, seconds: float, arrive: Callable[[], bool]) -> tuple[Tally, float]:
    """Start `arrive()` `rate` times a second on schedule; latency from the scheduled time."""
    tally = Tally()
    total = int(rate * seconds)
    began = time.monotonic()

    def one(scheduled: float) -> None:
        try:
            ok = arrive()
        except Exception:  # noqa: BLE001
            ok = False
        tally.add(scheduled, ok)

    with ThreadPoolExecutor(max_workers=256) as pool:
        for n in range(total):
            scheduled = began + n / rate
            time.sleep(max(0.0, scheduled - time.monotonic()))
            pool.submit(one, scheduled)
    # The rate the arrivals were all answered at: below the schedule's, a queue grew.
    finished = time.monotonic() - began
    return tally, total / finished


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app_spec: str, port: int, env: dict[str, str], workers: int) -> subprocess.Popen:
    server = subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app_spec,
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{app_spec} did not start")


def create_database(url: str) -> None:
    """Create a PostgreSQL database if it does not exist yet."""
    target = sa.make_url(url)
    server = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            connection.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    server.dispose()


def prepare(url: str) -> tuple[str, int]:
    """Migrate a fresh database, seed an organiser and an event; return its poster, id."""
    if url.startswith("postgresql"):
        create_database(url)
    env = {**os.environ, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": url}
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()
    subprocess.run(  # noqa: S603
        [str(ROOT / ".venv/bin/flask"), "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    with app.app_context(), writing():
        organiser = create_organiser(ORGANISER, PASSWORD)
        start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
        event = create_event(
            organiser,
            EventDetails(
                name="Door bench",
                starts_at=start,
                ends_at=start + timedelta(hours=8),
                timezone="Europe/London",
                venue="Hall",
                description="",
            ),
        )
        db.session.commit()
        poster, event_id = event.checkin_token, event.id
        db.session.remove()
        db.engine.dispose()
    return poster, event_id


def held_in_database(url: str, event_id: int) -> tuple[int, int]:
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        checked_in = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .where(Attendance.event_id == event_id)
        )
        connected = db.session.scalar(sa.select(sa.func.count()).select_from(Connection))
        db.engine.dispose()
    return checked_in or 0, connected or 0


# ------------------------------------------------------------------ one engine


def run_engine(url: str, args: argparse.Namespace) -> None:
    engine = url.split(":", 1)[0].split("+", 1)[0]
    poster, event_id = prepare(url)
    bare.reset(url)
    rapport_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": url,
        "PUBLIC_URL": f"http://127.0.0.1:{rapport_port}",
        "PROXY_HOPS": "1",
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    servers = [
        serve("app:create_app()", rapport_port, env, args.workers),
        serve("bench.bare:create_app()", bare_port, env, args.workers),
    ]
    checked_in = connected = inserted = 0
    counter_lock = threading.Lock()
    try:
        organiser = Phone(rapport_port)
        _, _, page = organiser.request("GET", "/login")
        organiser.request(
            "POST",
            "/login",
            {"csrf_token": CSRF.search(page).group(1), "email": ORGANISER, "password": PASSWORD},  # type: ignore[union-attr]
        )
        live = f"/organiser/events/{event_id}/live"
        print(f"\n{engine}: gunicorn --workers {args.workers} each, {args.clients} clients")

        def one_round(round_number: int) -> None:
            nonlocal checked_in, connected, inserted
            print(f" round {round_number}")
            bare_phones = [Phone(bare_port) for _ in range(args.clients)]

            def insert(client: int) -> bool:
                nonlocal inserted
                ok = bare_phones[client].request("POST", "/insert")[0] == 201
                with counter_lock:
                    inserted += ok
                return ok

            bare_tally = closed_loop(args.clients, args.seconds, insert)
            bare_rate = len(bare_tally.latencies) / args.seconds
            print(bare_tally.line("bare insert", args.seconds, None))
            mine: list[list[Phone]] = [[] for _ in range(args.clients)]

            def arrive(client: int) -> bool:
                nonlocal checked_in
                phone = Phone(rapport_port)
                ok = check_in(phone, poster)
                if ok:
                    mine[client].append(phone)
                    with counter_lock:
                        checked_in += 1
                return ok

            def cycle(client: int) -> Phone:
                phones = mine[client]
                phone = phones.pop(0)
                phones.append(phone)
                return phone

            def badge(client: int) -> bool:
                phone = cycle(client)
                return phone.request("GET", phone.badge)[0] == 200

            def refresh_unchanged(client: int) -> bool:
                phone = cycle(client)
                status, headers, _ = phone.request(
                    "GET", f"{phone.badge}/live", **{"If-None-Match": phone.etag}
                )
                if status == 200:  # something changed for them: hold the new version
                    phone.etag = headers.get("etag", "")
                return status in (200, 304)

            def refresh_changed(client: int) -> bool:
                phone = cycle(client)
                return phone.request("GET", f"{phone.badge}/live")[0] == 200

            def card(client: int) -> bool:
                viewer, owner = mine[client][0], cycle(client)
                return viewer.request("GET", owner.badge)[0] == 200

            # Each client's phones ask each other, each pair once.
            pairs = {c: itertools.combinations(list(mine[c]), 2) for c in range(args.clients)}

            def connect(client: int) -> bool:
                nonlocal connected
                asker, owner = next(pairs[client])
                _, _, page = asker.request("GET", owner.badge)
                token = CSRF.search(page)
                status = asker.request(
                    "POST",
                    f"{owner.badge}/connect",
                    {"csrf_token": token.group(1) if token else ""},
                )[0]
                with counter_lock:
                    connected += status == 303
                return status == 303

            def organiser_refresh(client: int) -> bool:
                if client:  # one organiser's tab, polled as fast as it answers
                    time.sleep(args.seconds)
                    return True
                status, headers, _ = organiser.request(
                    "GET", live, **({"If-None-Match": organiser.etag} if organiser.etag else {})
                )
                if status == 200:
                    organiser.etag = headers.get("etag", "")
                return status in (200, 304)

            flows: list[tuple[str, Callable[[int], bool]]] = [
                ("check-in (GET + POST)", arrive),
                ("badge, first view", badge),
                ("badge refresh, unchanged", refresh_unchanged),
                ("badge refresh, changed", refresh_changed),
                ("card", card),
                ("connect", connect),
            ]
            for name, step in flows:
                if step is refresh_unchanged:
                    # Each phone holds its page's version, as a page that has loaded does.
                    for phones in mine:
                        for phone in phones:
                            got = phone.request("GET", f"{phone.badge}/live")[1]
                            phone.etag = got.get("etag", "")
                if step is connect:
                    pairs.update({c: itertools.combinations(list(mine[c]), 2) for c in pairs})
                tally = closed_loop(args.clients, args.seconds, step)
                print(tally.line(name, args.seconds, bare_rate))
            tally = closed_loop(1, args.seconds, organiser_refresh)
            print(tally.line("organiser refresh (1 tab)", args.seconds, bare_rate))

        for round_number in range(1, args.rounds + 1):
            one_round(round_number)

        def door_arrival() -> bool:
            nonlocal checked_in
            phone = Phone(rapport_port)
            ok = check_in(phone, poster)
            with counter_lock:
                checked_in += ok
            return ok and phone.request("GET", phone.badge)[0] == 200

        tally, achieved = open_loop(args.rate, args.arrivals_for, door_arrival)
        print(
            f" open loop, {args.rate:g} arrivals/s for {args.arrivals_for:g} s "
            f"(check-in + badge): all answered at {achieved:.1f}/s"
        )
        print(tally.line("arrival", args.arrivals_for, None))
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
    held = held_in_database(url, event_id)
    rows = bare.rows(url)
    verdict = "holds" if held == (checked_in, connected) and rows == inserted else "DIFFERS"
    print(
        f" database {verdict}: {held[0]} check-ins ({checked_in} answered), "
        f"{held[1]} connections ({connected} answered), {rows} bare rows ({inserted} answered)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgresql", help="a PostgreSQL URL to run on as well")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--arrivals-for", type=float, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as scratch:
        run_engine(f"sqlite:///{scratch}/door.sqlite", args)
    if args.postgresql:
        run_engine(args.postgresql, args)
    print(f"load {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
