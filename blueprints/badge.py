"""Badges: my badge with its QR code and connections, and the card others see when they scan it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from blueprints import device
from blueprints.downloads import vcard_download
from blueprints.extensions import lookup_limited
from blueprints.forms import NoteForm, ProfileForm
from blueprints.wording import with_names
from domain.attendees import popular_interests
from domain.badges import card_page, edit_badge_profile, live_badge, live_owner, my_card
from domain.checkin import WindowState, checkin_window, find_attendance_by_badge
from domain.connections import (
    ConnectError,
    accept_connection,
    block,
    connection_of,
    decline_connection,
    is_blocked,
    remove_connection,
    remove_person,
    request_connection,
    set_note,
    share_email,
)
from domain.db import db, utcnow
from domain.followups import pending_confirmation, resend_confirmation
from domain.limits import (
    CONNECTION_REQUESTS_PER_HOUR,
    LIVE_REFRESH_SECONDS,
    NOTE_MAX,
    PEOPLE_REFRESH_SECONDS,
)
from domain.met_before import met_before_here
from domain.models import Attendance, Connection
from domain.profile import ProfileError
from domain.qr import qr_svg
from domain.suggestions import suggested
from domain.versions import BadgeTags, badge_tag, badge_version
from domain.visibility import contact_card, preview_card

bp = Blueprint("badge", __name__, url_prefix="/b")

BLOCKED = "You blocked {}. They won't see you or be able to connect."
CONNECT_MESSAGES = {
    "self": "That's your own badge: show it to someone else so they can scan it.",
    "rate_limited": (
        f"You've sent {CONNECTION_REQUESTS_PER_HOUR} requests in the last hour. "
        "Take a breather and try again a little later."
    ),
    "note_too_long": f"Keep the note short: {NOTE_MAX} characters at most.",
    "note_control": "The note can't contain control characters.",
    "own_request": "You asked to connect: it's up to them to accept.",
    "not_pending": "That request has already been answered.",
    "not_connected": "You can share your email once you're connected.",
    "gone": "That connection was removed a moment ago.",
}


def badge_url(token: str) -> str:
    """Return the absolute link a badge's QR code holds."""
    return f"{current_app.config['PUBLIC_URL']}/b/{token}"


# ---------------------------------------------------------------- looking things up


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


def _card_or_404(token: str) -> tuple[Attendance, Attendance | None]:
    """Return the badge's owner and my attendance at their event; 404 if they blocked me."""
    owner = _attendance_or_404(token)
    return owner, _viewer_or_404(owner)


def _viewer_or_404(owner: Attendance) -> Attendance | None:
    """Return my attendance at the owner's event, if any; 404 if either blocked the other."""
    viewer = device.attendance_at(owner.event_id)
    if viewer is not None and is_blocked(owner, viewer):
        abort(404)
    return viewer


def _my_connection_or_404(token: str, connection_id: int) -> tuple[Attendance, Connection]:
    mine = _mine_or_404(token)
    connection = connection_of(mine, connection_id)
    if connection is None:
        abort(404)
    return mine, connection


# ---------------------------------------------------------------- pages


@bp.get("/<token:token>")
@lookup_limited
def view(token: str) -> str:
    """Show my badge to me, and my card to anyone else."""
    owner = _attendance_or_404(token)
    if device.owns(owner):
        return render_template(
            "badge/mine.html",
            attendance=owner,
            token=token,
            qr=qr_svg(badge_url(token), f"Badge QR code for {owner.person.name}"),
            refresh_seconds=LIVE_REFRESH_SECONDS,
            people_refresh_seconds=PEOPLE_REFRESH_SECONDS,
            confirming=pending_confirmation(owner),
            fields=my_card(owner),
            versions=_etags(badge_tag(owner.id)),
            **_live_context(owner),
        )
    return _card_page(owner, _viewer_or_404(owner), token, NoteForm())


def _card_page(owner: Attendance, viewer: Attendance | None, token: str, form: NoteForm) -> str:
    met = met_before_here(viewer, only=owner.id) if viewer else []
    return render_template(
        "badge/card.html",
        card=card_page(owner, viewer),
        event_id=owner.event_id,
        checkin_token=owner.event.checkin_token,
        token=token,
        met_before=met[0] if met else None,
        my_token=device.badge_token(owner.event_id) if viewer else None,
        form=form,
        note_max=NOTE_MAX,
    )


@bp.get("/<token:token>/live")
@lookup_limited
def live(token: str) -> Response:
    """Return my own list on my badge page (requests, connections, people met before);
    304 when nothing in it changed."""
    return _live_part(token, "badge/_live.html", to_meet=False)


@bp.get("/<token:token>/live/people")
@lookup_limited
def live_people(token: str) -> Response:
    """Return the people my badge page suggests meeting; 304 when none of them changed."""
    return _live_part(token, "badge/_people.html", to_meet=True)


