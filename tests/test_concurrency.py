"""Check-ins that arrive at the same moment: real threads, real processes, a real database.

Runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is set. Nothing is
mocked: the domain tests use one app context (one session) per thread, and the HTTP test
starts gunicorn with several worker processes and threads and checks people in through it.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

import app as app_module
from app import create_app
from domain.checkin import CheckInError, Profile, check_in
from domain.db import db, writing
from domain.events import EventDetails, create_event, wall_clock_now
from domain.models import Attendance, Event, Interest, Person, attendance_interest
from domain.organisers import create_organiser
from domain.tokens import new_token

ROOT = Path(app_module.__file__).resolve().parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SECRET_KEY = "test-secret-" + "x" * 32
WAIT = 60  # seconds: the most any thread, request or subprocess may take here

T = TypeVar("T")
R = TypeVar("R")


# ------------------------------------------------------------------ threads, at once


@dataclass
class Outcome:
    """What one thread got back: a check-in, or the exception it raised."""

    attendance_id: int | None = None
    badge_token: str | None = None
    created: bool | None = None
    error: BaseException | None = None


def at_once(count: int, prepare: Callable[[int], T], act: Callable[[T], R]) -> list[R]:
    """In `count` threads, prepare(i) each, then act on it all together, past one barrier.

    Returns what each act returned; fails on the first exception any thread raised.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            prepared = prepare(index)
            barrier.wait(WAIT)
            results[index] = act(prepared)
        except BaseException as error:  # reported below, in the main thread
            failures.append(error)
            barrier.abort()  # no thread is left waiting for one that failed

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * WAIT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads still running"
    first = [f for f in failures if not isinstance(f, threading.BrokenBarrierError)]
    if first or failures:
        raise (first or failures)[0]
    return results


def check_in_thread(
    app: Flask, event_id: int, profile: Profile, device_secret: str
) -> Callable[[], Outcome]:
    """One phone's check-in, in its own app context and session, as the view does it."""

    def work() -> Outcome:
        with app.app_context():
            try:
                with writing():
                    event = db.session.get_one(Event, event_id)
                    result = check_in(event, profile, device_secret=device_secret)
                    db.session.commit()
                    return Outcome(result.attendance.id, result.badge_token, result.created)
            except BaseException as error:
                db.session.rollback()
                return Outcome(error=error)
            finally:
                db.session.remove()

    return work


def count(model: Any, *where: Any) -> int:
    statement = sa.select(sa.func.count()).select_from(model)
    return db.session.scalar(statement.where(*where) if where else statement)


def fresh_event_id(make_event: Callable[..., Event]) -> int:
    event_id = make_event().id
    db.session.remove()  # the main thread holds no transaction while the threads run
    return event_id


THREADS = 20


def test_double_tap_from_one_phone_checks_in_once(app: Flask, make_event: Any) -> None:
    event_id = fresh_event_id(make_event)
    device = new_token()
    profile = Profile(name="Ana", email="ana@example.org", interests=["chess", "sourdough"])
    work = check_in_thread(app, event_id, profile, device)

    outcomes = at_once(THREADS, lambda _: work, lambda work: work())

    assert [o.error for o in outcomes if o.error] == []
    assert len({o.attendance_id for o in outcomes}) == 1
    assert len({o.badge_token for o in outcomes}) == 1
    assert sum(bool(o.created) for o in outcomes) == 1
    assert count(Person) == 1
    assert count(Attendance) == 1
    assert count(Attendance, Attendance.event_id == event_id) == 1
    assert count(Interest) == 2
    assert count(attendance_interest) == 2


