"""Badges: my badge with its QR code, and the public card others see when they scan it."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from blueprints import device
from blueprints.forms import ProfileForm
from domain.attendees import popular_interests
from domain.checkin import find_attendance_by_badge
from domain.db import db
from domain.models import Attendance
from domain.profile import update_profile
from domain.qr import qr_svg

bp = Blueprint("badge", __name__, url_prefix="/b")


def badge_url(token: str) -> str:
    """Return the absolute link a badge's QR code holds."""
    return f"{current_app.config['PUBLIC_URL']}/b/{token}"


def _attendance_or_404(token: str) -> Attendance:
    attendance = find_attendance_by_badge(token)
    if attendance is None:
        abort(404)
    return attendance


def _mine_or_404(token: str) -> Attendance:
    attendance = _attendance_or_404(token)
    if not device.owns(attendance):
        abort(404)
    return attendance


@bp.get("/<token>")
def view(token: str) -> str:
    """Show my badge to me, and my public card to anyone else."""
    attendance = _attendance_or_404(token)
    if device.owns(attendance):
        return render_template(
            "badge/mine.html",
            attendance=attendance,
            token=token,
            qr=qr_svg(badge_url(token), f"Badge QR code for {attendance.person.name}"),
        )
    return render_template("badge/card.html", attendance=attendance)


@bp.route("/<token>/edit", methods=["GET", "POST"])
def edit(token: str) -> Response | str:
    """Edit the profile I show at this event."""
    attendance = _mine_or_404(token)
    person = attendance.person
    form = ProfileForm(
        data={
            "name": person.name,
            "about": person.about,
            "talk_about": person.talk_about,
            "interests": ", ".join(interest.name for interest in attendance.interests),
            "links": "\n".join(person.links or []),
            "share_profile": attendance.profile_consent_at is not None,
        }
    )
    form.offer(popular_interests(attendance.event))
    if form.validate_on_submit():
        update_profile(
            attendance,
            name=form.name.data,
            about=form.about.data or "",
            talk_about=form.talk_about.data or "",
            interests=form.interest_list(),
            links=form.link_list(),
            share_profile=form.share_profile.data,
        )
        db.session.commit()
        flash("Profile saved.", "success")
        return redirect(url_for("badge.view", token=token), 303)
    return render_template("badge/edit.html", attendance=attendance, form=form, token=token)


@bp.post("/<token>/forget")
def forget(token: str) -> Response:
    """Forget this phone's badge, for a shared or borrowed phone."""
    attendance = _mine_or_404(token)
    device.forget(attendance.event_id)
    flash("This phone no longer holds your badge.", "info")
    return redirect(url_for("public.landing", token=attendance.event.checkin_token), 303)
