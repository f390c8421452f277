"""Organiser sign-up, log-in and log-out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from blueprints.access import is_administrator_address
from blueprints.extensions import limiter, login_manager, no_email_typed, typed_email_key
from blueprints.forms import LoginForm, SignupForm
from blueprints.navigation import local_path
from domain import limits
from domain.db import db
from domain.models import Organiser
from domain.organisers import (
    OrganiserError,
    authenticate,
    create_organiser,
    end_sessions,
    session_is_current,
)

bp = Blueprint("auth", __name__)

# The session key holding the organiser's session epoch when the session began.
SESSION_EPOCH = "organiser_epoch"


@login_manager.user_loader
def load_organiser(organiser_id: str) -> Organiser | None:
    """Load the signed-in organiser from the session, unless the session has been ended."""
    organiser = db.session.get(Organiser, int(organiser_id)) if organiser_id.isdigit() else None
    if organiser is None or not session_is_current(organiser, session.get(SESSION_EPOCH)):
        return None
    return organiser


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(limits.SIGNUPS_PER_ADDRESS, methods=["POST"])
def signup() -> Response | str:
    """Create an organiser account."""
    if current_user.is_authenticated:
        return redirect(url_for("organiser.events"))
    form = SignupForm()
    _fill_in_the_address(form)
    if form.validate_on_submit() and not _is_refused_as_an_administrator(form):
        try:
            organiser = create_organiser(form.email.data, form.password.data, form.name.data)
        except OrganiserError:
            db.session.rollback()
            form.email.errors.append("There is already an account with this email. Log in instead?")
        else:
            db.session.commit()
            _start_session(organiser)
            flash("Welcome to Rapport!", "success")
            # Someone who signed up to accept an invitation goes back to it.
            target = local_path(request.args.get("next")) or url_for("organiser.new_event")
            return redirect(target, 303)
    return render_template("auth/signup.html", form=form)


def _fill_in_the_address(form: LoginForm | SignupForm) -> None:
    """Fill in the address a link names (an invitation's "Log in" or "Create an account")."""
    if request.method == "GET":
        form.email.data = (request.args.get("email") or "")[: limits.EMAIL_MAX]


def _is_refused_as_an_administrator(form: SignupForm) -> bool:
    """Refuse, on the form, an address named in RAPPORT_ADMIN_EMAILS: sign-up takes an
    address unproven, so an administrator's account is made on the server."""
    if not is_administrator_address(form.email.data):
        return False
    form.email.errors.append(
        "This address looks after this site: its account is made on the server, with "
        "flask --app app organiser create."
    )
    return True


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(limits.LOGINS_PER_ADDRESS, methods=["POST"])
@limiter.limit(
    limits.LOGINS_PER_ACCOUNT,
    methods=["POST"],
    key_func=typed_email_key,
    exempt_when=no_email_typed,
)
def login() -> Response | str:
    """Log an organiser in."""
    if current_user.is_authenticated:
        return redirect(url_for("organiser.events"))
    form = LoginForm()
    _fill_in_the_address(form)
    if form.validate_on_submit():
        organiser = authenticate(form.email.data, form.password.data)
        if organiser is None:
            form.password.errors.append("That email and password don't match an account.")
        else:
            _start_session(organiser)
            return redirect(_local_target(request.args.get("next")), 303)
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    """Log the organiser out here and on every other device."""
    end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.pop(SESSION_EPOCH, None)
    flash("You're logged out.", "info")
    return redirect(url_for("auth.login"), 303)


def _start_session(organiser: Organiser) -> None:
    # A fresh session on sign-in: nothing set before logging in survives it but what the
    # phone itself holds (its secret and id, its badges, whose phone it is), which lasts as
    # long as it did.
    phone = ("device", "phone", "badges", "person")
    keep = {key: session[key] for key in phone if key in session}
    lasting = session.permanent
    session.clear()
    session.update(keep)
    session.permanent = lasting
    session[SESSION_EPOCH] = organiser.session_epoch
    login_user(organiser)


def _local_target(target: str | None) -> str:
    """Return `target` if it is a path on this site, else the events page."""
    return local_path(target) or url_for("organiser.events")
