"""The door desk, for staff at the entrance on a phone or tablet, and printable name badges."""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required

from blueprints.access import allowed_actions, event_or_404
from blueprints.downloads import download
from blueprints.forms import BadgeLookupForm, DoorCheckInForm
from blueprints.wording import with_names
from domain.attendees import attendance_of_event, organiser_card, popular_interests
from domain.badgesheet import PAPERS, badges_pdf, print_badges, sheets
from domain.checkin import CheckInError
from domain.db import ID_MAX, db
from domain.door import ScannedBadge, check_in_at_door, door_count, scan_badge
from domain.limits import LIVE_REFRESH_SECONDS
from domain.models import Event
from domain.qr import qr_svg
from domain.team import Action

bp = Blueprint("door", __name__, url_prefix="/organiser/events/<id:event_id>")

CHECKIN_MESSAGES = {
    "not_yet": "Check-in hasn't opened yet for this event.",
    "ended": "Check-in has closed for this event.",
}


@bp.before_request
@login_required
def require_login() -> None:
    """Every door page needs a signed-in organiser."""


@bp.get("/door")
def desk(event_id: int) -> str:
    """Show the door desk: the count, a form to check someone in by hand, the scanner."""
    event = event_or_404(event_id, Action.DOOR)
    return _desk(event, DoorCheckInForm(formdata=None), BadgeLookupForm(formdata=None))


@bp.post("/door/check-in")
def check_in(event_id: int) -> Response | str:
    """Check someone in by hand; the same email is checked in only once."""
    event = event_or_404(event_id, Action.DOOR)
    form = DoorCheckInForm()
    if form.validate_on_submit():
        try:
            done = check_in_at_door(
                event,
                name=form.name.data,
                email=form.email.data or "",
                interests=form.interest_list(),
                share_profile=form.share_profile.data,
                want_followups=form.want_followups.data,
            )
        except CheckInError as error:
            db.session.rollback()
            field = form.email if error.code == "email_known" else form.name
            field.errors = [*field.errors, CHECKIN_MESSAGES.get(error.code, error.message)]
        else:
            db.session.commit()
            if not done.created:  # the desk says who is in; only a repeat needs saying
                flash(with_names("{} was already checked in.", done.attendance.person.name), "info")
            return redirect(url_for("door.desk", event_id=event.id, person=done.attendance.id), 303)
    return _desk(event, form, BadgeLookupForm(formdata=None))


@bp.post("/door/scan")
def scan(event_id: int) -> str:
    """Say whose badge a scanned code is: the whole desk, or only the answer for the script."""
    event = event_or_404(event_id, Action.DOOR)
    form = BadgeLookupForm()
    scanned = scan_badge(event, form.code.data or "") if form.validate_on_submit() else None
    if request.form.get("partial") == "1":
        # The camera read something, so the script always gets an answer: a code the form
        # refuses (longer than any badge link, such as a contact card's) is not a badge.
        answer = scanned or ScannedBadge("not_a_badge")
        return render_template("door/_scanned.html", event=event, scanned=answer)
    return _desk(event, DoorCheckInForm(formdata=None), form, scanned=scanned)


@bp.get("/door/count")
def count(event_id: int) -> str:
    """Return the live count alone, for the desk's refresh script."""
    event = event_or_404(event_id, Action.DOOR)
    return render_template("door/_count.html", count=door_count(event))


@bp.post("/badges")
def badges(event_id: int) -> str:
    """Show name badges to print, eight a sheet: one person's, or everyone's checked in."""
    event = event_or_404(event_id, Action.PRINT_BADGES)
    printed = print_badges(event, current_app.secret_key, _attendance_id())
    db.session.commit()
    url = _badge_url()
    return render_template(
        "door/badges.html",
        event=event,
        paper=_paper(),
        sheets=[
            [
                (badge, qr_svg(url(badge.token), f"QR code of {badge.name}'s badge"))
                for badge in sheet
            ]
            for sheet in sheets(printed)
        ],
    )


@bp.post("/badges.pdf")
def badges_download(event_id: int) -> Response:
    """Download name badges as a PDF, eight a sheet of A4 or US Letter."""
    event = event_or_404(event_id, Action.PRINT_BADGES)
    printed = print_badges(event, current_app.secret_key, _attendance_id())
    db.session.commit()
    fonts = current_app.config["BADGE_FONTS"], current_app.config["BADGE_BOLD_FONTS"]
    pdf = badges_pdf(event.name, printed, _badge_url(), _paper(), *fonts)
    return download(pdf, "application/pdf", f"badges-{event.id}.pdf")


def _desk(event: Event, form: DoorCheckInForm, lookup: BadgeLookupForm, **extra: object) -> str:
    person = _row_id(request.args.get("person", ""))
    just_checked_in = attendance_of_event(event, person) if person else None
    form.offer(popular_interests(event))
    return render_template(
        "door/desk.html",
        event=event,
        form=form,
        lookup=lookup,
        count=door_count(event),
        can=allowed_actions(event),
        just_checked_in=organiser_card(just_checked_in) if just_checked_in else None,
        refresh_seconds=LIVE_REFRESH_SECONDS,
        **extra,
    )


def _attendance_id() -> int | None:
    """Return whose badge to print: None for everyone; an id no row has (0) prints no one."""
    if "attendance" not in request.form:
        return None
    return _row_id(request.form["attendance"]) or 0


def _row_id(value: str) -> int | None:
    """Return a typed id if it can be a row's, else None (never a query the database refuses)."""
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(ID_MAX))):
        return None
    return int(value) if 0 < int(value) <= ID_MAX else None


def _paper() -> str:
    paper = request.form.get("paper", "a4")
    return paper if paper in PAPERS else "a4"


def _badge_url() -> Callable[[str], str]:
    base = current_app.config["PUBLIC_URL"]
    return lambda token: f"{base}/b/{token}"
