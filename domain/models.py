"""The tables: organisers and their events, people, attendances and interests."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from domain.db import UTCDateTime, db, utcnow
from domain.interest_keys import interest_key, name_key
from domain.limits import (
    CHECKIN_CLOSES_MINUTES_AFTER,
    CHECKIN_OPENS_MINUTES_BEFORE,
    EMAIL_MAX,
    INTEREST_MAX,
    LINE_MAX,
    MAX_ATTEMPTS,
    NAME_KEY_MAX,
    NAME_MAX,
    NOTE_MAX,
    RETENTION_DAYS,
    THANK_YOU_MAX,
    TIMEZONE_MAX,
)


class Visibility(enum.StrEnum):
    """Who may see one field of an attendee's profile."""

    EVERYONE = "everyone"
    CONNECTIONS = "connections"
    NOBODY = "nobody"


VISIBILITY_VALUES = tuple(v.value for v in Visibility)
PROFILE_FIELDS = ("about", "interests", "talk", "links", "email")


def _visibility_column(default: Visibility) -> Mapped[str]:
    return mapped_column(sa.String(12), default=default.value, server_default=default.value)


class Organiser(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    # Sessions carry the epoch they began in; logging out or changing the password moves
    # it on, so every copy of an older session cookie stops working.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[Event]] = relationship(
        back_populates="organiser", cascade="all, delete-orphan"
    )


