"""An event's team: the owner invites co-organisers and door staff, who join by email link."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from blueprints.access import event_or_404
from blueprints.extensions import lookup_limited
from blueprints.forms import Form, InviteForm
from blueprints.wording import with_names
from domain.db import db
from domain.team import (
    ROLE_NAMES,
    Action,
    Role,
    TeamError,
    accept_invitation,
    find_invitation,
    invite,
    members_of,
    pending_invitations,
    remove_member,
    revoke_invitation,
)

bp = Blueprint("team", __name__)


@bp.route("/organiser/events/<id:event_id>/team", methods=["GET", "POST"])
@login_required
def team(event_id: int) -> Response | str:
    """Show the event's team and invite someone into it."""
    event = event_or_404(event_id, Action.TEAM)
    form = InviteForm()
    if form.validate_on_submit():
        try:
            invite(event, form.email.data, form.role.data)
        except TeamError as error:
            db.session.rollback()
            form.email.errors = [*form.email.errors, error.message]
        else:
            db.session.commit()
            flash(f"Invitation sent to {form.email.data}.", "success")
            return redirect(url_for("team.team", event_id=event.id), 303)
    return render_template(
        "team/team.html",
        event=event,
        form=form,
        members=members_of(event),
        invitations=[
            (invitation, ROLE_NAMES[Role(invitation.role)])
            for invitation in pending_invitations(event)
        ],
    )


@bp.post("/organiser/events/<id:event_id>/team/invitations/<id:invitation_id>/revoke")
@login_required
def revoke(event_id: int, invitation_id: int) -> Response:
    """Withdraw an invitation; its link stops working."""
    event = event_or_404(event_id, Action.TEAM)
    if not revoke_invitation(event, invitation_id):
        abort(404)
    db.session.commit()
    flash("Invitation withdrawn: its link no longer works.", "success")
    return redirect(url_for("team.team", event_id=event.id), 303)


@bp.post("/organiser/events/<id:event_id>/team/members/<id:member_id>/remove")
@login_required
def remove(event_id: int, member_id: int) -> Response:
    """Take someone off the event's team."""
    event = event_or_404(event_id, Action.TEAM)
    if not remove_member(event, member_id):
        abort(404)
    db.session.commit()
    flash("Removed from the team.", "success")
    return redirect(url_for("team.team", event_id=event.id), 303)


@bp.route("/team/join/<token:token>", methods=["GET", "POST"])
@lookup_limited
def join(token: str) -> Response | str | tuple[str, int]:
    """Show an invitation to its addressee, and accept it."""
    try:
        invitation = find_invitation(token)
    except TeamError as error:
        return render_template("team/join_problem.html", message=error.message), 404
    if not current_user.is_authenticated:
        # Nothing about the event is shown until the invited address signs in.
        return render_template("team/join_sign_in.html", email=invitation.email, token=token)
    form = Form()
    if form.validate_on_submit():
        try:
            member = accept_invitation(token, current_user)
        except TeamError as error:
            db.session.rollback()
            return render_template("team/join_problem.html", message=error.message), 400
        db.session.commit()
        flash(with_names("You're on the team of {}.", member.event.name), "success")
        if member.role == Role.DOOR:
            return redirect(url_for("door.desk", event_id=member.event_id), 303)
        return redirect(url_for("organiser.attendees", event_id=member.event_id), 303)
    return render_template(
        "team/join.html",
        invitation=invitation,
        role=ROLE_NAMES[Role(invitation.role)],
        same_address=current_user.email == invitation.email,
        form=form,
    )