def _live_part(token: str, template: str, *, to_meet: bool) -> Response:
    """Answer one live half of my badge page: the people to meet, or my own list."""
    version = badge_version(token)
    if version is None or not device.holds(version.event_id, token):
        abort(404)
    tag = version.tags.part(to_meet=to_meet)
    if request.if_none_match.contains_weak(tag):
        return _not_modified(tag)
    mine = live_owner(version.attendance_id)
    context = _live_context(mine, mine_part=not to_meet, to_meet=to_meet)
    response = make_response(render_template(template, attendance=mine, token=token, **context))
    response.set_etag(tag, weak=True)
    return response


def _not_modified(tag: str) -> Response:
    response = Response(status=304)
    response.set_etag(tag, weak=True)
    return response


def _etags(tags: BadgeTags) -> BadgeTags:
    """Return a page's versions as the ETag header carries them."""
    return BadgeTags(f'W/"{tags.mine}"', f'W/"{tags.to_meet}"')


@bp.get("/<token:token>/preview")
@lookup_limited
def preview(token: str) -> str:
    """Show my card as a stranger at the event and as a connection see it."""
    mine = _mine_or_404(token)
    return render_template(
        "badge/preview.html", attendance=mine, token=token, preview=preview_card(mine)
    )


@bp.route("/<token:token>/edit", methods=["GET", "POST"])
@lookup_limited
def edit(token: str) -> Response | str:
    """Edit the profile I show at this event, and who sees each part."""
    attendance = _mine_or_404(token)
    form = ProfileForm.for_badge(attendance)
    form.offer(popular_interests(attendance.event))
    if form.validate_on_submit():
        try:
            edit_badge_profile(attendance, **form.badge_profile())
        except ProfileError as error:
            db.session.rollback()
            form.name.errors = [*form.name.errors, error.message]
        else:
            db.session.commit()
            flash("Profile saved.", "success")
            return redirect(url_for("badge.view", token=token), 303)
    return render_template("badge/edit.html", attendance=attendance, form=form, token=token)


@bp.post("/<token:token>/confirmation")
@lookup_limited
def resend_confirmation_mail(token: str) -> Response:
    """Send the mail that confirms my address again, within its limits."""
    mine = _mine_or_404(token)
    sent = resend_confirmation(mine)
    db.session.commit()
    if sent:
        flash("We sent the confirmation again. It can take a minute to arrive.", "success")
    else:
        flash(
            "We sent one recently, so we won't send another yet: look for an email from "
            "Rapport, in your spam folder too.",
            "info",
        )
    return redirect(url_for("badge.view", token=token), 303)


@bp.post("/<token:token>/forget")
@lookup_limited
def forget(token: str) -> Response:
    """Forget everything of mine on this phone, for a shared or borrowed phone."""
    attendance = _mine_or_404(token)
    device.start_over()
    db.session.commit()
    flash(
        "This phone no longer holds your badge, and you're signed out on every phone. "
        "An emailed sign-in link brings your badge back.",
        "info",
    )
    return redirect(url_for("public.landing", token=attendance.event.checkin_token), 303)


# ---------------------------------------------------------------- connecting


@bp.post("/<token:token>/connect")
@lookup_limited
def connect(token: str) -> Response:
    """Ask the badge's owner to connect, with an optional private note."""
    owner, viewer = _card_or_404(token)
    if viewer is None:
        return redirect(
            url_for("public.landing", token=owner.event.checkin_token, next=f"/b/{token}"), 303
        )
    if met_before_here(viewer, only=owner.id):
        # A connection belongs to the two people: the earlier one still holds.
        flash(with_names("You're already connected with {}.", owner.person.name), "info")
        return redirect(url_for("badge.view", token=token), 303)
    form = NoteForm()
    if not form.validate():
        # The card again, with what was typed and why it can't go: nothing is lost.
        return _card_page(owner, viewer, token, form), 400
    return _connection_change(
        token,
        lambda: request_connection(viewer, owner, form.note.data or ""),
        # A request sent is said once, by the card it leads back to.
        lambda connection: (
            with_names("You're now connected with {}.", owner.person.name)
            if connection.accepted
            else ""
        ),
    )


@bp.post("/<token:token>/block")
@lookup_limited
def block_owner(token: str) -> Response:
    """Block the badge's owner: they can't see my card or ask to connect again."""
    owner, viewer = _card_or_404(token)
    if viewer is None:
        abort(404)
    try:
        block(viewer, owner)
    except ConnectError:
        abort(404)
    db.session.commit()
    flash(with_names(BLOCKED, owner.person.name), "info")
    return redirect(url_for("badge.view", token=device.badge_token(viewer.event_id)), 303)


@bp.post("/<token:token>/suggestions/<id:attendance_id>/connect")
@lookup_limited
def connect_suggestion(token: str, attendance_id: int) -> Response:
    """Ask someone from my suggestions to connect."""
    mine = _mine_or_404(token)
    target = suggested(mine, attendance_id)
    if target is None or met_before_here(mine, only=attendance_id):
        abort(404)
    return _connection_change(
        token,
        lambda: request_connection(mine, target),
        lambda connection: (
            with_names("You're now connected with {}.", target.person.name)
            if connection.accepted
            else with_names("Request sent to {}.", target.person.name)
        ),
    )


