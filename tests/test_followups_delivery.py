"""After a follow-up goes out: one-click unsubscribe (RFC 8058) and SendGrid's signed
delivery webhook (bounces, duplicates, out-of-order events, reconciling uncertain sends)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from domain.connections import request_connection
from domain.db import db, writing
from domain.models import OutboxMessage, Suppression, WebhookEvent
from domain.suppression import email_hash
from tests.conftest import PUBLIC_URL
from tests.fake_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSigner, event
from tests.mail_support import confirm_directly, end_now, link_in, messages, states


def suppressed(address: str) -> Suppression | None:
    return db.session.get(Suppression, email_hash(address))


def rows_of(address: str, kind: str) -> list[OutboxMessage]:
    return [m for m in messages(kind=kind) if m.to_email == address]


# ---------------------------------------------------------------- unsubscribe


def test_unsubscribe_page_asks_and_one_click_post_unsubscribes(
    app, app_factory, met, mailbox, make_attendee
):
    end_now(met.event)
    mailbox.deliver()
    digest = mailbox.one("ana@example.org", "digest")
    path = link_in(digest, "/u/")
    assert digest.headers["List-Unsubscribe"] == f"<{PUBLIC_URL}{path}>"
    assert f"Unsubscribe: {PUBLIC_URL}{path}" in digest.text

    # A link scanner's GET changes nothing.
    page = app.test_client().get(path)
    assert page.status_code == 200
    assert "Unsubscribe from Rapport emails?" in page.text
    db.session.rollback()
    assert suppressed("ana@example.org") is None
    assert [m.status for m in rows_of("ana@example.org", "nudge")] == ["pending"]

    # The mail client's POST: no cookies, no form token, on an app that checks CSRF.
    strict = app_factory(WTF_CSRF_ENABLED=True)
    refused = strict.test_client().post("/me/sign-in", data={"email": "x@example.org"})
    assert refused.status_code == 400  # that app does check form tokens
    one_click = strict.test_client()
    response = one_click.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "You're unsubscribed" in response.text
    db.session.rollback()
    assert suppressed("ana@example.org").reason == "unsubscribed"
    assert [(m.status, m.cancel_reason) for m in rows_of("ana@example.org", "nudge")] == [
        ("cancelled", "unsubscribed")
    ]
    assert [m.status for m in rows_of("ben@example.org", "nudge")] == ["pending"]
    # Doing it again is harmless.
    again = strict.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200

    # A message queued and claimed after the unsubscribe is not sent.
    cleo = make_attendee(met.event, "Cleo", "cleo@example.org", want_followups=True)
    confirm_directly(cleo)
    with writing():
        request_connection(cleo.attendance, met.ana.attendance)
        request_connection(met.ana.attendance, cleo.attendance)
        db.session.commit()
    assert [m.status for m in rows_of("ana@example.org", "connection")] == ["pending"]
    before = len(mailbox.sent("ana@example.org"))
    mailbox.deliver()
    assert len(mailbox.sent("ana@example.org")) == before
    assert [(m.status, m.cancel_reason) for m in rows_of("ana@example.org", "connection")] == [
        ("cancelled", "suppressed")
    ]
    assert "* Ana" in mailbox.one("cleo@example.org", "digest").text


def test_unknown_unsubscribe_token_is_404(client):
    assert client.get("/u/" + "x" * 43).status_code == 404
    assert client.post("/u/" + "x" * 43).status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


# ---------------------------------------------------------------- the delivery webhook


@pytest.fixture
def signer():
    return WebhookSigner()


@pytest.fixture
def hook(app, app_factory, signer):
    """Post event batches to the webhook of an app that knows the signer's public key."""
    client = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY=signer.public_key).test_client()

    def post(events, *, headers=None, body=None):
        signed_body, signed_headers = signer.batch(events)
        db.session.commit()
        response = client.post(
            "/webhooks/sendgrid",
            data=signed_body if body is None else body,
            headers=signed_headers if headers is None else headers,
            content_type="application/json",
        )
        db.session.rollback()
        return response

    return post


@pytest.fixture
def confirm_sent(met, mailbox):
    """Ana's confirmation email, sent (her digest still waits for the event to end)."""
    mailbox.deliver()
    (message,) = rows_of("ana@example.org", "confirm")
    assert message.status == "sent"
    return message


def webhook_rows() -> list[WebhookEvent]:
    return list(db.session.scalars(sa.select(WebhookEvent)))


def test_signed_batch_is_recorded(hook, confirm_sent):
    response = hook([event("delivered", str(confirm_sent.id), "ana@example.org")])
    assert response.status_code == 204
    (row,) = webhook_rows()
    assert (row.event, row.outbox_message_id) == ("delivered", confirm_sent.id)
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "delivered"


def test_bad_signature_is_refused(hook, signer, confirm_sent):
    events = [event("bounce", str(confirm_sent.id), "ana@example.org")]
    body, headers = signer.batch(events)
    tampered = body.replace("ana@example.org", "ben@example.org")
    assert hook(events, body=tampered, headers=headers).status_code == 403
    other_key = WebhookSigner().batch(events)[1]
    assert hook(events, headers=other_key).status_code == 403
    assert hook(events, headers={}).status_code == 403
    assert webhook_rows() == []
    assert suppressed("ana@example.org") is None
    assert suppressed("ben@example.org") is None


def test_signature_that_is_not_base64_is_403_not_500(hook, signer, confirm_sent):
    events = [event("delivered", str(confirm_sent.id), "ana@example.org")]
    headers = signer.batch(events)[1]
    for signature in ("abc", "%%%", "MEUCIQ"):
        response = hook(events, headers={**headers, SIGNATURE_HEADER: signature})
        assert response.status_code == 403, signature
    assert hook(events, headers={**headers, TIMESTAMP_HEADER: "yesterday"}).status_code == 403
    assert webhook_rows() == []


