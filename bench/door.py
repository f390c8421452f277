"""A conference door on this machine: Rapport as `make run` serves it, against a bare insert.

    .venv/bin/python bench/door.py [--postgresql URL] [--threads 8] [--rounds 2] [--seconds 5]
                                   [--clients 16] [--rate 50] [--phones 2000] [--mixed-for 30]
                                   [--poll 5] [--people-poll 30]

For SQLite (a temporary file) and, with --postgresql, for PostgreSQL (that database is
created if missing and emptied), it migrates a fresh database with `flask db upgrade`,
seeds an organiser and an event happening now, and starts what `make run` starts: the
email worker (`flask outbox worker`, sending to a fake SendGrid on 127.0.0.1 that takes
--sendgrid-delay seconds a call) and gunicorn with --workers processes of --threads threads
(1: sync workers) serving Rapport (`app:create_app()`, behind PROXY_HOPS=1 so each simulated
phone has an address of its own); and, the same way, bench/bare.py (one `POST /insert`
that adds one row: the framework, server and database's own limit).

Every phone sends Accept-Encoding as Chrome on Android does (--accept-encoding) and reads
the body in whatever encoding came back; the run counts the encodings it got.

Closed loop: --clients threads, each with one request in flight, run each flow for
--seconds, in --rounds rounds; every round measures the bare insert first, and each flow's
ratio is its rate over the bare rate of the same round. Flows: a full check-in (GET the
form, POST it; CSRF and cookies as a phone has them), the badge page's first view, the
refresh of its own list unchanged (304) and changed (the fragment), the people to meet
(the page's other live half, rendered), a card (someone else's badge), a
connection request (open the card, POST its form with its CSRF token, follow the redirect
back to the card; each pair of phones once) and the organiser's refresh. Answers are
counted by status: a 304 is never counted as a 200.

Stalled connections: --workers connections that send half a request and wait, then
check-ins for --seconds: sync workers are each held by one; threaded workers are not.

Open loop, the issue's door: --phones phones that checked in beforehand each poll their
badge page's own list every --poll seconds and its people to meet every --people-poll
seconds, as the page does (If-None-Match, a new connection each time, as a phone whose
keep-alive lapsed), while --rate arrivals a second (a check-in, then its badge page) come
through the door, for --mixed-for seconds, all sent on schedule whatever the server's pace.
Latency counts from the scheduled time, so a queue shows; the schedule lag is how late the
driver started a request (its own threads busy). It reports the achieved rate (answered /
wall seconds, until the last answer), p50 and p99 per kind, answers by status, errors, and
whether it kept up: every request answered without error, the last within a second of the
schedule's end.

After each engine's run the database must hold exactly what the responses said: one
check-in per 303 to a badge, one connection per accepted request, one bare row per 201.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import itertools
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import brotli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from bench import bare  # noqa: E402
from domain.db import db, writing  # noqa: E402
from domain.events import EventDetails, create_event, wall_clock_now  # noqa: E402
from domain.limits import (  # noqa: E402
    CONNECTION_REQUESTS_PER_HOUR,
    LIVE_REFRESH_SECONDS,
    PEOPLE_REFRESH_SECONDS,
)
from domain.models import Attendance, Connection, OutboxMessage  # noqa: E402
from domain.organisers import create_organiser  # noqa: E402
from tests.fake_sendgrid import FakeSendGrid  # noqa: E402

SECRET_KEY = "bench-secret-" + "x" * 32
ORGANISER = "organiser@rapport.example"
PASSWORD = "correct horse battery"
INTERESTS = ["sourdough", "marathons", "chess", "travel in asia", "jazz", "go", "climbing"]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LOCAL = "127.0.0.1,localhost"
CHROME_ON_ANDROID = "gzip, deflate, br, zstd"
addresses = itertools.count(1)
people = itertools.count(1)


# ------------------------------------------------------------------ a phone over HTTP


class Encodings:
    """How the bodies that came back were encoded, counted over a run."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, encoding: str) -> None:
        with self.lock:
            self.counts[encoding] += 1

    def line(self) -> str:
        with self.lock:
            counts = dict(self.counts)
        return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"