def test_same_email_from_many_phones_checks_in_once(app: Flask, make_event: Any) -> None:
    event_id = fresh_event_id(make_event)
    profile = Profile(name="Ana", email="ana@example.org")
    works = [check_in_thread(app, event_id, profile, new_token()) for _ in range(THREADS)]

    outcomes = at_once(THREADS, lambda i: works[i], lambda work: work())

    created = [o for o in outcomes if o.error is None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert len(created) == 1, [o.error for o in outcomes]
    assert created[0].created is True
    assert all(isinstance(e, CheckInError) for e in refused), refused
    assert {e.code for e in refused if isinstance(e, CheckInError)} <= {"checked_in_elsewhere"}
    assert len(refused) == THREADS - 1
    assert count(Person) == 1
    assert count(Attendance) == 1
    assert db.session.scalar(sa.select(Attendance.id)) == created[0].attendance_id


def test_shared_interests_in_any_order_check_everyone_in(app: Flask, make_event: Any) -> None:
    """People at one event pick the same popular interests, listed in different orders."""
    event_id = fresh_event_id(make_event)
    tags = ["sourdough", "chess", "marathons", "travel in asia"]
    works = [
        check_in_thread(
            app,
            event_id,
            Profile(
                name=f"Person {i}",
                email=f"person{i}@example.org",
                interests=tags if i % 2 else list(reversed(tags)),
            ),
            new_token(),
        )
        for i in range(THREADS)
    ]

    outcomes = at_once(THREADS, lambda i: works[i], lambda work: work())

    assert [o.error for o in outcomes if o.error] == []
    assert all(o.created for o in outcomes)
    assert count(Attendance) == THREADS
    assert count(Interest) == len(tags)
    assert count(attendance_interest) == THREADS * len(tags)


# ------------------------------------------------------------------ through gunicorn


def make_run_setting(name: str) -> int:
    """Return a default of the Makefile (`NAME ?= 4`): these tests serve as `make run` does."""
    found = re.search(rf"^{name} \?= (\d+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, f"no {name} in the Makefile"
    return int(found.group(1))


PEOPLE = 50
GUNICORN_WORKERS = make_run_setting("WORKERS")
GUNICORN_THREADS = make_run_setting("THREADS")
CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
VALUE = re.compile(r'value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def app_environment(database_url: str, public_url: str) -> dict[str, str]:
    """The environment a deployed Rapport reads its settings from, and nothing else of ours."""
    environment = {
        key: value for key, value in os.environ.items() if key not in app_module.ENVIRONMENT_KEYS
    }
    environment.update(SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url, PUBLIC_URL=public_url)
    return environment


@dataclass
class Phone:
    """A phone's browser: its own cookies, plain HTTP/1.1 to the server."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, str]:
        headers: dict[str, str] = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return response.status, response.headers, text


@dataclass
class Gunicorn:
    url: str
    port: int
    database_url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_until_serving(process: subprocess.Popen[bytes], server: Gunicorn) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert process.poll() is None, "gunicorn exited:\n" + server.log_text()
        try:
            status, _, _ = Phone(server.port).request("GET", "/")
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return
        time.sleep(0.1)
    pytest.fail("gunicorn did not answer within the time limit:\n" + server.log_text())


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


@pytest.fixture
def gunicorn(request: pytest.FixtureRequest, tmp_path: Path) -> Gunicorn:
    """Rapport under gunicorn, on a database built by the real migrations."""
    database_url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'rapport.sqlite'}"
    if database_url.startswith("postgresql"):
        engine = sa.create_engine(database_url)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        finally:
            engine.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = app_environment(database_url, url)
    migrated = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    server = Gunicorn(url, port, database_url, tmp_path / "gunicorn.log")
    with server.log.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(GUNICORN_WORKERS),
                "--worker-class",
                "gthread",
                "--threads",
                str(GUNICORN_THREADS),
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "--timeout",
                str(WAIT),
                "--no-control-socket",
                "--worker-tmp-dir",
                str(tmp_path),
                "app:create_app()",
            ],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    request.addfinalizer(lambda: stop(process))
    wait_until_serving(process, server)
    return server


@pytest.fixture
def database_app(gunicorn: Gunicorn) -> Iterator[Flask]:
    """This process's view of the database gunicorn serves: to seed it and count rows."""
    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": gunicorn.database_url,
            "PUBLIC_URL": gunicorn.url,
        }
    )
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def csrf_token(html: str) -> str:
    tag = CSRF_INPUT.search(html)
    assert tag, "no CSRF token in the page"
    value = VALUE.search(tag.group(0))
    assert value
    return value.group(1)


def door_rush() -> tuple[int, str]:
    """Make an event happening now; return its id and its poster's check-in path."""
    start = wall_clock_now("Europe/London").replace(microsecond=0) - timedelta(hours=1)
    with writing():
        organiser = create_organiser("organiser@example.org", "correct horse battery")
        event = create_event(
            organiser,
            EventDetails("Door rush", start, start + timedelta(hours=3), "Europe/London"),
        )
        db.session.commit()
        event_id, path = event.id, f"/e/{event.checkin_token}"
    db.session.remove()
    return event_id, path


def test_fifty_people_check_in_at_once_through_gunicorn(
    gunicorn: Gunicorn, database_app: Flask
) -> None:
    event_id, path = door_rush()

    tags = ["sourdough", "chess", "marathons"]

    def open_form(index: int) -> tuple[Phone, dict[str, str]]:
        phone = Phone(gunicorn.port)
        status, _, page = phone.request("GET", path)
        assert status == 200, page
        return phone, {
            "csrf_token": csrf_token(page),
            "name": f"Person {index}",
            "email": f"person{index}@example.org",
            "about": "Here for the talks",
            "interests": ", ".join([*tags, f"topic {index}"]),
            "talk_about": "",
            "links": "",
            "share_profile": "y",
        }

    def tap_check_in(prepared: tuple[Phone, dict[str, str]]) -> tuple[int, str]:
        phone, form = prepared
        status, headers, body = phone.request("POST", path, form)
        return status, headers.get("Location") or body[:500]

    # Everyone has the form open; all tap "Check in" together.
    results = at_once(PEOPLE, open_form, tap_check_in)

    log = gunicorn.log_text()
    assert "database is locked" not in log, log
    assert "Traceback" not in log, log
    assert "Exception on" not in log, log
    assert [r for r in results if r[0] != 303] == []
    locations = [urlsplit(location).path for _, location in results]
    assert all(location.startswith("/b/") for location in locations), locations
    assert len(set(locations)) == PEOPLE
    assert count(Attendance, Attendance.event_id == event_id) == PEOPLE
    assert count(Person) == PEOPLE
    assert count(Interest) == len(tags) + PEOPLE
    assert count(attendance_interest) == PEOPLE * (len(tags) + 1)

    # CSRF protection was on, as deployed: the same form without its token is refused.
    phone, form = open_form(PEOPLE)
    del form["csrf_token"]
    status, _, _ = phone.request("POST", path, form)
    assert status == 400
    assert count(Person) == PEOPLE


def test_stalled_connections_as_many_as_workers_do_not_stop_the_door(
    gunicorn: Gunicorn, database_app: Flask
) -> None:
    event_id, path = door_rush()

    # One connection per worker process sends half a request and waits, as a phone whose
    # network dropped does: a process serving one request at a time would be held by each.
    stalls = []
    for _ in range(GUNICORN_WORKERS):
        stall = socket.create_connection(("127.0.0.1", gunicorn.port), timeout=WAIT)
        stall.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
        stalls.append(stall)
    try:
        time.sleep(0.5)  # every stall has reached a worker
        began = time.monotonic()
        for index in range(5):
            phone = Phone(gunicorn.port)
            status, _, page = phone.request("GET", path)
            assert status == 200, page
            form = {
                "csrf_token": csrf_token(page),
                "name": f"Person {index}",
                "email": f"person{index}@example.org",
            }
            status, headers, body = phone.request("POST", path, form)
            assert status == 303, body[:500]
            assert urlsplit(headers["Location"]).path.startswith("/b/")
        took = time.monotonic() - began
    finally:
        for stall in stalls:
            stall.close()

    assert took < WAIT / 4, f"five check-ins took {took:.1f} s beside the stalls"
    assert count(Attendance, Attendance.event_id == event_id) == 5
