"""Shared fixtures: a fresh database per test, clients, factories, a fake SendGrid.

The browser tests' live server, Chromium, phones and laptop are in tests/browser/conftest.py.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import zxingcpp
from flask import Flask, g
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from domain.checkin import CheckInResult, Profile, check_in
from domain.db import db, writing
from domain.events import EventDetails, create_event, wall_clock_now
from domain.models import Event, Organiser
from domain.organisers import create_organiser
from domain.team import accept_invitation, invite, set_invitation_token
from domain.tokens import new_token
from tests.fake_sendgrid import FakeSendGrid

PUBLIC_URL = "http://rapport.test"
PASSWORD = "correct horse battery"
POSTAL_ADDRESS = "Rapport, 1 Test Street, Testville"


def _server_connection(url: sa.URL) -> Any:
    import psycopg

    return psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database,
        autocommit=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """On PostgreSQL, run this session in a database of its own, made now and dropped after.

    Test runs side by side (two checkouts, two terminals, pytest-xdist workers) then never
    empty each other's tables; every module reads the session's URL from TEST_DATABASE_URL.
    """
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or os.environ.get("RAPPORT_TEST_DATABASE_OWNED"):
        return
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the pytest-xdist controller runs no test; each worker makes its own database
    url = sa.make_url(base)
    name = (
        f"rapport_test_{os.getpid()}_{new_token()[:8].lower().replace('-', 'x').replace('_', 'y')}"
    )
    with _server_connection(url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["RAPPORT_TEST_DATABASE_BASE"] = base
    os.environ["RAPPORT_TEST_DATABASE_OWNED"] = name
    os.environ["TEST_DATABASE_URL"] = url.set(database=name).render_as_string(hide_password=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    name = os.environ.pop("RAPPORT_TEST_DATABASE_OWNED", None)
    base = os.environ.pop("RAPPORT_TEST_DATABASE_BASE", None)
    if not name or not base:
        return
    os.environ["TEST_DATABASE_URL"] = base
    with _server_connection(sa.make_url(base)) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until(
    condition: Callable[[], object], timeout: float = 15, interval: float = 0.05
) -> None:
    """Poll `condition` until it is true; fail the test if it isn't within `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {condition}")
        time.sleep(interval)


def database_url_under_test() -> str | None:
    """Return the PostgreSQL URL this session tests against, or None for SQLite."""
    return os.environ.get("TEST_DATABASE_URL")


def pytest_report_header() -> str:
    url = database_url_under_test()
    engine = f"PostgreSQL {url}" if url else "SQLite (temporary files)"
    return f"rapport database: {engine}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failed test: nothing that must run may quietly not run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("FAIL_ON_SKIP") and skipped and exitstatus == 0:
        session.exitstatus = 1
        if reporter:
            reporter.write_line(
                f"FAIL_ON_SKIP is set and {skipped} test(s) were skipped.", red=True
            )