@bp.post("/<token:token>/connections/<id:connection_id>/accept")
@lookup_limited
def accept(token: str, connection_id: int) -> Response:
    """Accept a request to connect."""
    mine, connection = _my_connection_or_404(token, connection_id)
    other = connection.other(mine).person.name
    return _connection_change(
        token,
        lambda: accept_connection(mine, connection),
        lambda _: with_names("You're now connected with {}.", other),
    )


@bp.post("/<token:token>/connections/<id:connection_id>/decline")
@lookup_limited
def decline(token: str, connection_id: int) -> Response:
    """Decline a request to connect; the other person is not told."""
    mine, connection = _my_connection_or_404(token, connection_id)
    return _connection_change(
        token, lambda: decline_connection(mine, connection), lambda _: "Request declined."
    )


@bp.post("/<token:token>/connections/<id:connection_id>/remove")
@lookup_limited
def remove(token: str, connection_id: int) -> Response:
    """Remove a connection, or withdraw my request."""
    mine, connection = _my_connection_or_404(token, connection_id)
    other = connection.other(mine).person.name
    return _connection_change(
        token,
        lambda: remove_connection(mine, connection),
        lambda _: with_names("Removed {}.", other),
    )


@bp.post("/<token:token>/met-before/<id:attendance_id>/remove")
@lookup_limited
def remove_met_before(token: str, attendance_id: int) -> Response:
    """Remove someone here I met before: our earlier connections go, with no block."""
    mine = _mine_or_404(token)
    found = met_before_here(mine, only=attendance_id)
    if not found:
        abort(404)
    met = found[0]
    return _connection_change(
        token,
        lambda: remove_person(mine.person_id, met.person_id),
        lambda _: with_names("Removed {}. You're no longer connected.", met.name),
    )


@bp.post("/<token:token>/connections/<id:connection_id>/block")
@lookup_limited
def block_connection(token: str, connection_id: int) -> Response:
    """Block the other person of a request or connection."""
    mine, connection = _my_connection_or_404(token, connection_id)
    other = connection.other(mine)
    return _connection_change(
        token,
        lambda: block(mine, other),
        lambda _: with_names(BLOCKED, other.person.name),
    )


@bp.post("/<token:token>/connections/<id:connection_id>/note")
@lookup_limited
def note(token: str, connection_id: int) -> Response:
    """Change my private note about a connection."""
    mine, connection = _my_connection_or_404(token, connection_id)
    form = NoteForm()
    if not form.validate():
        flash(" ".join(form.note.errors), "error")
        return redirect(url_for("badge.view", token=token), 303)
    return _connection_change(
        token, lambda: set_note(mine, connection, form.note.data or ""), lambda _: "Note saved."
    )


@bp.post("/<token:token>/connections/<id:connection_id>/share-email")
@lookup_limited
def share_my_email(token: str, connection_id: int) -> Response:
    """Show my email to this one connection, whatever my event-wide choice."""
    return _share_my_email(token, connection_id, shared=True)


@bp.post("/<token:token>/connections/<id:connection_id>/stop-sharing-email")
@lookup_limited
def stop_sharing_my_email(token: str, connection_id: int) -> Response:
    """Stop showing my email to this one connection (my event-wide choice still holds)."""
    return _share_my_email(token, connection_id, shared=False)


def _share_my_email(token: str, connection_id: int, *, shared: bool) -> Response:
    mine, connection = _my_connection_or_404(token, connection_id)
    other = connection.other(mine).person.name
    told = with_names(
        "{} now sees your email."
        if shared
        else "{} no longer sees your email through this connection.",
        other,
    )
    return _connection_change(token, lambda: share_email(mine, connection, shared), lambda _: told)


@bp.get("/<token:token>/connections/<id:connection_id>/contact.vcf")
@lookup_limited
def contact(token: str, connection_id: int) -> Response:
    """Download a connection's shared details as a vCard."""
    mine, connection = _my_connection_or_404(token, connection_id)
    if not connection.accepted:
        abort(404)
    return vcard_download(contact_card(mine, connection))


def _connection_change(
    token: str, change: Callable[[], Connection | None], message: Callable[[Any], str]
) -> Response:
    """Run one connection change, commit it, and go back to the page with a message."""
    try:
        result = change()
    except ConnectError as error:
        db.session.rollback()
        if error.code in ("blocked", "other_event", "not_yours"):
            abort(404)
        flash(CONNECT_MESSAGES[error.code], "error")
        return redirect(url_for("badge.view", token=token), 303)
    # Said before the commit, from what was just written: read after, it would be read again.
    said = message(result)
    db.session.commit()
    if said:
        flash(said, "success")
    return redirect(url_for("badge.view", token=token), 303)


def _live_context(mine: Attendance, **parts: bool) -> dict[str, object]:
    # Once check-in has closed, no one new arrives: the page offers nothing that waits for it.
    over = checkin_window(mine.event).state(utcnow()) is WindowState.ENDED
    return {"live": live_badge(mine, **parts), "note_max": NOTE_MAX, "over": over}
