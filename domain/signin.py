"""One-time email links: confirm an address, or sign a phone in as its owner."""

from __future__ import annotations

import sqlalchemy as sa

from domain.db import db, utcnow
from domain.errors import DomainError
from domain.followups import revive_after_confirmation
from domain.limits import LINK_LIFETIME
from domain.models import EmailLink
from domain.tokens import hash_token
from domain.words import duration_in_words


def lifetime_in_words(purpose: str) -> str:
    """Say how long a link of this purpose works, as its email tells the reader."""
    return duration_in_words(LINK_LIFETIME[purpose].total_seconds())


class LinkError(DomainError):
    """The link cannot be used; `code` is stable ("unknown", "used", "expired")."""


def record_link(person_id: int, event_id: int | None, purpose: str, token: str) -> None:
    """Store the hash of a link token made earlier, so the link works from now on."""
    now = utcnow()
    db.session.add(
        EmailLink(
            person_id=person_id,
            event_id=event_id,
            purpose=purpose,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + LINK_LIFETIME[purpose],
        )
    )
    db.session.flush()


def find_link(token: str) -> EmailLink | None:
    """Return the link a token opens, used or not, or None."""
    return db.session.scalars(
        sa.select(EmailLink).where(EmailLink.token_hash == hash_token(token))
    ).one_or_none()


def check_link(link: EmailLink | None) -> EmailLink:
    """Return the link if it can still be used; raise LinkError otherwise."""
    if link is None:
        raise LinkError("unknown")
    if link.used_at is not None:
        raise LinkError("used")
    if link.expires_at <= utcnow():
        raise LinkError("expired")
    return link


def use_link(token: str) -> EmailLink:
    """Use a link once: it confirms the person's address. Raise LinkError if it can't."""
    link = check_link(find_link(token))
    now = utcnow()
    # Fenced, so two taps on the same link use it once.
    used = db.session.execute(
        sa.update(EmailLink)
        .where(EmailLink.id == link.id, EmailLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:
        raise LinkError("used")
    db.session.refresh(link)
    person = link.person
    if person.email_confirmed_at is None:
        person.email_confirmed_at = now
        revive_after_confirmation(person)
    db.session.flush()
    return link
