"""Where an event stands at a moment: upcoming, check-in open, live or ended."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from domain.checkin import WindowState, checkin_window
from domain.models import Event


class EventState(enum.StrEnum):
    """An event's state, in the words the organiser reads."""

    UPCOMING = "upcoming"
    CHECKIN_OPEN = "check-in open"
    LIVE = "live"
    ENDED = "ended"


def event_state(event: Event, now: datetime) -> EventState:
    """Return where an event stands at `now` (an aware time)."""
    if now >= event.ends_at:
        return EventState.ENDED
    if now >= event.starts_at:
        return EventState.LIVE
    if checkin_window(event).state(now) is WindowState.OPEN:
        return EventState.CHECKIN_OPEN
    return EventState.UPCOMING


def purge_due_at(event: Event) -> datetime:
    """Return when an event's attendee data is purged: its retention days after the end."""
    return event.ends_at + timedelta(days=event.retention_days)
