"""Organiser accounts: sign-up, sign-in and passwords."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from domain.db import db, insert_ignoring_conflict, utcnow
from domain.errors import DomainError
from domain.limits import PASSWORD_MIN
from domain.models import Organiser
from domain.profile import normalise_email

# A real hash to check against when the address is unknown, so a wrong address and a
# wrong password take the same time.
_DUMMY_HASH = generate_password_hash("not a real password")


class OrganiserError(DomainError):
    """An organiser account operation was refused; `code` is stable."""


def create_organiser(email: str, password: str, name: str = "") -> Organiser:
    """Create an organiser account; raise OrganiserError('email_taken') if it exists."""
    if len(password) < PASSWORD_MIN:
        raise OrganiserError("password_too_short")
    email = normalise_email(email)
    organiser_id = insert_ignoring_conflict(
        Organiser.__table__,
        {
            "email": email,
            "name": name.strip() or email.split("@")[0],
            "password_hash": generate_password_hash(password),
            "created_at": utcnow(),
        },
        ["email"],
    )
    if organiser_id is None:
        raise OrganiserError("email_taken")
    return db.session.get_one(Organiser, organiser_id)


def set_password(organiser: Organiser, password: str) -> None:
    """Replace an organiser's password."""
    if len(password) < PASSWORD_MIN:
        raise OrganiserError("password_too_short")
    organiser.password_hash = generate_password_hash(password)
    end_sessions(organiser)


def end_sessions(organiser: Organiser) -> None:
    """End every session of an organiser, on every device, by moving their session epoch on."""
    # Incremented by the database, so two logouts at once both end the sessions before them.
    organiser.session_epoch = Organiser.session_epoch + 1
    db.session.flush()


def find_organiser(email: str) -> Organiser | None:
    """Return the organiser with this address, or None."""
    return db.session.scalars(
        sa.select(Organiser).where(Organiser.email == normalise_email(email))
    ).one_or_none()


def session_is_current(organiser: Organiser, epoch: object) -> bool:
    """Tell whether a session begun in `epoch` is still one of the organiser's sessions."""
    return isinstance(epoch, int) and epoch == organiser.session_epoch


def authenticate(email: str, password: str) -> Organiser | None:
    """Return the organiser whose address and password match, or None."""
    organiser = find_organiser(email)
    if organiser is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(organiser.password_hash, password):
        return None
    return organiser