def test_duplicate_events_have_one_effect(hook, confirm_sent):
    delivered = event("delivered", str(confirm_sent.id), "ana@example.org")
    assert hook([delivered, delivered]).status_code == 204
    assert hook([delivered]).status_code == 204
    assert len(webhook_rows()) == 1


def test_hard_bounce_suppresses_and_cancels_waiting_emails(hook, confirm_sent):
    assert [m.status for m in rows_of("ana@example.org", "digest")] == ["pending"]
    response = hook([event("bounce", str(confirm_sent.id), "Ana@Example.org", type="bounce")])
    assert response.status_code == 204
    assert suppressed("ana@example.org").reason == "bounced"
    assert {
        (m.kind, m.status, m.cancel_reason) for m in messages() if m.to_email == "ana@example.org"
    } == {
        ("confirm", "sent", None),
        ("digest", "cancelled", "bounced"),
        ("nudge", "cancelled", "bounced"),
    }
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "bounce"
    assert {m.status for m in messages() if m.to_email == "ben@example.org"} == {"sent", "pending"}


def test_blocked_bounce_does_not_suppress(hook, confirm_sent):
    response = hook([event("bounce", str(confirm_sent.id), "ana@example.org", type="blocked")])
    assert response.status_code == 204
    assert suppressed("ana@example.org") is None
    assert [m.status for m in rows_of("ana@example.org", "digest")] == ["pending"]


def test_spam_report_suppresses(hook, confirm_sent):
    assert hook([event("spamreport", str(confirm_sent.id), "ana@example.org")]).status_code == 204
    assert suppressed("ana@example.org").reason == "spamreport"
    assert states(kind="digest", person_id=confirm_sent.person_id) == [("cancelled", "spamreport")]


def test_processed_event_settles_an_uncertain_send(hook, confirm_sent):
    with writing():
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.id == confirm_sent.id)
            .values(status="uncertain", sent_at=None)
        )
        db.session.commit()
    assert hook([event("processed", str(confirm_sent.id), "ana@example.org")]).status_code == 204
    message = db.session.get(OutboxMessage, confirm_sent.id)
    assert (message.status, message.delivery_state) == ("sent", "processed")
    assert message.sent_at is not None


def test_event_without_custom_args_is_matched_by_message_id(hook, confirm_sent):
    provider = confirm_sent.provider_message_id
    assert provider
    assert (
        hook([event("delivered", None, "ana@example.org", message_id=provider)]).status_code == 204
    )
    assert webhook_rows()[0].outbox_message_id == confirm_sent.id
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "delivered"


def test_delivery_state_never_moves_backwards(hook, confirm_sent):
    outbox_id = str(confirm_sent.id)
    assert hook([event("delivered", outbox_id, "ana@example.org")]).status_code == 204
    assert hook([event("processed", outbox_id, "ana@example.org")]).status_code == 204
    assert hook([event("deferred", outbox_id, "ana@example.org")]).status_code == 204
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "delivered"
    assert len(webhook_rows()) == 3


def test_webhook_is_404_without_a_configured_key(client, signer):
    body, headers = signer.batch([event("delivered", "1", "ana@example.org")])
    response = client.post(
        "/webhooks/sendgrid", data=body, headers=headers, content_type="application/json"
    )
    assert response.status_code == 404
    assert webhook_rows() == []


def test_odd_events_in_a_signed_batch_never_break_the_webhook(hook, confirm_sent):
    odd = [
        {"sg_event_id": "nul\x00id", "event": "deli\x00vered", "outbox_id": str(confirm_sent.id)},
        {"sg_event_id": "x" * 500, "event": "processed", "outbox_id": "not-a-number"},
        {"event": "delivered"},
        "not an object",
        {"sg_event_id": "n2", "event": "bounce", "email": ["not", "a", "string"]},
    ]
    assert hook(odd).status_code == 204
    assert hook([]).status_code == 204
    assert {row.sg_event_id for row in webhook_rows()} == {"nulid", "x" * 128, "n2"}


def test_a_followups_links_open_only_the_connections_it_is_about(app, met, make_attendee):
    from domain.connections import request_connection
    from domain.db import utcnow, writing
    from domain.outbox import set_link_token
    from domain.tokens import new_token

    ana = met.ana.attendance
    (nudge,) = [m for m in rows_of("ana@example.org", "nudge")]
    (digest,) = [m for m in rows_of("ana@example.org", "digest")]
    nudge_token, digest_token = new_token(), new_token()
    with writing():
        for message, token in ((nudge, nudge_token), (digest, digest_token)):
            set_link_token(message.id, token)
            message.status, message.sent_at = "sent", utcnow()
        db.session.commit()
    # Later Ana connects with Cleo: no earlier email may open Cleo's details.
    cleo = make_attendee(ana.event, "Cleo", "cleo@example.org", interests=["sourdough"])
    with writing():
        request_connection(cleo.attendance, db.session.get(type(ana), ana.id))
        later = request_connection(db.session.get(type(ana), ana.id), cleo.attendance)
        db.session.commit()
    client = app.test_client()
    own = met.connection.id
    assert client.get(f"/f/{nudge_token}/contacts/{own}.vcf").status_code == 200
    assert client.get(f"/f/{digest_token}/contacts/{own}.vcf").status_code == 200
    for token in (nudge_token, digest_token):
        assert client.get(f"/f/{token}/contacts/{later.id}.vcf").status_code == 404
        assert client.get(f"/f/{token}/in-touch/{later.id}").status_code == 404
