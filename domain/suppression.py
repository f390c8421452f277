"""The do-not-email list: addresses that unsubscribed, bounced, complained or were deleted.

Only a hash of each address is kept, so the list remembers whom not to email without
keeping their address.
"""

from __future__ import annotations

import hashlib

from domain.db import db, insert_ignoring_conflict, utcnow
from domain.models import OutboxMessage, Suppression
from domain.outbox import cancel_waiting
from domain.profile import normalise_email


def email_hash(email: str) -> str:
    """Return the hash under which an address is suppressed."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


def is_suppressed(email: str) -> bool:
    """Tell whether an address must never be emailed."""
    return db.session.get(Suppression, email_hash(email)) is not None


def suppress(email: str, reason: str) -> None:
    """Never email an address again, and cancel what is waiting for it, in this transaction."""
    insert_ignoring_conflict(
        Suppression.__table__,
        {"email_hash": email_hash(email), "reason": reason, "created_at": utcnow()},
        ["email_hash"],
        returning="email_hash",
    )
    cancel_waiting(OutboxMessage.to_email == normalise_email(email), reason)
