"""An event as an iCalendar file (RFC 5545), for "Add to calendar"."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import icalendar

from domain.db import utcnow
from domain.models import Event


def event_ics(event: Event, domain: str, page: str = "") -> bytes:
    """Return an .ics file holding one event, in its own time zone, with its venue and the
    address of its public page, if given."""
    zone = ZoneInfo(event.timezone)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Rapport//Rapport//EN")
    calendar.add("version", "2.0")
    entry = icalendar.Event()
    # Stable per event, so adding it twice updates one calendar entry rather than making two.
    entry.add("uid", f"event-{event.id}@{domain}")
    entry.add("dtstamp", utcnow())
    entry.add("summary", event.name)
    entry.add("dtstart", event.starts_at.astimezone(zone))
    entry.add("dtend", event.ends_at.astimezone(zone))
    if event.venue:
        entry.add("location", event.venue)
    if event.description:
        entry.add("description", event.description)
    if page:
        entry.add("url", page)
    calendar.add_component(entry)
    calendar.add_missing_timezones()
    return calendar.to_ical()