class Community(db.Model):
    """A recurring series of one organiser's events: a brunch club, a run club, a meetup."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organiser_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organiser.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    events: Mapped[list[Event]] = relationship(back_populates="community")


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
    # When the follow-up digest goes out: "next_morning" (09:00 local, the day after the
    # event ends) or "at_end"; and the days after that for one nudge (0: none).
    followup_timing: Mapped[str] = mapped_column(
        sa.String(16), default="next_morning", server_default="next_morning"
    )
    nudge_days: Mapped[int] = mapped_column(default=7, server_default="7")
    # The poster's form takes check-ins from this many minutes before the start until this
    # many after the end; outside that, a poster left on a wall checks no one in.
    checkin_opens_minutes: Mapped[int] = mapped_column(
        default=CHECKIN_OPENS_MINUTES_BEFORE, server_default=str(CHECKIN_OPENS_MINUTES_BEFORE)
    )
    checkin_closes_minutes: Mapped[int] = mapped_column(
        default=CHECKIN_CLOSES_MINUTES_AFTER, server_default=str(CHECKIN_CLOSES_MINUTES_AFTER)
    )
    # A few words from the organiser, printed inside every digest (no separate email).
    thank_you_note: Mapped[str] = mapped_column(
        sa.String(THANK_YOU_MAX), default="", server_default=""
    )
    # Attendee data is purged this many days after the end (domain/retention.py), once.
    retention_days: Mapped[int] = mapped_column(
        default=RETENTION_DAYS, server_default=str(RETENTION_DAYS)
    )
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The community this event belongs to, if any: people are remembered across its events.
    community_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("community.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moves on with every change the organiser's attendee page would show (domain/versions.py).
    attendees_version: Mapped[int] = mapped_column(default=0, server_default="0")

    organiser: Mapped[Organiser] = relationship(back_populates="events")
    community: Mapped[Community | None] = relationship(back_populates="events")
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
    # The name as searched, folded (domain/interest_keys.py): SQLite's lower() knows ASCII
    # only, and "elodie" should find "Élodie" on either engine.
    name_key: Mapped[str] = mapped_column(sa.String(NAME_KEY_MAX), default="", server_default="")
    about: Mapped[str] = mapped_column(sa.String(LINE_MAX), default="")
    talk_about: Mapped[str] = mapped_column(sa.String(LINE_MAX), default="")
    links: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A phone's reference to its person carries the epoch it was made in; a phone letting
    # go of the person (forget, sign-out, someone else on it) moves it on, so every copy of
    # an older session cookie stops naming them.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attendances: Mapped[list[Attendance]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("name")
    def _keep_name_key(self, _: str, name: str) -> str:
        self.name_key = name_key(name)
        return name


class Attendance(db.Model):
    __table_args__ = (
        sa.UniqueConstraint("event_id", "person_id"),
        sa.Index("ix_attendance_event_checked_in", "event_id", "checked_in_at"),
        sa.Index("ix_attendance_event_listed_version", "event_id", "listed_version"),
        *(
            sa.CheckConstraint(f"{column} IN {VISIBILITY_VALUES!r}", name=f"{column}_valid")
            for column in (f"{field}_visibility" for field in PROFILE_FIELDS)
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    badge_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # A badge printed at the door carries a token of its own (see domain/badgesheet.py):
    # it opens the card for anyone who scans it, but never makes a phone its owner.
    printed_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Consent as given at check-in: each box unticked unless the person ticks it.
    profile_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followup_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    about_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    interests_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    talk_visibility: Mapped[str] = _visibility_column(Visibility.EVERYONE)
    links_visibility: Mapped[str] = _visibility_column(Visibility.CONNECTIONS)
    email_visibility: Mapped[str] = _visibility_column(Visibility.CONNECTIONS)
    # Change versions (domain/versions.py): this person's badge page moves on with every
    # change it would show; `listed_version` is the event's attendees_version when this
    # row of the organiser's page last changed.
    badge_version: Mapped[int] = mapped_column(default=0, server_default="0")
    listed_version: Mapped[int] = mapped_column(default=0, server_default="0")

    event: Mapped[Event] = relationship(back_populates="attendances")
    person: Mapped[Person] = relationship(back_populates="attendances")
    interests: Mapped[list[Interest]] = relationship(
        secondary=attendance_interest, order_by=lambda: [Interest.key, Interest.name]
    )


class EventInterest(db.Model):
    """How often people showing an interest arrived at an event (or changed what they show).

    Part of the badge page's version: my suggestions change when someone sharing one of my
    interests arrives, and this counts exactly that, without touching anyone's row.
    """

    event_id: Mapped[int] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), primary_key=True
    )
    # An interest's key (domain/interest_keys.py): every spelling of it counts together.
    key: Mapped[str] = mapped_column(sa.String(INTEREST_MAX), primary_key=True)
    arrivals: Mapped[int] = mapped_column(default=0, server_default="0")


class ConnectionStatus(enum.StrEnum):
    """Where a connection between two attendances stands."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class Connection(db.Model):
    """Two people who met at an event: one row per pair, however often either scans."""

    __table_args__ = (
        sa.UniqueConstraint("event_id", "low_attendance_id", "high_attendance_id"),
        sa.CheckConstraint("low_attendance_id < high_attendance_id", name="ordered_pair"),
        sa.CheckConstraint("status IN ('requested', 'accepted', 'declined')", name="status_valid"),
        # Both sides are looked up on their own ("my connections"), so both are indexed.
        sa.Index("ix_connection_low_attendance_id", "low_attendance_id"),
        sa.Index("ix_connection_high_attendance_id", "high_attendance_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    low_attendance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("attendance.id", ondelete="CASCADE")
    )
    high_attendance_id: Mapped[int] = mapped_column(
        sa.ForeignKey("attendance.id", ondelete="CASCADE")
    )
    requested_by_id: Mapped[int] = mapped_column(
        sa.ForeignKey("attendance.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(sa.String(12), default=ConnectionStatus.REQUESTED.value)
    # Each side's private note about the other: never shown to anyone else.
    low_note: Mapped[str] = mapped_column(sa.String(NOTE_MAX), default="")
    high_note: Mapped[str] = mapped_column(sa.String(NOTE_MAX), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Either side said "we've been in touch": no more nudges for this pair.
    in_touch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Each side may show its email to this one connection, whatever its event-wide choice.
    low_shares_email: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    high_shares_email: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    low: Mapped[Attendance] = relationship(foreign_keys=[low_attendance_id])
    high: Mapped[Attendance] = relationship(foreign_keys=[high_attendance_id])

    @property
    def accepted(self) -> bool:
        """Tell whether both people have said yes."""
        return self.status == ConnectionStatus.ACCEPTED

    def other(self, mine: Attendance) -> Attendance:
        """Return the attendance on the other side from `mine`."""
        return self.high if mine.id == self.low_attendance_id else self.low

    def shares_email(self, side: Attendance) -> bool:
        """Tell whether one side shows its email to the other through this connection."""
        return (
            self.low_shares_email if side.id == self.low_attendance_id else self.high_shares_email
        )

    def note_of(self, mine: Attendance) -> str:
        """Return my private note about the other person."""
        return self.low_note if mine.id == self.low_attendance_id else self.high_note


class Block(db.Model):
    """One person never wants to see another again, at this event or any other."""

    blocker_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Interest(db.Model):
    """A tag as someone typed it ("Travel in Asia"), and the key it matches others on."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(INTEREST_MAX), unique=True)
    # domain/interest_keys.py: "Marathons" and "marathon" share the key "marathon".
    key: Mapped[str] = mapped_column(
        sa.String(INTEREST_MAX),
        index=True,
        default=lambda context: interest_key(context.get_current_parameters()["name"]),
    )


class MessageStatus(enum.StrEnum):
    """Where an outbox message stands; see domain/outbox.py for the transitions."""

    PENDING = "pending"
    SENDING = "sending"
    UNCERTAIN = "uncertain"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


MESSAGE_STATUSES = tuple(s.value for s in MessageStatus)


class OutboxMessage(db.Model):
    """One email to one person, written in the same transaction as the change that caused it."""

    __table_args__ = (
        sa.Index("ix_outbox_message_due", "status", "next_attempt_at"),
        sa.CheckConstraint(f"status IN {MESSAGE_STATUSES!r}", name="status_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(24))
    # Every message goes to a person, except an invitation to join an event's team, which
    # goes to the address the owner typed.
    person_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("event.id", ondelete="CASCADE"), index=True
    )
    invitation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invitation.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("connection.id", ondelete="SET NULL"), index=True
    )
    to_email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), index=True)
    status: Mapped[str] = mapped_column(sa.String(12), default=MessageStatus.PENDING.value)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=MAX_ATTEMPTS)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    # The links in a sent message (unsubscribe, contacts, "we've been in touch") carry one
    # token; only its hash is kept.
    link_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(40))
    delivery_state: Mapped[str | None] = mapped_column(sa.String(20))
    delivery_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship()
    event: Mapped[Event | None] = relationship()
    connection: Mapped[Connection | None] = relationship()
    invitation: Mapped[Invitation | None] = relationship()


class EmailLink(db.Model):
    """A one-time link sent by email that signs a phone in as a person."""

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(12))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[Person] = relationship()
    event: Mapped[Event | None] = relationship()


class Suppression(db.Model):
    """An address we never email again: only its hash is kept."""

    email_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(db.Model):
    """A delivery event from SendGrid, kept once however often it is delivered."""

    sg_event_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    outbox_message_id: Mapped[int | None] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SenderState(db.Model):
    """One row shared by every worker: pauses after 401/403 and the pace 429 asks for."""

    id: Mapped[int] = mapped_column(primary_key=True)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the service last refused our key or sender, as the emails page says.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(sa.String(200))
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_webhook_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SendingResumed(db.Model):
    """Someone lifted a pause on all sending: who and when, as the emails page says."""

    id: Mapped[int] = mapped_column(primary_key=True)
    resumed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The address is kept as it was, so the record outlives the account that made it.
    organiser_email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX))
    organiser_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organiser.id", ondelete="SET NULL"), index=True
    )
    # When the service had refused our key: the pause this lifted.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TeamMember(db.Model):
    """An organiser who helps run someone else's event, in one role (see domain/team.py)."""

    __table_args__ = (
        sa.UniqueConstraint("event_id", "organiser_id"),
        sa.CheckConstraint("role IN ('organiser', 'door')", name="role_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"))
    organiser_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organiser.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organiser: Mapped[Organiser] = relationship()
    event: Mapped[Event] = relationship()


class Invitation(db.Model):
    """An owner's invitation to join an event's team: one link, used once, until it expires."""

    __table_args__ = (sa.CheckConstraint("role IN ('organiser', 'door')", name="role_valid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("event.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX))
    role: Mapped[str] = mapped_column(sa.String(12))
    # Made when the email is written (the link is in it); only its hash is kept.
    token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[Event] = relationship()