encodings = Encodings()


def decode(body: bytes, encoding: str) -> str:
    if encoding == "br":
        return brotli.decompress(body).decode()
    if encoding == "gzip":
        return gzip.decompress(body).decode()
    return body.decode()


class Phone:
    """One phone: its own address, its own cookie, one keep-alive connection."""

    accept_encoding = CHROME_ON_ANDROID
    timeout = 60.0

    def __init__(self, port: int) -> None:
        self.port = port
        number = next(addresses)
        self.address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
        self.cookie = ""
        self.connection = self._connect()
        self.badge = ""
        self.etag = ""
        self.etags: dict[str, str] = {}  # per live half of the badge page
        # Its two halves may poll at once when the server runs late: one request at a time
        # on its connection, as a browser queues them.
        self.lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, dict[str, str], str]:
        with self.lock:
            return self._request(method, path, form, **headers)

    def _request(
        self, method: str, path: str, form: dict[str, str] | None = None, **headers: str
    ) -> tuple[int, dict[str, str], str]:
        body = urlencode(form) if form is not None else None
        sent = {"X-Forwarded-For": self.address, "Accept-Encoding": self.accept_encoding}
        sent.update(headers)
        if self.cookie:
            sent["Cookie"] = self.cookie
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=sent)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # The server closed a kept-alive connection: a phone opens a new one.
                self.connection.close()
                self.connection = self._connect()
                if attempt == 2:
                    raise
        encoding = response.getheader("Content-Encoding") or "identity"
        if raw:
            encodings.add(encoding)
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        text = decode(raw, encoding)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def follow(self, location: str) -> int:
        """GET where a redirect points, as a browser does; return the status."""
        return self.request("GET", location.replace(f"http://127.0.0.1:{self.port}", ""))[0]

    def hang_up(self) -> None:
        with self.lock:
            self.connection.close()


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


MINE, TO_MEET = "/live", "/live/people"  # the badge page's two live halves


def refresh(phone: Phone, half: str = MINE) -> str:
    """Poll one half of my badge as its page does; return the status, holding any new
    version."""
    held = phone.etags.get(half)
    status, headers, _ = phone.request(
        "GET", f"{phone.badge}{half}", **({"If-None-Match": held} if held else {})
    )
    if status == 200:  # something changed for them: hold the new version
        phone.etags[half] = headers.get("etag", "")
    return str(status)


# ------------------------------------------------------------------ measuring


@dataclass
class Tally:
    """Latencies, answers by status and errors of one kind of request."""

    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    last: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, answer: str, ok: bool, lag: float = 0.0) -> None:
        now = time.monotonic()
        with self.lock:
            self.latencies.append(now - started)
            self.lags.append(lag)
            self.answers[answer] += 1
            self.errors += not ok
            self.last = max(self.last, now)

    @staticmethod
    def percentile(values: list[float], share: float) -> float:
        ordered = sorted(values) or [0.0]
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

    def timing(self) -> str:
        p50 = statistics.median(self.latencies or [0.0]) * 1000
        p99 = self.percentile(self.latencies, 0.99) * 1000
        return f"p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"

    def statuses(self) -> str:
        return " ".join(f"{name}:{n}" for name, n in sorted(self.answers.items()))

    def line(self, name: str, seconds: float, bare_rate: float | None) -> str:
        rate = len(self.latencies) / seconds
        ratio = f"{rate / bare_rate:5.2f}x" if bare_rate else "      "
        return (
            f"  {name:28} {rate:7.1f}/s {ratio}  {self.timing()}  errors {self.errors}"
            f"  [{self.statuses()}]"
        )


# A step's answer: what came back (the last status, or a chain "303>200"), and whether it
# is what a working server says; None when the step has nothing left to do.
Answer = tuple[str, bool] | None


