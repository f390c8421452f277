"""The pages links in emails open: confirm or sign in, unsubscribe, contacts, "in touch"."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from blueprints import device
from blueprints.downloads import download, vcard_download
from blueprints.extensions import csrf, lookup_limited
from blueprints.forms import LinkConsentForm
from blueprints.urls import poster_url
from domain.badges import LinkOffer, SignIn, link_offer, sign_in_with_link
from domain.calendar import event_ics
from domain.checkin import remembered_profile
from domain.db import db
from domain.digest import DigestError, announced_event, connection_for_link, message_by_link_token
from domain.followups import attendance_of, mark_in_touch
from domain.models import OutboxMessage
from domain.profile import mask_email
from domain.signin import LinkError, check_link, find_link
from domain.suppression import suppress
from domain.visibility import contact_card

bp = Blueprint("maillinks", __name__)

LINK_MESSAGES = {
    "used": "This link has already been used. Ask for a new one below if you need to.",
    "expired": "This link has expired. Ask for a new one below.",
}


def _message_or_404(token: str) -> OutboxMessage:
    message = message_by_link_token(token)
    if message is None:
        abort(404)
    return message


# ---------------------------------------------------------------- one-time sign-in links


@bp.route("/m/<token:token>", methods=["GET", "POST"])
@lookup_limited
def sign_in(token: str) -> Response | str:
    """Confirm an address and sign this phone in; GET only asks, so link scanners can't."""
    link = find_link(token)
    if link is None:
        abort(404)
    try:
        check_link(link)
    except LinkError as error:
        return render_template("me/link_problem.html", message=LINK_MESSAGES[error.code]), 410
    holds = link.event_id is not None and device.badge_token(link.event_id) is not None
    offer = link_offer(link, holds)
    saved = remembered_profile(link.person_id) if offer is LinkOffer.CHECK_IN else None
    form = LinkConsentForm.filled(saved)
    if request.method == "GET":
        return render_template(
            "me/sign_in.html",
            link=link,
            offer=offer.value,
            form=form,
            masked_email=mask_email(link.person.email),
        )
    # The consent choices shown beside the button are the ones the check-in takes.
    choices = form.choices() if saved is not None else {}
    # A sign-in starts a clean session under a new secret, made before the badge moves to it.
    secret = device.new_secret()
    try:
        signed = sign_in_with_link(token, secret, **choices)
    except LinkError as error:
        db.session.rollback()
        return render_template("me/link_problem.html", message=LINK_MESSAGES[error.code]), 410
    device.start_over(secret, keeping=signed.person)
    device.sign_in(signed.person)
    if signed.badge is not None:
        device.remember(signed.badge)
    # The link's use and the letting go of whoever the phone held are one transaction.
    db.session.commit()
    flash(_welcome(signed), "success")
    return redirect(_next_page(signed), 303)


def _welcome(signed: SignIn) -> str:
    if signed.ended:
        return "That event has ended. You're signed in: here are your connections."
    if signed.checked_in_now:
        return "You're checked in, with your saved profile."
    if signed.badge is not None:
        return "You're signed in on this phone. Here's your badge."
    if signed.check_in_at is not None:
        return "You're signed in on this phone. Check in below."
    return (
        "Thanks: your email is confirmed." if signed.purpose == "confirm" else "You're signed in."
    )


def _next_page(signed: SignIn) -> str:
    """Where a phone goes after an email link: its badge, the event's check-in, or /me."""
    if signed.badge is not None:
        return url_for("badge.view", token=signed.badge.badge_token)
    if signed.check_in_at is not None:
        # Check-in is closed there now: the event's page says so, and the phone is theirs.
        return url_for("public.landing", token=signed.check_in_at.checkin_token)
    # Back to the badge the confirmation was about, when this phone holds it.
    badge = device.badge_token(signed.event_id) if signed.event_id is not None else None
    if signed.purpose == "confirm" and badge is not None:
        return url_for("badge.view", token=badge)
    return url_for("me.home")


# ---------------------------------------------------------------- unsubscribe


@bp.get("/u/<token:token>")
@lookup_limited
def unsubscribe_page(token: str) -> str:
    """Ask before unsubscribing: link scanners open every link in an email."""
    message = _message_or_404(token)
    return render_template("me/unsubscribe.html", message=message, token=token, done=False)


@csrf.exempt
@bp.post("/u/<token:token>")
@lookup_limited
def unsubscribe(token: str) -> tuple[str, int]:
    """Unsubscribe at once (RFC 8058 one-click): no cookie or form token needed."""
    message = _message_or_404(token)
    suppress(message.to_email, "unsubscribed")
    db.session.commit()
    return render_template("me/unsubscribe.html", message=message, token=token, done=True), 200


# ---------------------------------------------------------------- follow-up links


@bp.get("/f/<token:token>/contacts/<id:connection_id>.vcf")
@lookup_limited
def contact(token: str, connection_id: int) -> Response:
    """Download a connection's shared details from a follow-up email."""
    message = _message_or_404(token)
    connection = connection_for_link(message, connection_id)
    mine = attendance_of(message)
    if connection is None or mine is None:
        abort(404)
    return vcard_download(contact_card(mine, connection))


@bp.get("/f/<token:token>/events/<id:event_id>/<token:signed_token>.ics")
@lookup_limited
def event_calendar(token: str, event_id: int, signed_token: str) -> Response | tuple[str, int]:
    """Download the event a digest announced ("Next: ..."), as a calendar file: the link
    names that event, signed, so an old digest keeps giving the event it announced."""
    message = _message_or_404(token)
    try:
        event = announced_event(
            current_app.config["SECRET_KEY"], message, token, event_id, signed_token
        )
    except DigestError as error:
        return render_template("me/event_gone.html", message=error.message), 410
    if event is None:
        abort(404)
    host = urlsplit(current_app.config["PUBLIC_URL"]).hostname or "rapport"
    ics = event_ics(event, host, poster_url(event))
    return download(ics, "text/calendar", f"{event.name}.ics", fallback="event")


@bp.route("/f/<token:token>/in-touch/<id:connection_id>", methods=["GET", "POST"])
@lookup_limited
def in_touch(token: str, connection_id: int) -> Response | str:
    """Mark a connection as "we've been in touch": no more nudges about it."""
    message = _message_or_404(token)
    connection = connection_for_link(message, connection_id)
    mine = attendance_of(message)
    if connection is None or mine is None:
        abort(404)
    other = connection.other(mine).person.name
    if request.method == "POST":
        mark_in_touch(connection)
        db.session.commit()
        return render_template(
            "me/in_touch.html", other=other, done=True, token=token, connection=connection
        )
    return render_template(
        "me/in_touch.html",
        other=other,
        done=connection.in_touch_at is not None,
        token=token,
        connection=connection,
    )
