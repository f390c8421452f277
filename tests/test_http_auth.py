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
