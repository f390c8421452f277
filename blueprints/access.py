"""Who may open an organiser page of an event: the one look-up every such view starts with."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from domain.models import Event
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
