"""The organiser's pages: events, the poster and the live attendee page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from blueprints.access import (
    administrators_named,
    allowed_actions,
    event_or_404,
    is_administrator,
    resume_rights,
)
from blueprints.downloads import download
from blueprints.emails import preview_digest
from blueprints.forms import DeleteEventForm, EventForm
from blueprints.urls import poster_url
from blueprints.wording import with_names
from domain.attendees import (
    attendee_changes,
    attendee_listing,
    attendees_csv,
    clean_search,
)
from domain.communities import communities_of, standing
from domain.db import db, utcnow
from domain.email_outlook import digest_recipient, emails_page, message_of_event
from domain.ending import ending_preview
from domain.event_state import EventState, event_state
from domain.events import (
    EventDetails,
    EventError,
    create_event,
    default_timezone,
    event_overview,
    is_timezone,
    known_timezones,
    listed_events,
    local_time,
    rotate_poster,
    update_event,
    wall_clock_now,
)
from domain.followups import end_event
from domain.limits import ATTENDEES_PAGE, LIVE_REFRESH_SECONDS, PICTURES_REFRESH_SECONDS, SEARCH_MAX
from domain.models import Event, OutboxMessage
from domain.outbox import OutboxError, cancel_message, retry_message
from domain.pictures import room_pictures
from domain.qr import qr_svg
from domain.retention import delete_event as remove_event
from domain.retention import deletion_preview
from domain.sending import SendingError, may_resume, resume_sending, sending_hold
from domain.team import Action

bp = Blueprint("organiser", __name__, url_prefix="/organiser")

EVENT_ERRORS = {
    "unknown_timezone": ("timezone", "Pick a time zone from the list, such as Europe/London."),
    "ends_before_start": ("ends_at", "The event must end after it starts."),
    "followup_setting": ("followup_timing", "Pick one of the follow-up choices."),
    "checkin_window": ("checkin_opens_minutes", "Pick one of the check-in choices."),
    "unknown_community": ("community", "Pick one of your communities."),
    "retention": ("retention_days", "Pick one of the choices."),
}


@bp.before_request
@login_required
def require_login() -> None:
    """Every organiser page needs a signed-in organiser."""


@bp.get("/")
def events() -> str:
    """List the organiser's events with their state and counts (and a pause, to administrators)."""
    now = utcnow()
    return render_template(
        "organiser/events.html",
        events=listed_events(current_user, now),
        hold=sending_hold(now) if is_administrator() else None,
    )


@bp.route("/events/new", methods=["GET", "POST"])
def new_event() -> Response | str:
    """Create an event."""
    form = EventForm()
    form.offer_communities(communities_of(current_user))
    if request.method == "GET":
        form.community.data = request.args.get("community", "")
        form.timezone.data = request.args.get("timezone", "")
        if not is_timezone(form.timezone.data):
            form.timezone.data = default_timezone(current_user)
        start = wall_clock_now(form.timezone.data).replace(minute=0, second=0, microsecond=0)
        form.starts_at.data = start + timedelta(hours=1)
        form.ends_at.data = start + timedelta(hours=4)
    if form.validate_on_submit():
        try:
            event = create_event(current_user, _details(form))
        except EventError as error:
            db.session.rollback()
            _show_event_error(form, error)
        else:
            db.session.commit()
            flash("Event created. Print the poster and you're ready.", "success")
            return redirect(url_for("organiser.attendees", event_id=event.id), 303)
    return render_template(
        "organiser/event_form.html", form=form, event=None, timezones=known_timezones()
    )


