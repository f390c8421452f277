"""The baseline of bench/door.py: a bare Flask + Flask-SQLAlchemy app that inserts one row.

Served by gunicorn like Rapport, on the same database engine, it shows what the framework,
the server and the database allow on this machine: `POST /insert` adds one row and says so.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _sqlite_like_rapport(dbapi_connection: Any, _record: Any) -> None:
    """Set SQLite up as Rapport does (WAL, busy timeout), every write under BEGIN IMMEDIATE."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None
    for pragma in ("busy_timeout=15000", "journal_mode=WAL", "synchronous=NORMAL"):
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _begin_immediate(connection: sa.engine.Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


db = SQLAlchemy(model_class=Base)


class Arrival(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


def create_app() -> Flask:
    """Build the bare app on DATABASE_URL."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_like_rapport)
            sa.event.listen(db.engine, "begin", _begin_immediate)

    @app.post("/insert")
    def insert() -> tuple[str, int]:
        db.session.add(Arrival(name="Guest", created_at=datetime.now(UTC)))
        db.session.commit()
        return "inserted", 201

    return app


def reset(url: str) -> None:
    """Give the bare app an empty table."""
    engine = sa.create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()


def rows(url: str) -> int:
    """Return how many rows the bare app inserted."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count()).select_from(Arrival.__table__))
    engine.dispose()
    return count or 0
