"""The pages a phone opens from the poster: the event landing page and check-in."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from blueprints import device
from blueprints.extensions import (
    count_outcome,
    counted_outcome,
    device_key,
    limiter,
    lookup_limited,
    reads_before_writes,
    sign_in_requests_limited,
)
from blueprints.forms import CheckInForm, SignInRequestForm
from blueprints.navigation import badge_continuation
from domain import caching, limits
from domain.attendees import popular_interests
from domain.checkin import (
    CheckInError,
    CheckInWindow,
    Profile,
    WindowState,
    check_in,
    checkin_window,
    find_attendance_by_badge,
    find_event_by_checkin_token,
    remembered_profile,
)
from domain.db import begin_writing, db, utcnow
from domain.events import local_time
from domain.models import Event
from domain.people import send_sign_in_link
from domain.profile import mask_email
from domain.signin import lifetime_in_words

bp = Blueprint("public", __name__)

# One answer whether the address is checked in here or was used elsewhere, so the form
# does not tell a stranger where someone has been.
EMAIL_IN_USE = (
    "This email already belongs to someone on Rapport. If it's yours, get a sign-in link "
    "by email to use this phone."
)


@bp.get("/")
def home() -> str:
    """Say what Rapport is."""
    return render_template("public/home.html")


def _holds_a_badge_here() -> bool:
    """Tell whether this phone holds a working badge at the poster's event."""
    token = (request.view_args or {}).get("token")
    event = find_event_by_checkin_token(token) if isinstance(token, str) else None
    return event is not None and device.attendance_at(event.id) is not None


@bp.route("/e/<token:token>", methods=["GET", "POST"])
@reads_before_writes
@lookup_limited
# Both count new people only: form errors and a second tap use no budget (so no one at the
# venue's address can use the room's up with bad forms), and a phone that holds its badge
# here is sent to it, whatever its own budget.
@limiter.limit(limits.CHECKINS_PER_ADDRESS, methods=["POST"], given_back_unless=counted_outcome)
@limiter.limit(
    limits.CHECKINS_PER_DEVICE,
    methods=["POST"],
    key_func=device_key,
    given_back_unless=counted_outcome,
    exempt_when=_holds_a_badge_here,
    error_message=(
        "This phone has checked in several people in the last hour. "
        "Please check in on your own phone."
    ),
)
def landing(token: str) -> Response | str | tuple[str, int]:
    """Show the event and its check-in form, or this phone's badge if it has one here."""
    event = _event_or_404(token)
    window = checkin_window(event)
    # A phone that checked in before (anywhere) gets its person's last profile, filled in.
    someone_else = bool(request.args.get("new"))
    saved = None if someone_else else remembered_profile(device.person_id())
    if _is_a_new_phone(saved):
        # Every phone arriving at the door asks for this page: no form is built for it.
        closed = _badge_or_closed(event, window, None)
        if closed is not None:
            return closed
        device.device_secret()
        return _new_phone_page(event, window)
    form = CheckInForm.filled(saved)
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    continuation = _continuation(event, form.next.data)
    elsewhere = _badge_or_closed(event, window, continuation)
    if elsewhere is not None:
        return elsewhere
    if form.validate_on_submit():
        return _check_in(event, window, form, continuation)
    device.device_secret()
    # A form with errors is the open new-person form, whoever's phone it is.
    returning = saved is not None and not form.errors
    return _landing_page(
        event,
        window,
        WindowState.OPEN,
        form=form,
        offer_sign_in=False,
        returning=returning,
        someone_else=someone_else,
        letting_go=_whose_phone() if someone_else else "",
        masked_email=mask_email(saved.email) if returning and saved else "",
    )


def _whose_phone() -> str:
    """Return the name of the person this phone belongs to, if it belongs to someone."""
    owner = device.owner()
    return owner.name if owner is not None else ""


def _badge_or_closed(
    event: Event, window: CheckInWindow, continuation: str | None
) -> Response | tuple[str, int] | None:
    """Send a phone checked in here to its badge, or say check-in is closed; else None."""
    mine = device.attendance_at(event.id)
    if mine is not None:
        return _to_badge(mine.event_id, already=continuation is None, to=continuation)
    state = window.state(utcnow())
    if state is not WindowState.OPEN:
        return _closed(event, window, state)
    return None


def _check_in(
    event: Event, window: CheckInWindow, form: CheckInForm, continuation: str | None
) -> Response | str | tuple[str, int]:
    """Check this phone in from a valid form; go to the badge, or show why not."""
    secret, person_id = device.device_secret(), device.person_id()
    # What was read so far is read; the write lock is taken from here to the commit.
    begin_writing()
    try:
        with _unless_deleted(event):
            result = check_in(event, _profile(form), device_secret=secret, person_id=person_id)
    except CheckInError as error:
        db.session.rollback()
        if error.code in (WindowState.NOT_YET, WindowState.ENDED):
            return _closed(event, window, WindowState(error.code))
        form.email.errors.append(EMAIL_IN_USE)
        return _landing_page(event, window, WindowState.OPEN, form=form, offer_sign_in=True)
    # Holding the badge may let go of the phone's last person: one transaction.
    device.hold(result)
    db.session.commit()
    if result.created:
        count_outcome()
    return _to_badge(
        result.event_id, already=not result.created, token=result.badge_token, to=continuation
    )