@bp.route("/events/<id:event_id>/edit", methods=["GET", "POST"])
def edit_event(event_id: int) -> Response | str:
    """Change an event's details."""
    event = event_or_404(event_id, Action.SETTINGS)
    form = EventForm()
    # The event's communities are its owner's, whoever on the team edits it.
    form.offer_communities(communities_of(event.organiser))
    if request.method == "GET":
        form.process(
            data={
                "name": event.name,
                "starts_at": local_time(event, event.starts_at).replace(tzinfo=None),
                "ends_at": local_time(event, event.ends_at).replace(tzinfo=None),
                "timezone": event.timezone,
                "venue": event.venue,
                "description": event.description,
                "followup_timing": event.followup_timing,
                "nudge_days": str(event.nudge_days),
                "checkin_opens_minutes": str(event.checkin_opens_minutes),
                "checkin_closes_minutes": str(event.checkin_closes_minutes),
                "community": str(event.community_id or ""),
                "thank_you_note": event.thank_you_note,
                "retention_days": str(event.retention_days),
            }
        )
    if form.validate_on_submit():
        try:
            update_event(event, _details(form))
        except EventError as error:
            db.session.rollback()
            _show_event_error(form, error)
        else:
            db.session.commit()
            flash("Event saved.", "success")
            return redirect(url_for("organiser.attendees", event_id=event.id), 303)
    return render_template(
        "organiser/event_form.html",
        form=form,
        event=event,
        can=allowed_actions(event),
        timezones=known_timezones(),
    )


@bp.get("/events/<id:event_id>")
def attendees(event_id: int) -> str:
    """Show who is here, a page at a time, refreshing by itself."""
    event = event_or_404(event_id, Action.ATTENDEES)
    listing = attendee_listing(event, _search(), request.args.get("page", 1, type=int) or 1)
    return render_template(
        "organiser/attendees.html",
        event=event,
        community=event.community if event.organiser_id == current_user.id else None,
        can=allowed_actions(event),
        overview=event_overview(event, utcnow()),
        listing=listing,
        standing=standing(event),
        version=_etag(listing.version),
        refresh_seconds=LIVE_REFRESH_SECONDS,
        pictures_seconds=PICTURES_REFRESH_SECONDS,
        search_max=SEARCH_MAX,
        page_size=ATTENDEES_PAGE,
    )


@bp.get("/events/<id:event_id>/live")
def attendees_live(event_id: int) -> Response:
    """Return what changed on the attendee page since the version it holds; 304 if nothing."""
    event = event_or_404(event_id, Action.ATTENDEES)
    held = _version_held()
    if held == event.attendees_version:
        return _not_modified(_etag(held))
    listing = (
        attendee_changes(event, held, _search(), _shown())
        if held is not None and "whole" not in request.args
        else attendee_listing(event, _search(), request.args.get("page", 1, type=int) or 1)
    )
    response = make_response(
        render_template(
            "organiser/_attendee_table.html",
            event=event,
            can=allowed_actions(event),
            listing=listing,
            standing=standing(event),
        )
    )
    response.headers["ETag"] = _etag(listing.version)
    return response


def _search() -> str:
    return clean_search(request.args.get("q", ""))


def _shown() -> tuple[int, ...]:
    """Return the attendee lines the refreshing page shows, as it names them (one page)."""
    named = request.args.get("shown", "").split(",")[:ATTENDEES_PAGE]
    return tuple(int(part) for part in named if part.isdecimal() and len(part) < 19)


def _etag(version: int) -> str:
    """Return an attendee page version as its ETag (weak: compression keeps it as it is)."""
    return f'W/"a{version}"'


def _version_held() -> int | None:
    """Return the page version the refresh says it holds, if it names one."""
    for tag in request.if_none_match.as_set(include_weak=True):
        if tag.startswith("a") and tag[1:].isdigit() and len(tag) < 20:
            return int(tag[1:])
    return None


def _not_modified(etag: str) -> Response:
    response = Response(status=304)
    response.headers["ETag"] = etag
    return response


@bp.get("/events/<id:event_id>/attendees.csv", endpoint="attendees_csv")
def attendees_csv_download(event_id: int) -> Response:
    """Download the attendee list as CSV, safe to open in a spreadsheet."""
    event = event_or_404(event_id, Action.CSV)
    return download(attendees_csv(event), "text/csv", f"attendees-{event.id}.csv")


