"""Who may open an organiser page of an event: the one look-up every such view starts with."""

from __future__ import annotations

from flask import abort, current_app
from flask_login import current_user

from domain.models import Event
from domain.profile import normalise_email
from domain.team import Action, actions_on, event_for


def event_or_404(event_id: int, action: Action) -> Event:
    """Return the event if the signed-in organiser may take the action there; 404 otherwise.

    Another organiser's event, and an action the person's role does not allow, look the
    same: not found, so a page never tells anyone what exists beyond their reach.
    """
    event = event_for(current_user, event_id, action)
    if event is None:
        abort(404)
    return event


def allowed_actions(event: Event) -> frozenset[str]:
    """Return what the signed-in organiser may do at an event, for a page's links."""
    return actions_on(current_user, event)


def _administrators() -> set[str]:
    named = current_app.config["RAPPORT_ADMIN_EMAILS"] or ""
    if isinstance(named, str):
        named = named.replace(",", " ").split()
    return {normalise_email(address) for address in named}


def administrators_named() -> bool:
    """Tell whether the installation names administrators (RAPPORT_ADMIN_EMAILS)."""
    return bool(_administrators())


def resume_rights() -> dict[str, bool]:
    """Say who the signed-in organiser is to a pause on sending, as domain/sending.py asks:
    an administrator, and whether an event's owner may resume (where none are named)."""
    return {"administrator": is_administrator(), "owners_may": not administrators_named()}


def is_administrator_address(email: str) -> bool:
    """Tell whether an address is named in RAPPORT_ADMIN_EMAILS."""
    return normalise_email(email) in _administrators()


def is_administrator() -> bool:
    """Tell whether the signed-in organiser looks after the installation (RAPPORT_ADMIN_EMAILS)."""
    return current_user.is_authenticated and (
        normalise_email(current_user.email) in _administrators()
    )