def closed_loop(clients: int, seconds: float, step: Callable[[int], Answer]) -> Tally:
    """Run `step(client)` in `clients` threads, one call in flight each, for `seconds`."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    def run(client: int) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                answer = step(client)
            except Exception as error:  # noqa: BLE001 - an error is counted, not fatal
                answer = (type(error).__name__, False)
            if answer is None:
                return
            tally.add(started, *answer)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def open_loop(
    schedule: list[tuple[float, str, Callable[[], Answer]]], driver_threads: int
) -> tuple[dict[str, Tally], float, float]:
    """Start each `(at, kind, call)` `at` seconds in, whatever the server's pace.

    Latency counts from the scheduled time. Returns the tallies by kind, the wall seconds
    from the start until the last answer, and the CPU seconds the driver itself used.
    """
    tallies: dict[str, Tally] = {kind: Tally() for _, kind, _ in schedule}
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    began = time.monotonic()

    def one(scheduled: float, tally: Tally, call: Callable[[], Answer]) -> None:
        lag = time.monotonic() - scheduled
        try:
            answer = call() or ("nothing", False)
        except Exception as error:  # noqa: BLE001
            answer = (type(error).__name__, False)
        tally.add(scheduled, *answer, lag=lag)

    with ThreadPoolExecutor(max_workers=driver_threads) as pool:
        for at, kind, call in sorted(schedule, key=lambda item: item[0]):
            scheduled = began + at
            time.sleep(max(0.0, scheduled - time.monotonic()))
            pool.submit(one, scheduled, tallies[kind], call)
    wall = max(t.last for t in tallies.values()) - began
    used = resource.getrusage(resource.RUSAGE_SELF)
    driver = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
    return tallies, wall, driver


# ------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    app_spec: str, port: int, env: dict[str, str], workers: int, threads: int
) -> subprocess.Popen:
    threaded = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
    server = subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "--workers",
            str(workers),
            *threaded,
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


def email_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start the email worker as `make run` does."""
    with log.open("w") as out:
        return subprocess.Popen(  # noqa: S603
            [str(ROOT / ".venv/bin/flask"), "--app", "app", "outbox", "worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


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


def held_in_database(url: str, event_id: int) -> tuple[int, int, int]:
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        checked_in = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Attendance)
            .where(Attendance.event_id == event_id)
        )
        connected = db.session.scalar(sa.select(sa.func.count()).select_from(Connection))
        queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
        db.engine.dispose()
    return checked_in or 0, connected or 0, queued or 0


# ------------------------------------------------------------------ one engine


@dataclass
class Door:
    """One engine's servers and what their answers promised the database holds."""

    args: argparse.Namespace
    poster: str
    rapport_port: int
    bare_port: int
    checked_in: int = 0
    connected: int = 0
    inserted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arrive(self) -> Phone | None:
        """Check a new phone in; return it when that led to its badge."""
        phone = Phone(self.rapport_port)
        ok = check_in(phone, self.poster)
        with self.lock:
            self.checked_in += ok
        return phone if ok else None

    def insert(self, phone: Phone) -> Answer:
        status = phone.request("POST", "/insert")[0]
        with self.lock:
            self.inserted += status == 201
        return str(status), status == 201

    def connect(self, asker: Phone, owner: Phone) -> Answer:
        """Open their card, POST its connect form with its CSRF token, follow the redirect."""
        status, _, page = asker.request("GET", owner.badge)
        token = CSRF.search(page)
        if status != 200 or token is None:
            return f"card {status}", False
        status, headers, _ = asker.request(
            "POST", f"{owner.badge}/connect", {"csrf_token": token.group(1)}
        )
        with self.lock:
            self.connected += status == 303
        if status != 303:
            return str(status), False
        shown = asker.follow(headers.get("location", ""))
        return f"303>{shown}", shown == 200