@bp.get("/events/<id:event_id>/poster")
def poster(event_id: int) -> str:
    """Show the print-ready poster."""
    event = event_or_404(event_id, Action.POSTER)
    url = poster_url(event)
    return render_template(
        "organiser/poster.html",
        event=event,
        url=url,
        qr=qr_svg(url, f"QR code to check in at {event.name}"),
    )


@bp.get("/events/<id:event_id>/poster.svg")
def poster_svg(event_id: int) -> Response:
    """Download the poster QR code as an SVG file."""
    event = event_or_404(event_id, Action.POSTER)
    svg = '<?xml version="1.0" encoding="UTF-8"?>\n' + qr_svg(poster_url(event))
    return download(svg, "image/svg+xml", f"rapport-poster-{event.id}.svg")


@bp.route("/events/<id:event_id>/poster/rotate", methods=["GET", "POST"])
def rotate(event_id: int) -> Response | str:
    """Ask, then replace the poster code; printed posters stop working."""
    event = event_or_404(event_id, Action.POSTER)
    if request.method == "GET":
        return render_template("organiser/rotate.html", event=event)
    rotate_poster(event)
    db.session.commit()
    flash("New poster code made. Old posters no longer work: print this one.", "success")
    return redirect(url_for("organiser.poster", event_id=event.id), 303)


@bp.route("/events/<id:event_id>/end", methods=["GET", "POST"])
def end(event_id: int) -> Response | str | tuple[str, int]:
    """Ask, saying who gets follow-ups and when, then end the event now."""
    event = event_or_404(event_id, Action.END)
    state = event_state(event, utcnow())
    if state is EventState.ENDED:
        flash("The event has already ended.", "success")
        return redirect(url_for("organiser.attendees", event_id=event.id), 303)
    if state is not EventState.LIVE:
        # Ended before it started, it would last no time at all and could not be edited.
        page = render_template(
            "organiser/end.html", event=event, starts=local_time(event, event.starts_at)
        )
        return page if request.method == "GET" else (page, 409)
    if request.method == "GET":
        return render_template(
            "organiser/end.html", event=event, preview=ending_preview(event, utcnow())
        )
    end_event(event)
    db.session.commit()
    flash("The event has ended. Follow-ups go out as set in the event's settings.", "success")
    return redirect(url_for("organiser.attendees", event_id=event.id), 303)


@bp.route("/events/<id:event_id>/delete", methods=["GET", "POST"])
def delete_event(event_id: int) -> Response | str:
    """Ask, saying what goes and what stays, then delete the event for good."""
    event = event_or_404(event_id, Action.DELETE)
    form = DeleteEventForm(event.name)
    if not form.validate_on_submit():
        return render_template(
            "organiser/delete.html", event=event, form=form, preview=deletion_preview(event)
        )
    name = event.name
    remove_event(event, utcnow())
    db.session.commit()
    flash(with_names("{} is deleted. Its poster no longer works.", name), "success")
    return redirect(url_for("organiser.events"), 303)


@bp.get("/events/<id:event_id>/pictures")
def pictures(event_id: int) -> str:
    """Show the pictures of the room on a page of their own: the summary of the night."""
    event = event_or_404(event_id, Action.PICTURES)
    return render_template(
        "organiser/pictures.html",
        event=event,
        can=allowed_actions(event),
        overview=event_overview(event, utcnow()),
        pictures=room_pictures(event),
    )


@bp.get("/events/<id:event_id>/pictures/live")
def pictures_live(event_id: int) -> Response:
    """Return the pictures alone, for the event page; 304 while no one came or connected."""
    event = event_or_404(event_id, Action.PICTURES)
    # The pictures show what the attendee page shows, so its version tells when they change.
    tag = f'W/"p{event.attendees_version}"'
    if request.if_none_match.contains_weak(tag.removeprefix("W/").strip('"')):
        return _not_modified(tag)
    response = make_response(
        render_template("organiser/_pictures.html", event=event, pictures=room_pictures(event))
    )
    response.headers["ETag"] = tag
    return response


