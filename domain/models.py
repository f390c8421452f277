"""The tables: organisers and their events, people, attendances and interests."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.db import UTCDateTime, db, utcnow

NAME_MAX = 80
EMAIL_MAX = 254
LINE_MAX = 160
DESCRIPTION_MAX = 2000
TIMEZONE_MAX = 64
LINK_MAX = 200
INTEREST_MAX = 40


class Visibility(enum.StrEnum):
    """Who may see one field of an attendee's profile."""

    EVERYONE = "everyone"
    CONNECTIONS = "connections"
    NOBODY = "nobody"


VISIBILITY_VALUES = tuple(v.value for v in Visibility)


def _visibility_column(default: Visibility) -> Mapped[str]:
    return mapped_column(sa.String(12), default=default.value, server_default=default.value)


class Organiser(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[Event]] = relationship(
        back_populates="organiser", cascade="all, delete-orphan"
    )


class Event(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    organiser_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organiser.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(sa.String(TIMEZONE_MAX))
    venue: Mapped[str] = mapped_column(sa.String(LINE_MAX), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # The poster token is printed on a wall for anyone to read, and the organiser must be
    # able to reprint it, so unlike badge and email-link tokens it is kept as it is.
    checkin_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    event_word: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organiser: Mapped[Organiser] = relationship(back_populates="events")
    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="event", cascade="all, delete-orphan", passive_deletes=True
    )


attendance_interest = sa.Table(
    "attendance_interest",
    db.metadata,
    sa.Column(
        "attendance_id",
        sa.ForeignKey("attendance.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("interest_id", sa.ForeignKey("interest.id", ondelete="CASCADE"), primary_key=True),
    sa.Index("ix_attendance_interest_interest_id", "interest_id"),
)


class Person(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    about: Mapped[str] = mapped_column(sa.String(LINE_MAX), default="")
    talk_about: Mapped[str] = mapped_column(sa.String(LINE_MAX), default="")
    links: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class Attendance(db.Model):
    __table_args__ = (
        sa.UniqueConstraint("event_id", "person_id"),
        sa.Index("ix_attendance_event_checked_in", "event_id", "checked_in_at"),
        *(
            sa.CheckConstraint(f"{column} IN {VISIBILITY_VALUES!r}", name=f"{column}_valid")
            for column in (
                "about_visibility",
                "interests_visibility",
                "talk_visibility",
                "links_visibility",
                "email_visibility",
            )
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    badge_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Consent as given at check-in: each box unticked unless the person ticks it.
    profile_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followup_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    about_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    interests_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    talk_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    links_visibility: Mapped[str] = _visibility_column(Visibility.CONNECTIONS)
    email_visibility: Mapped[str] = _visibility_column(Visibility.CONNECTIONS)

    event: Mapped[Event] = relationship(back_populates="attendances")
    person: Mapped[Person] = relationship(back_populates="attendances")
    interests: Mapped[list[Interest]] = relationship(
        secondary=attendance_interest, order_by="Interest.name"
    )

    def visible_to_everyone(self, field: str) -> bool:
        """Tell whether a profile field is shown to everyone at this event."""
        if self.profile_consent_at is None:
            return False
        return getattr(self, f"{field}_visibility") == Visibility.EVERYONE

    def as_export_row(self) -> dict[str, Any]:
        """Return the organiser-facing summary of this check-in."""
        return {
            "name": self.person.name,
            "checked_in_at": self.checked_in_at,
            "interests": [interest.name for interest in self.interests],
        }


class Interest(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(INTEREST_MAX), unique=True)
