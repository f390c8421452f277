"""The schema only changes through migrations: they build every table and match the models.

The migrations run as operators run them, `flask --app app db upgrade` in a process of
its own, on a SQLite file always and on PostgreSQL too when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

import app as app_module
from app import create_app
from domain.db import UTCDateTime, db

ROOT = Path(app_module.__file__).resolve().parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
SECRET_KEY = "test-secret-" + "x" * 32
ENGINES = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])
FLASK_TIMEOUT = 120  # seconds; one migration takes about one


def flask_db(database_url: str, *args: str) -> None:
    """Run `flask --app app db ...` against a database, as an operator would."""
    environment = {
        key: value for key, value in os.environ.items() if key not in app_module.ENVIRONMENT_KEYS
    }
    environment.update(
        SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url, PUBLIC_URL="http://rapport.test"
    )
    completed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=FLASK_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    """An empty database (its URL) and an app on it for looking inside."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'migrated.sqlite'}"
    else:
        assert TEST_DATABASE_URL is not None
        url = TEST_DATABASE_URL
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": url})
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.engine.dispose()  # nothing of ours holds a connection while migrations run
    yield url, app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def table_names(app: Flask) -> set[str]:
    with app.app_context():
        try:
            with db.engine.connect() as connection:
                return set(sa.inspect(connection).get_table_names())
        finally:
            db.engine.dispose()


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """The same rendering hook as migrations/env.py (it runs only inside Alembic)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def schema_differences(app: Flask) -> list[object]:
    """What autogenerate would write into a new migration; empty when models match."""
    with app.app_context():
        options = {
            **app.extensions["migrate"].configure_args,
            "render_item": render_item,
        }
        try:
            with db.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts=options)
                return compare_metadata(context, db.metadata)
        finally:
            db.engine.dispose()


def test_migrate_compares_types_as_env_py_expects() -> None:
    # env.py takes its compare settings from Flask-Migrate; the test below copies them.
    app = create_app({"SECRET_KEY": SECRET_KEY, "DATABASE_URL": "sqlite://"})
    assert app.extensions["migrate"].configure_args.get("compare_type") is True


def test_upgrade_creates_every_table(database: tuple[str, Flask]) -> None:
    url, app = database
    assert table_names(app) == set()
    flask_db(url, "upgrade")
    assert table_names(app) == set(db.metadata.tables) | {"alembic_version"}


def test_models_match_the_migrations(database: tuple[str, Flask]) -> None:
    url, app = database
    flask_db(url, "upgrade")
    assert schema_differences(app) == []


def test_downgrade_to_base_then_upgrade_again(database: tuple[str, Flask]) -> None:
    url, app = database
    flask_db(url, "upgrade")
    flask_db(url, "downgrade", "base")
    assert table_names(app) <= {"alembic_version"}
    flask_db(url, "upgrade")
    assert table_names(app) == set(db.metadata.tables) | {"alembic_version"}
    assert schema_differences(app) == []


def test_interest_keys_are_filled_for_existing_tags(database: tuple[str, Flask]) -> None:
    url, app = database
    flask_db(url, "upgrade", "8d2f6a1c4e90")  # the last revision before interest keys
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO interest (name) VALUES ('marathons'), ('café'), ('running')")
            )
        db.engine.dispose()
    flask_db(url, "upgrade")
    with app.app_context():
        with db.engine.connect() as connection:
            keys = dict(connection.execute(sa.text("SELECT name, key FROM interest")).all())
        db.engine.dispose()
    assert keys == {"marathons": "marathon", "café": "cafe", "running": "run"}


def test_interest_keys_made_before_plus_and_sharp_counted_are_made_again(
    database: tuple[str, Flask],
) -> None:
    url, app = database
    flask_db(url, "upgrade", "6c1d9e3b5a27")  # keys folded "C++", "C#" and "C" into "c"
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO interest (name, key) VALUES ('C++', 'c'), ('C#', 'c'), ('C', 'c'),"
                    " ('marathons', 'marathon')"
                )
            )
        db.engine.dispose()
    flask_db(url, "upgrade")
    with app.app_context():
        with db.engine.connect() as connection:
            keys = dict(connection.execute(sa.text("SELECT name, key FROM interest")).all())
        db.engine.dispose()
    assert keys == {"C++": "c plus plus", "C#": "c sharp", "C": "c", "marathons": "marathon"}


def test_direction_overrides_saved_before_are_taken_out(database: tuple[str, Flask]) -> None:
    url, app = database
    flask_db(url, "upgrade", "f4b9a2c7d1e8")  # the last revision before overrides were dropped
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO person (email, name, about, talk_about, links, session_epoch,"
                    " created_at, updated_at) VALUES"
                    " ('ana@example.org', :ana, :about, '', '[]', 0, :now, :now),"
                    " ('ben@example.org', :ben, '', '', '[]', 0, :now, :now),"
                    " ('cleo@example.org', :cleo, '', '', '[]', 0, :now, :now)"
                ),
                {
                    "ana": "\u202eanA\u202c \u2067Lima\u2069",
                    "about": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200f\u2066x\u2069",
                    "ben": "\u202e\u202d",
                    "cleo": "Cleo\u200d\u200f",
                    "now": "2026-11-01 10:00:00",
                },
            )
        db.engine.dispose()
    flask_db(url, "upgrade")
    with app.app_context():
        with db.engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT name, about, name_key FROM person ORDER BY id")
            ).all()
        db.engine.dispose()
    assert [tuple(row[:2]) for row in rows] == [
        ("anA Lima", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200fx"),
        ("Unnamed", ""),  # a name is never left empty
        ("Cleo\u200d\u200f", ""),  # joiners and direction marks stay
    ]
    assert [row[2] for row in rows[:2]] == ["ana lima", "unnamed"]  # searched as shown