def make_config(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Return a test configuration with its own database."""
    database_url = database_url_under_test() or f"sqlite:///{tmp_path / 'rapport.sqlite'}"
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-" + "x" * 32,
        "DATABASE_URL": database_url,
        "PUBLIC_URL": PUBLIC_URL,
        "WTF_CSRF_ENABLED": False,
        # Tests change rows behind the app's back: every lookup reads the database.
        "LOOKUP_CACHE_SECONDS": 0,
        **overrides,
    }


def reset_database(app: Flask) -> None:
    """Give the app an empty schema: created on SQLite, emptied on PostgreSQL."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.remove()
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
        db.session.remove()


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on this test's database; the first call resets it."""
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app(make_config(tmp_path, **overrides))
        # Tests keep an app context open, and a test request reuses it; start each request
        # without the previous one's signed-in organiser, as a real server would.
        app.before_request(lambda: g.pop("_login_user", None) and None)
        if not made:
            reset_database(app)
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Iterator[Flask]:
    app = app_factory()
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on a fresh SQLite file of its own, whatever TEST_DATABASE_URL says.

    SQLite is the embedded default: its settings and failure modes are tested on every run.
    """
    app = create_app(make_config(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'own.sqlite'}"))
    with app.app_context():
        assert db.engine.dialect.name == "sqlite"
        db.create_all()
        db.session.remove()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def make_organiser(app: Flask) -> Callable[..., Organiser]:
    counter = iter(range(1, 10_000))

    def make(email: str | None = None, password: str = PASSWORD, name: str = "") -> Organiser:
        with writing():
            organiser = create_organiser(
                email or f"organiser{next(counter)}@example.org", password, name
            )
            db.session.commit()
        return organiser

    return make


@pytest.fixture
def make_event(app: Flask, make_organiser: Callable[..., Organiser]) -> Callable[..., Event]:
    from datetime import timedelta

    def make(organiser: Organiser | None = None, **details: Any) -> Event:
        zone = details.get("timezone", "Europe/London")
        start = wall_clock_now(zone).replace(microsecond=0) - timedelta(hours=1)
        values = {
            "name": "Sunday brunch",
            "starts_at": start,
            "ends_at": start + timedelta(hours=4),
            "timezone": zone,
            "venue": "The corner café",
            "description": "",
            **details,
        }
        with writing():
            event = create_event(organiser or make_organiser(), EventDetails(**values))
            db.session.commit()
        return event

    return make


@pytest.fixture
def make_attendee(app: Flask) -> Callable[..., CheckInResult]:
    counter = iter(range(1, 10_000))

    def make(
        event: Event,
        name: str = "",
        email: str = "",
        *,
        device: str | None = None,
        person_id: int | None = None,
        **fields: Any,
    ) -> CheckInResult:
        number = next(counter)
        fields.setdefault("share_profile", True)
        profile = Profile(
            name=name or f"Person {number}",
            email=email or f"person{number}@example.org",
            **fields,
        )
        with writing():
            result = check_in(
                event, profile, device_secret=device or new_token(), person_id=person_id
            )
            db.session.commit()
        return result

    return make


@pytest.fixture
def make_member(app: Flask, make_organiser: Callable[..., Organiser]) -> Callable[..., Organiser]:
    """Put a new organiser on an event's team in a role, through a real invitation."""

    def make(event: Event, role: str, organiser: Organiser | None = None) -> Organiser:
        member = organiser or make_organiser()
        token = new_token()
        with writing():
            invitation = invite(event, member.email, role)
            set_invitation_token(invitation.id, token)
            accept_invitation(token, member)
            db.session.commit()
        return member

    return make


def login(client: FlaskClient, organiser: Organiser, password: str = PASSWORD) -> None:
    """Log a test client in as an organiser."""
    response = client.post("/login", data={"email": organiser.email, "password": password})
    assert response.status_code == 303, response.text


def live_versions_from(html: str) -> dict[str, str]:
    """Return each live part of a page (its refresh address) with the version it shows, as
    the ETag its script sends back: a badge page has two, its own list and the people to meet."""
    return {
        url: version.replace("&#34;", '"')
        for url, version in re.findall(r'data-live-url="([^"]+)" data-version="([^"]+)"', html)
    }


def shown(page: Any) -> str:
    """Return a page (or its HTML) as a reader sees its words: entities decoded, and the
    direction isolates (<bdi>) set around names and other typed text taken out."""
    markup = page if isinstance(page, str) else page.get_data(as_text=True)
    return html.unescape(re.sub(r"</?bdi>", "", markup))


def qr_codes(image: Any) -> list[Any]:
    """Return the QR codes zxing-cpp reads off an image: QR codes only, so the text and lines
    of a printed sheet are never misread as some other kind of barcode."""
    return zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)


def csrf_token_from(html: str) -> str:
    """Return the CSRF token a rendered form carries."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


# ---------------------------------------------------------------- fake SendGrid


def sendgrid_settings(fake: FakeSendGrid) -> dict[str, str]:
    """The configuration that points the app's SendGrid mailer (make_mailer) at a fake server."""
    return {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_HOST": fake.url,
        "MAIL_POSTAL_ADDRESS": POSTAL_ADDRESS,
    }


@pytest.fixture
def fake_sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    """A fake SendGrid v3 API on 127.0.0.1, reached without any proxy; stopped after the test."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeSendGrid().start()
    try:
        yield fake
    finally:
        fake.stop()
    assert fake.server_errors == []


@pytest.fixture
def sendgrid_app(app: Flask, fake_sendgrid: FakeSendGrid) -> Flask:
    """The test app, with SendGrid configured to be the fake: make_mailer(app) sends to it."""
    app.config.update(sendgrid_settings(fake_sendgrid))
    return app


@pytest.fixture
def mailbox(app: Flask) -> Any:
    """Emails the worker sends, captured in memory (see tests/mail_support.py)."""
    from tests.mail_support import Mailbox

    return Mailbox(app)


@pytest.fixture
def met(app: Flask, make_event: Callable[..., Event], make_attendee: Callable[..., Any]) -> Any:
    """Ana and Ben, confirmed, checked in at one event and connected."""
    from tests.mail_support import meet

    return meet(make_event, make_attendee)