def _closed(event: Event, window: CheckInWindow, state: WindowState) -> tuple[str, int]:
    """Show when check-in opens, or that the event has ended; a refused POST says why."""
    return _landing_page(event, window, state), 403 if request.method == "POST" else 200


def _is_a_new_phone(saved: object) -> bool:
    """Tell whether this request gets the page every new phone at the door gets alike.

    That is a plain GET from a phone with no saved profile, no badge (its navigation is
    the anonymous one) and no message waiting to be shown.
    """
    return (
        request.method == "GET"
        and not request.args
        and saved is None
        and not session.get("badges")
        and not session.get("_flashes")
    )


# Stands for the CSRF token in a page kept for every new phone; each phone's own replaces
# it. Random per process, so no text typed into an event can contain it.
_TOKEN_SLOT = f"csrf-{secrets.token_hex(16)}"


def _new_phone_page(event: Event, window: CheckInWindow) -> str:
    """Return the check-in page of a new phone: the same for all of them but the token.

    At the door every arriving phone asks for it, so the page is rendered once per
    process for a few seconds (domain/caching.py) and only the phone's CSRF token is put
    in; a change to the event or to the interests it offers shows as soon as it would on
    a page rendered afresh.
    """
    offered = tuple(popular_interests(event))
    today = local_time(event, utcnow()).date()
    key = (
        "landing",
        event.id,
        event.checkin_token,
        event.name,
        event.venue,
        event.description,
        event.event_word,
        event.starts_at,
        event.ends_at,
        event.timezone,
        window.opens_at,
        offered,
        today,
    )
    page = caching.remembered(key, lambda: _page_with_token_slot(event, window))
    return page.replace(_TOKEN_SLOT, generate_csrf())


def _page_with_token_slot(event: Event, window: CheckInWindow) -> str:
    field = current_app.config["WTF_CSRF_FIELD_NAME"]
    setattr(g, field, _TOKEN_SLOT)  # generate_csrf() gives what g holds for this request
    try:
        return _landing_page(
            event,
            window,
            WindowState.OPEN,
            form=CheckInForm(formdata=None),
            offer_sign_in=False,
            returning=False,
            someone_else=False,
            masked_email="",
        )
    finally:
        g.pop(field)


def _landing_page(
    event: Event,
    window: CheckInWindow,
    state: WindowState,
    signin_form: SignInRequestForm | None = None,
    **context: object,
) -> str:
    form = context.get("form")
    if isinstance(form, CheckInForm):
        form.offer(popular_interests(event))
    return render_template(
        "public/landing.html",
        event=event,
        window=state.value,
        opens=local_time(event, window.opens_at),
        today=local_time(event, utcnow()).date(),
        starts=local_time(event, event.starts_at),
        ends=local_time(event, event.ends_at),
        refused=request.endpoint == "public.landing"
        and request.method == "POST"
        and state is not WindowState.OPEN,
        signin_form=signin_form or SignInRequestForm(formdata=None),
        **context,
    )


@bp.post("/e/<token:token>/sign-in")
@lookup_limited
@sign_in_requests_limited
def sign_in_link(token: str) -> str | tuple[str, int]:
    """Email a sign-in link that brings this person's badge to this phone."""
    event = _event_or_404(token)
    form = SignInRequestForm()
    if not form.validate_on_submit():
        window = checkin_window(event)
        state = window.state(utcnow())
        page = _landing_page(
            event, window, state, form=CheckInForm(formdata=None), signin_form=form
        )
        return page, 400
    with _unless_deleted(event):
        send_sign_in_link(form.email.data, event)
        db.session.commit()
    return render_template(
        "me/link_sent.html",
        email=form.email.data,
        lifetime=lifetime_in_words("signin"),
    )


@contextlib.contextmanager
def _unless_deleted(event: Event) -> Iterator[None]:
    """Answer 404 when the event was deleted since this process last looked its poster up.

    The poster's event is remembered for a few seconds in each server process, and only
    the process that deleted it forgets it at once: elsewhere a check-in may still be
    tried, and the database refuses it: the event's row is gone, so a row referring to it
    is refused and moving its attendee page on finds no row.
    """
    try:
        yield
    except (sa.exc.IntegrityError, sa.exc.NoResultFound):
        db.session.rollback()
        caching.forget_event(event.id, event.checkin_token)
        if db.session.get(Event, event.id) is None:
            abort(404)
        raise


def _event_or_404(token: str) -> Event:
    event = find_event_by_checkin_token(token)
    if event is None:
        abort(404)
    return event


def _continuation(event: Event, target: str | None) -> str | None:
    """Return the badge page to come back to after check-in, if it is one at this event."""
    path = badge_continuation(target)
    if path is None:
        return None
    owner = find_attendance_by_badge(path.removeprefix("/b/"))
    return path if owner is not None and owner.event_id == event.id else None


def _to_badge(
    event_id: int, *, already: bool, token: str | None = None, to: str | None = None
) -> Response:
    if already:
        flash("You're already checked in. Here's your badge.", "info")
    else:
        flash("You're checked in.", "success")
    if to is not None:
        return redirect(to, 303)
    badge_token = token or device.badge_token(event_id)
    return redirect(url_for("badge.view", token=badge_token), 303)


def _profile(form: CheckInForm) -> Profile:
    return Profile(
        name=form.name.data,
        email=form.email.data,
        about=form.about.data or "",
        talk_about=form.talk_about.data or "",
        interests=form.interest_list(),
        links=form.link_list(),
        share_profile=form.share_profile.data,
        want_followups=form.want_followups.data,
    )
