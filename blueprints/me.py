"""/me: my relationships across events, my profile, my data, and deleting me."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for

from blueprints import device
from blueprints.downloads import download, vcard_download
from blueprints.extensions import sign_in_requests_limited
from blueprints.forms import DeleteMeForm, PersonForm, SignInRequestForm
from blueprints.wording import with_names
from domain.connections import remove_person
from domain.db import db
from domain.models import Person
from domain.people import delete_person, export, memories, memory_of, send_sign_in_link
from domain.profile import ProfileError, update_person
from domain.signin import lifetime_in_words

bp = Blueprint("me", __name__, url_prefix="/me")


def _me() -> Person | None:
    return device.signed_in_person()


@bp.get("/")
def home() -> str:
    """List my connections across events, or offer a sign-in link."""
    person = _me()
    if person is None:
        # The sign-in form's limits count per device, so this phone gets its secret now.
        device.device_secret()
        return render_template("me/signed_out.html", form=SignInRequestForm())
    return render_template("me/home.html", person=person, memories=memories(person))


@bp.post("/connections/<id:connection_id>/remove")
def remove(connection_id: int) -> Response:
    """Remove someone from my connections, at every event we connected at, without a block."""
    person = _me()
    memory = memory_of(person, connection_id) if person else None
    if person is None or memory is None:
        abort(404)
    other = memory.other.person
    remove_person(person.id, other.id)
    db.session.commit()
    flash(with_names("Removed {}. You're no longer connected.", other.name), "success")
    return redirect(url_for("me.home"), 303)


@bp.post("/sign-in")
@sign_in_requests_limited
def request_link() -> str | tuple[str, int]:
    """Email a sign-in link; the answer never says whether the address is known."""
    form = SignInRequestForm()
    if not form.validate_on_submit():
        return render_template("me/signed_out.html", form=form), 400
    send_sign_in_link(form.email.data)
    db.session.commit()
    return render_template(
        "me/link_sent.html", email=form.email.data, lifetime=lifetime_in_words("signin")
    )


@bp.route("/profile", methods=["GET", "POST"])
def profile() -> Response | str:
    """Edit the profile I carry from event to event."""
    person = _me()
    if person is None:
        return redirect(url_for("me.home"), 303)
    form = PersonForm(data=PersonForm.data_of(person))
    if form.validate_on_submit():
        try:
            update_person(person, **form.person_fields())
        except ProfileError as error:
            db.session.rollback()
            form.links.errors = [*form.links.errors, error.message]
        else:
            db.session.commit()
            flash("Profile saved.", "success")
            return redirect(url_for("me.home"), 303)
    return render_template("me/profile.html", form=form, person=person)


@bp.get("/connections/<id:connection_id>/contact.vcf")
def contact(connection_id: int) -> Response:
    """Download what one of my connections shares with me, as a vCard."""
    person = _me()
    memory = memory_of(person, connection_id) if person is not None else None
    if memory is None:
        abort(404)
    return vcard_download(memory.card)


@bp.get("/data.json")
def data() -> Response:
    """Download everything Rapport holds about me."""
    person = _me()
    if person is None:
        return redirect(url_for("me.home"), 303)
    body = json.dumps(export(person), indent=2, ensure_ascii=False)
    return download(body, "application/json", "rapport-my-data.json")


@bp.route("/delete", methods=["GET", "POST"])
def delete() -> Response | str:
    """Delete me everywhere, after a clear confirmation."""
    person = _me()
    if person is None:
        return redirect(url_for("me.home"), 303)
    form = DeleteMeForm()
    if form.validate_on_submit():
        delete_person(person)
        db.session.commit()
        device.sign_out()
        flash("Everything about you is deleted. We won't email you again.", "success")
        return redirect(url_for("public.home"), 303)
    return render_template("me/delete.html", form=form, person=person)


@bp.post("/sign-out")
def sign_out() -> Response:
    """Sign this phone out, and end my /me on every other phone too."""
    device.sign_out()
    db.session.commit()
    flash("Signed out on every phone.", "info")
    return redirect(url_for("public.home"), 303)