def one_round(door: Door, organiser: Phone, live: str, round_number: int) -> None:
    args = door.args
    print(f" round {round_number}")
    bare_phones = [Phone(door.bare_port) for _ in range(args.clients)]
    bare_tally = closed_loop(args.clients, args.seconds, lambda c: door.insert(bare_phones[c]))
    bare_rate = len(bare_tally.latencies) / args.seconds
    print(bare_tally.line("bare insert", args.seconds, None))
    mine: list[list[Phone]] = [[] for _ in range(args.clients)]

    def arrive(client: int) -> Answer:
        phone = door.arrive()
        if phone is None:
            return "no badge", False
        mine[client].append(phone)
        return "200>303", True

    def cycle(client: int) -> Phone:
        phones = mine[client]
        phone = phones.pop(0)
        phones.append(phone)
        return phone

    def badge(client: int) -> Answer:
        phone = cycle(client)
        status = phone.request("GET", phone.badge)[0]
        return str(status), status == 200

    def refresh_unchanged(client: int) -> Answer:
        answer = refresh(cycle(client))
        return answer, answer in ("200", "304")

    def refresh_changed(client: int) -> Answer:
        phone = cycle(client)
        status = phone.request("GET", f"{phone.badge}{MINE}")[0]
        return str(status), status == 200

    def people_changed(client: int) -> Answer:
        phone = cycle(client)
        status = phone.request("GET", f"{phone.badge}{TO_MEET}")[0]
        return str(status), status == 200

    def card(client: int) -> Answer:
        viewer, owner = mine[client][0], cycle(client)
        status = viewer.request("GET", owner.badge)[0]
        return str(status), status == 200

    # Each client's phones ask each other, each pair once, each phone no more often than a
    # person may in an hour (past that Rapport refuses, rightly); a client out of pairs stops.
    pairs: dict[int, Iterator[tuple[Phone, Phone]]] = {}

    def within_the_cap(phones: list[Phone]) -> Iterator[tuple[Phone, Phone]]:
        asked = Counter[int]()
        for asker, owner in itertools.combinations(phones, 2):
            if asked[id(asker)] < CONNECTION_REQUESTS_PER_HOUR:
                asked[id(asker)] += 1
                yield asker, owner

    def connect(client: int) -> Answer:
        pair = next(pairs[client], None)
        return None if pair is None else door.connect(*pair)

    def organiser_refresh(client: int) -> Answer:
        status, headers, _ = organiser.request(
            "GET", live, **({"If-None-Match": organiser.etag} if organiser.etag else {})
        )
        if status == 200:
            organiser.etag = headers.get("etag", "")
        return str(status), status in (200, 304)

    flows: list[tuple[str, Callable[[int], Answer]]] = [
        ("check-in (GET + POST)", arrive),
        ("badge, first view", badge),
        ("badge refresh, unchanged", refresh_unchanged),
        ("badge refresh, changed", refresh_changed),
        ("people to meet, changed", people_changed),
        ("card", card),
        ("connect (card, POST, card)", connect),
    ]
    for name, step in flows:
        if step is refresh_unchanged:
            # Each phone holds its page's version, as a page that has loaded does.
            for phones in mine:
                for phone in phones:
                    refresh(phone)
        if step is connect:
            pairs.update({c: within_the_cap(list(mine[c])) for c in range(len(mine))})
        tally = closed_loop(args.clients, args.seconds, step)
        print(tally.line(name, args.seconds, bare_rate))
    tally = closed_loop(1, args.seconds, organiser_refresh)
    print(tally.line("organiser refresh (1 tab)", args.seconds, bare_rate))


def stalled(door: Door) -> None:
    """Hold --workers connections with half a request each, then check people in."""
    args = door.args
    holds = []
    for _ in range(args.workers):
        hold = socket.create_connection(("127.0.0.1", door.rapport_port))
        hold.sendall(b"GET /e/" + door.poster.encode() + b" HTTP/1.1\r\nHost: door\r\n")
        holds.append(hold)
    time.sleep(0.5)
    Phone.timeout = 5.0  # a phone at the door gives up, it does not wait for a timeout
    try:

        def arrive(_client: int) -> Answer:
            phone = door.arrive()
            return ("200>303", True) if phone else ("no badge", False)

        tally = closed_loop(args.workers, args.seconds, arrive)
    finally:
        Phone.timeout = 60.0
        for hold in holds:
            hold.close()
    print(
        f" {args.workers} stalled connections (half a request each), then check-ins "
        f"from {args.workers} clients for {args.seconds:g} s:"
    )
    print(tally.line("check-in beside stalls", args.seconds, None))


