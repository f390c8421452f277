"""The organiser's communities: a recurring series of events, its members and regulars."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.forms import AttachEventForm, CommunityForm
from blueprints.wording import with_names
from domain.communities import (
    CommunityError,
    attach_event,
    attachable_events,
    communities_of,
    community_of,
    create_community,
    detach_event,
    overview,
    upcoming_event,
)
from domain.db import db
from domain.events import event_of, local_time
from domain.models import Community

bp = Blueprint("communities", __name__, url_prefix="/organiser/communities")


@bp.before_request
@login_required
def require_login() -> None:
    """Every community page needs a signed-in organiser."""


def _own_community(community_id: int) -> Community:
    community = community_of(current_user, community_id)
    if community is None:
        abort(404)
    return community


@bp.route("/", methods=["GET", "POST"])
def index() -> Response | str:
    """List the organiser's communities, and start a new one."""
    form = CommunityForm()
    if form.validate_on_submit():
        try:
            community = create_community(current_user, form.name.data, form.description.data or "")
        except CommunityError as error:
            db.session.rollback()
            form.name.errors = [*form.name.errors, error.message]
        else:
            db.session.commit()
            flash("Community created. Attach its events below.", "success")
            return redirect(url_for("communities.show", community_id=community.id), 303)
    return render_template(
        "communities/index.html", communities=communities_of(current_user), form=form
    )


@bp.get("/<id:community_id>")
def show(community_id: int) -> str:
    """Show a community's events with attendance, and its members with their counts."""
    community = _own_community(community_id)
    form = AttachEventForm()
    form.offer(attachable_events(community))
    return _show(community, form)


@bp.post("/<id:community_id>/events")
def attach(community_id: int) -> Response | str:
    """Make one of the organiser's events part of this community."""
    community = _own_community(community_id)
    form = AttachEventForm()
    form.offer(attachable_events(community))
    if not form.validate_on_submit():
        return _show(community, form), 400
    event = event_of(current_user, int(form.event.data))
    if event is None:
        abort(404)
    attach_event(community, event)
    db.session.commit()
    flash(with_names("{} is now part of {}.", event.name, community.name), "success")
    return redirect(url_for("communities.show", community_id=community.id), 303)


@bp.post("/<id:community_id>/events/<id:event_id>/detach")
def detach(community_id: int, event_id: int) -> Response:
    """Take an event out of this community."""
    community = _own_community(community_id)
    event = event_of(current_user, event_id)
    if event is None or event.community_id != community.id:
        abort(404)
    detach_event(community, event)
    db.session.commit()
    flash(with_names("{} is no longer part of {}.", event.name, community.name), "success")
    return redirect(url_for("communities.show", community_id=community.id), 303)


def _show(community: Community, form: AttachEventForm) -> str:
    coming = upcoming_event(community)
    return render_template(
        "communities/show.html",
        community=community,
        overview=overview(community),
        form=form,
        next_event=coming,
        next_starts=local_time(coming, coming.starts_at) if coming else None,
    )