@bp.get("/events/<id:event_id>/emails")
def emails(event_id: int) -> str:
    """Show the event's emails: counts by state and one page of messages."""
    event = event_or_404(event_id, Action.EMAILS)
    now = utcnow()
    page = emails_page(event, now, request.args.get("page", 1, type=int))
    return render_template(
        "organiser/emails.html",
        event=event,
        page=page,
        can=allowed_actions(event),
        can_resume=may_resume(current_user, event, now=now, **resume_rights()),
        administrators_named=administrators_named(),
    )


@bp.post("/events/<id:event_id>/emails/resume")
def resume(event_id: int) -> Response:
    """Resume sending after the email service refused our key, once it is fixed."""
    event = event_or_404(event_id, Action.RESUME)
    _resume(event)
    return redirect(url_for("organiser.emails", event_id=event.id), 303)


@bp.post("/sending/resume")
def resume_all() -> Response:
    """Resume sending for the whole installation: its administrators' button."""
    if not is_administrator():
        abort(404)
    _resume(None)
    return redirect(url_for("organiser.events"), 303)


def _resume(event: Event | None) -> None:
    try:
        resumed = resume_sending(current_user, event, now=utcnow(), **resume_rights())
    except SendingError as error:
        db.session.rollback()
        flash(error.message, "error")
        return
    db.session.commit()
    if resumed is None:
        flash("Sending isn't paused: nothing changed.", "success")
    else:
        flash(
            "Sending resumed: waiting emails go out now. If the email service still refuses "
            "the key, sending pauses again at the next email and the emails page says so.",
            "success",
        )


@bp.get("/events/<id:event_id>/emails/preview/<id:attendance_id>")
def preview(event_id: int, attendance_id: int) -> Response:
    """Show the digest an attendee would get, with their private notes hidden."""
    event = event_or_404(event_id, Action.EMAILS)
    attendance = digest_recipient(event, attendance_id)
    if attendance is None:
        abort(404)
    return preview_digest(attendance)


@bp.post("/events/<id:event_id>/emails/<id:message_id>/cancel")
def cancel(event_id: int, message_id: int) -> Response:
    """Cancel an email that hasn't gone out."""
    return _change_message(event_id, message_id, cancel_message, "Email cancelled.")


@bp.post("/events/<id:event_id>/emails/<id:message_id>/retry")
def retry(event_id: int, message_id: int) -> Response:
    """Try a failed email again."""
    return _change_message(event_id, message_id, retry_message, "Email queued again.")


def _change_message(
    event_id: int, message_id: int, change: Callable[[OutboxMessage], None], done: str
) -> Response:
    event = event_or_404(event_id, Action.EMAILS)
    message = message_of_event(event.id, message_id)
    if message is None:
        abort(404)
    try:
        change(message)
    except OutboxError:
        db.session.rollback()
        flash("That email has moved on since the page was loaded.", "error")
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(url_for("organiser.emails", event_id=event.id), 303)


def _details(form: EventForm) -> EventDetails:
    return EventDetails(
        name=form.name.data,
        starts_at=form.starts_at.data,
        ends_at=form.ends_at.data,
        timezone=form.timezone.data,
        venue=form.venue.data or "",
        description=form.description.data or "",
        followup_timing=form.followup_timing.data,
        nudge_days=int(form.nudge_days.data),
        checkin_opens_minutes=int(form.checkin_opens_minutes.data),
        checkin_closes_minutes=int(form.checkin_closes_minutes.data),
        thank_you_note=form.thank_you_note.data or "",
        retention_days=int(form.retention_days.data),
        community_id=form.community_id(),
    )


def _show_event_error(form: EventForm, error: EventError) -> None:
    field, message = EVENT_ERRORS[error.code]
    getattr(form, field).errors = [*getattr(form, field).errors, message]
