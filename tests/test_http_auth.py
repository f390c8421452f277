"""Organiser sign-up, log-in and log-out over HTTP."""

from __future__ import annotations

import sqlalchemy as sa

from domain.db import db
from domain.models import Organiser
from tests.conftest import PASSWORD, login


def organiser_emails() -> list[str]:
    return db.session.scalars(sa.select(Organiser.email)).all()


def test_signup_creates_an_account_and_signs_in(client):
    response = client.post(
        "/signup", data={"name": "Olu", "email": "Olu@Example.org", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.location == "/organiser/events/new"
    assert organiser_emails() == ["olu@example.org"]
    assert client.get("/organiser/").status_code == 200


def test_signup_stores_a_password_hash_not_the_password(client):
    client.post("/signup", data={"name": "Olu", "email": "olu@example.org", "password": PASSWORD})
    stored = db.session.scalars(sa.select(Organiser.password_hash)).one()
    assert PASSWORD not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_signup_errors_rerender_and_write_nothing(client, make_organiser):
    make_organiser("taken@example.org")
    cases = [
        ({"name": "", "email": "a@example.org", "password": PASSWORD}, "This field is required"),
        ({"name": "A", "email": "not-an-email", "password": PASSWORD}, "valid email address"),
        ({"name": "A", "email": "a@example.org", "password": "short"}, "at least 10 characters"),
        ({"name": "A", "email": "taken@example.org", "password": PASSWORD}, "already an account"),
        ({"name": "A\x00B", "email": "a@example.org", "password": PASSWORD}, "control characters"),
    ]
    for data, message in cases:
        response = client.post("/signup", data=data)
        assert response.status_code == 200, data
        assert message in response.text, (data, message)
    assert organiser_emails() == ["taken@example.org"]


def test_login_and_logout(client, make_organiser):
    organiser = make_organiser()
    assert client.get("/organiser/").status_code == 302
    login(client, organiser)
    assert client.get("/organiser/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 303
    assert client.get("/organiser/").status_code == 302


def test_wrong_password_or_unknown_email_give_the_same_message(client, make_organiser):
    organiser = make_organiser()
    wrong = client.post("/login", data={"email": organiser.email, "password": "wrong password"})
    unknown = client.post("/login", data={"email": "who@example.org", "password": PASSWORD})
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "don&#39;t match an account" in response.text
    assert client.get("/organiser/").status_code == 302


def test_login_redirects_only_to_local_paths(client, make_organiser):
    organiser = make_organiser()
    for target in ("//evil.example", "https://evil.example", "/\\evil.example", "javascript:x"):
        response = client.post(
            "/login",
            query_string={"next": target},
            data={"email": organiser.email, "password": PASSWORD},
        )
        assert response.location == "/organiser/", target
        client.post("/logout")
    response = client.post(
        "/login",
        query_string={"next": "/organiser/events/new"},
        data={"email": organiser.email, "password": PASSWORD},
    )
    assert response.location == "/organiser/events/new"


def test_logout_needs_post(client, make_organiser):
    login(client, make_organiser())
    assert client.get("/logout").status_code == 405
    assert client.get("/organiser/").status_code == 200


def test_a_new_client_is_not_the_previous_clients_organiser(app, client, make_organiser):
    organiser = make_organiser()
    login(client, organiser)
    assert client.get("/organiser/").status_code == 200
    assert app.test_client().get("/organiser/").status_code == 302


# ---------------------------------------------------------------- sessions


def copy_of(app, client):
    """Return a second client holding a copy of the first one's session cookie."""
    name = app.config["SESSION_COOKIE_NAME"]
    thief = app.test_client()
    thief.set_cookie(name, client.get_cookie(name).value)
    return thief


def test_logout_revokes_a_copied_session_cookie(app, client, make_organiser):
    login(client, make_organiser())
    thief = copy_of(app, client)
    assert thief.get("/organiser/").status_code == 200
    assert client.post("/logout").status_code == 303
    assert thief.get("/organiser/").status_code == 302
    assert client.get("/organiser/").status_code == 302


def test_logout_ends_every_session_of_the_organiser(app, make_organiser):
    organiser = make_organiser()
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, organiser)
    login(phone, organiser)
    phone.post("/logout")
    assert laptop.get("/organiser/").status_code == 302
    login(laptop, organiser)
    assert laptop.get("/organiser/").status_code == 200


def test_a_password_change_ends_existing_sessions(app, client, runner, make_organiser):
    organiser = make_organiser()
    login(client, organiser)
    result = runner.invoke(
        args=["organiser", "set-password", organiser.email], input="a brand new password\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert client.get("/organiser/").status_code == 302
    login(client, organiser, "a brand new password")
    assert client.get("/organiser/").status_code == 200


def test_on_https_the_session_cookie_is_host_only_and_secure(app_factory, make_organiser):
    app = app_factory(PUBLIC_URL="https://meet.example.org")
    with app.app_context():
        email = make_organiser().email
    client = app.test_client()
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD},
        base_url="https://localhost",
    )
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in cookie, flag
    assert "Domain=" not in cookie
    assert client.get("/organiser/", base_url="https://localhost").status_code == 200


def test_on_http_the_session_cookie_keeps_its_plain_name(app, client, make_organiser):
    response = client.post("/login", data={"email": make_organiser().email, "password": PASSWORD})
    assert response.headers["Set-Cookie"].startswith("session=")


def test_https_pages_carry_hsts_and_allow_the_camera_only_here(app_factory):
    app = app_factory(PUBLIC_URL="https://meet.example.org")
    for path in ("/", "/login", "/no-such-page"):
        response = app.test_client().get(path, base_url="https://localhost")
        assert response.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains"
        )
        assert response.headers["Permissions-Policy"] == "camera=(self)"


def test_plain_http_pages_send_no_hsts(client):
    response = client.get("/")
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["Permissions-Policy"] == "camera=(self)"


def test_trusted_hosts_come_from_the_environment(monkeypatch, tmp_path):
    from app import create_app
    from tests.conftest import make_config

    config = make_config(tmp_path)
    monkeypatch.setenv("SECRET_KEY", config["SECRET_KEY"])
    monkeypatch.setenv("DATABASE_URL", config["DATABASE_URL"])
    monkeypatch.setenv("TRUSTED_HOSTS", "meet.example.org, .rapport.example")
    app = create_app()
    assert app.config["TRUSTED_HOSTS"] == ["meet.example.org", ".rapport.example"]
    client = app.test_client()
    assert client.get("/", base_url="http://meet.example.org").status_code == 200
    assert client.get("/", base_url="http://door.rapport.example").status_code == 200
    assert client.get("/", base_url="http://evil.example").status_code == 400