def mixed(door: Door) -> None:
    """The issue's door: polling phones and arrivals together, on schedule."""
    args = door.args
    began = time.monotonic()
    pollers: list[Phone] = []
    seats = itertools.count()
    lock = threading.Lock()

    def seat(_client: int) -> Answer:
        with lock:
            if next(seats) >= args.phones:
                return None
        phone = door.arrive()
        if phone is None:
            return "no badge", False
        refresh(phone)  # the badge page has loaded: it holds the versions of its halves
        refresh(phone, TO_MEET)
        phone.hang_up()
        with lock:
            pollers.append(phone)
        return "ok", True

    seated = closed_loop(args.clients, 3600, seat)
    print(
        f" open loop: {len(pollers)} phones checked in first "
        f"({time.monotonic() - began:.0f} s, errors {seated.errors})"
    )

    def poll(phone: Phone, half: str) -> Callable[[], Answer]:
        def call() -> Answer:
            try:
                answer = refresh(phone, half)
            finally:
                phone.hang_up()  # its keep-alive lapses before the next poll
            return answer, answer in ("200", "304")

        return call

    def arrival() -> Answer:
        phone = door.arrive()
        if phone is None:
            return "no badge", False
        status = phone.request("GET", phone.badge)[0]
        phone.hang_up()
        return f"303>{status}", status == 200

    schedule: list[tuple[float, str, Callable[[], Answer]]] = []
    for n, phone in enumerate(pollers):
        for kind, half, every in (
            ("badge poll", MINE, args.poll),
            ("people poll", TO_MEET, args.people_poll),
        ):
            first = n * every / max(1, len(pollers))
            schedule += [
                (at, kind, poll(phone, half))
                for at in itertools.takewhile(
                    lambda at: at < args.mixed_for, itertools.count(first, every)
                )
            ]
    arrivals = int(args.rate * args.mixed_for)
    schedule += [(n / args.rate, "door arrival", arrival) for n in range(arrivals)]
    tallies, wall, driver = open_loop(schedule, args.driver_threads)
    polls = len(pollers) / args.poll + len(pollers) / args.people_poll
    print(
        f" open loop: {len(pollers)} phones polling their own list every {args.poll:g} s and "
        f"the people to meet every {args.people_poll:g} s ({polls:.0f}/s) "
        f"+ {args.rate:g} arrivals/s (check-in + badge), {args.mixed_for:g} s"
    )
    kept_up = True
    for kind, tally in tallies.items():
        scheduled = sum(1 for _, k, _ in schedule if k == kind)
        answered = len(tally.latencies)
        lag50 = statistics.median(tally.lags or [0.0]) * 1000
        lag99 = Tally.percentile(tally.lags, 0.99) * 1000
        kept_up &= tally.errors == 0 and answered == scheduled
        print(
            f"  {kind:14} scheduled {scheduled / args.mixed_for:6.1f}/s, achieved "
            f"{answered / wall:6.1f}/s  {tally.timing()}  errors {tally.errors}"
            f"  [{tally.statuses()}]  schedule lag p50 {lag50:.0f} ms p99 {lag99:.0f} ms"
        )
    late = wall - args.mixed_for
    kept_up &= late <= 1.0
    print(
        f"  last answer {late:+.1f} s after the schedule's end; driver used "
        f"{driver:.1f} CPU-s of {wall * (os.cpu_count() or 1):.0f}; "
        + ("KEPT UP" if kept_up else "DID NOT KEEP UP")
    )


def run_engine(url: str, args: argparse.Namespace) -> None:
    engine = url.split(":", 1)[0].split("+", 1)[0]
    poster, event_id = prepare(url)
    bare.reset(url)
    door = Door(args, poster, free_port(), free_port())
    servers: list[subprocess.Popen] = []
    with FakeSendGrid(delay=args.sendgrid_delay) as sendgrid, tempfile.TemporaryDirectory() as logs:
        env = {
            **os.environ,
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "PUBLIC_URL": f"http://127.0.0.1:{door.rapport_port}",
            "PROXY_HOPS": "1",
            "RATELIMIT_STORAGE_URI": "memory://",
            "SENDGRID_API_KEY": sendgrid.api_key,
            "SENDGRID_API_HOST": sendgrid.url,
            "MAIL_POSTAL_ADDRESS": "1 Bench Street, Testville",
            "NO_PROXY": LOCAL,
            "no_proxy": LOCAL,
        }
        worker_log = Path(logs) / "worker.log"
        try:
            servers.append(email_worker(env, worker_log))
            servers.append(
                serve("app:create_app()", door.rapport_port, env, args.workers, args.threads)
            )
            servers.append(
                serve("bench.bare:create_app()", door.bare_port, env, args.workers, args.threads)
            )
            organiser = Phone(door.rapport_port)
            _, _, page = organiser.request("GET", "/login")
            organiser.request(
                "POST",
                "/login",
                {
                    "csrf_token": CSRF.search(page).group(1),
                    "email": ORGANISER,
                    "password": PASSWORD,
                },  # type: ignore[union-attr]
            )
            live = f"/organiser/events/{event_id}/live"
            kind = f"{args.threads} threads" if args.threads > 1 else "sync"
            print(
                f"\n{engine}: gunicorn --workers {args.workers} ({kind}) each, the email worker "
                f"(fake SendGrid, {args.sendgrid_delay * 1000:.0f} ms a call), "
                f"{args.clients} clients, Accept-Encoding: {Phone.accept_encoding}"
            )
            for round_number in range(1, args.rounds + 1):
                one_round(door, organiser, live, round_number)
            if args.stalls:
                stalled(door)
            if args.phones or args.rate:
                mixed(door)
        finally:
            for server in reversed(servers):
                server.send_signal(signal.SIGTERM)
            for server in servers:
                server.wait(timeout=60)
        worker_said = [line for line in worker_log.read_text().splitlines() if "outbox:" in line]
        emails = len(sendgrid.requests)
    held = held_in_database(url, event_id)
    rows = bare.rows(url)
    holds = held[:2] == (door.checked_in, door.connected) and rows == door.inserted
    print(
        f" database {'holds' if holds else 'DIFFERS'}: {held[0]} check-ins "
        f"({door.checked_in} answered), {held[1]} connections ({door.connected} answered), "
        f"{rows} bare rows ({door.inserted} answered)"
    )
    print(
        f" emails: {held[2]} queued, {emails} accepted by the fake SendGrid"
        + (" (the rest still queued when the worker stopped); " if emails < held[2] else "; ")
        + (worker_said[-1].strip() if worker_said else "the worker said nothing")
    )
    print(
        f" response bodies by Content-Encoding: {encodings.line()} "
        "(Rapport compresses bodies of 1 KB and more itself; 304s have none)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--postgresql", help="a PostgreSQL URL to run on as well")
    parser.add_argument(
        "--skip-sqlite", action="store_true", help="run on PostgreSQL only (with --postgresql)"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="per worker; 1: sync workers")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--no-stalls", dest="stalls", action="store_false")
    parser.add_argument("--rate", type=float, default=50, help="door arrivals a second")
    parser.add_argument("--phones", type=int, default=2000, help="phones polling their badge")
    parser.add_argument(
        "--poll", type=float, default=LIVE_REFRESH_SECONDS, help="seconds between own-list polls"
    )
    parser.add_argument(
        "--people-poll",
        type=float,
        default=PEOPLE_REFRESH_SECONDS,
        help="seconds between polls of the people to meet",
    )
    parser.add_argument("--mixed-for", type=float, default=30)
    parser.add_argument("--driver-threads", type=int, default=512)
    parser.add_argument("--sendgrid-delay", type=float, default=0.05)
    parser.add_argument("--accept-encoding", default=CHROME_ON_ANDROID)
    args = parser.parse_args()
    Phone.accept_encoding = args.accept_encoding
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start")
    if not (args.skip_sqlite and args.postgresql):
        with tempfile.TemporaryDirectory() as scratch:
            run_engine(f"sqlite:///{scratch}/door.sqlite", args)
    if args.postgresql:
        run_engine(args.postgresql, args)
    print(f"load {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
