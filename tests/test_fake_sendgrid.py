"""The fake SendGrid server behaves like SendGrid as seen through the real sendgrid client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from python_http_client.exceptions import (
    BadRequestsError,
    ForbiddenError,
    HTTPError,
    InternalServerError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import EventWebhook, SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    From,
    Header,
    Mail,
    Personalization,
    To,
)

from tests.fake_sendgrid import FakeSendGrid, Outcome, WebhookSigner, event


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours HTTP_PROXY even for 127.0.0.1 unless NO_PROXY says otherwise.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def fake(no_proxy: None) -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server
    assert server.server_errors == []


def client(fake: FakeSendGrid, api_key: str | None = None, timeout: float = 2) -> SendGridAPIClient:
    sg = SendGridAPIClient(api_key or fake.api_key, host=fake.url)
    sg.client.timeout = timeout
    return sg


def mail(to: str = "bob@example.net", outbox_id: Any = "0b5e1c9e-outbox", **headers: str) -> Mail:
    m = Mail()
    m.from_email = From("followups@mail.example.org", "Ada Lovelace via Rapport")
    m.subject = "Nice meeting you"
    m.add_content(Content("text/plain", "Hello Bob"))
    m.add_content(Content("text/html", "<p>Hello Bob</p>"))
    p = Personalization()
    p.add_to(To(to, "Bob"))
    p.add_custom_arg(CustomArg("outbox_id", outbox_id))
    p.add_header(Header("List-Unsubscribe", "<https://rapport.test/u/tok>"))
    p.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    for name, value in headers.items():
        p.add_header(Header(name, value))
    m.add_personalization(p)
    m.add_category(Category("followup"))
    return m


def payload(**overrides: Any) -> dict[str, Any]:
    body = mail().get()
    body.update(overrides)
    return body


def test_valid_mail_is_accepted_with_a_message_id(fake: FakeSendGrid) -> None:
    response = client(fake).send(mail())

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    assert response.headers["X-RateLimit-Limit"]
    assert int(response.headers["X-RateLimit-Reset"]) > time.time()
    [recorded] = fake.requests
    assert recorded.message_id == message_id
    assert recorded.status == 202
    assert recorded.path == "/v3/mail/send"
    assert recorded.header("Authorization") == "Bearer SG.test-key"
    assert recorded.headers["user-agent"].startswith("sendgrid/")
    assert json.loads(recorded.raw) == recorded.body
    p = recorded.body["personalizations"][0]
    assert p["custom_args"] == {"outbox_id": "0b5e1c9e-outbox"}
    assert p["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fake.all_requests == [recorded]


def test_wrong_key_is_unauthorized(fake: FakeSendGrid) -> None:
    with pytest.raises(UnauthorizedError) as raised:
        client(fake, api_key="SG.wrong-key").send(mail())

    assert raised.value.to_dict["errors"][0]["message"]
    assert fake.requests == []
    assert [r.status for r in fake.all_requests] == [401]


def test_scripted_429_carries_the_rate_limit_reset(fake: FakeSendGrid) -> None:
    fake.script(Outcome(429, reset=5))
    sg = client(fake)

    with pytest.raises(TooManyRequestsError) as raised:
        sg.send(mail())

    headers = raised.value.headers
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Limit"]
    assert 4 <= int(headers["X-RateLimit-Reset"]) - time.time() <= 6
    assert raised.value.to_dict == {
        "errors": [{"message": "too many requests", "field": None, "help": None}]
    }
    assert fake.requests == []
    assert sg.send(mail()).status_code == 202  # the script is used up


@pytest.mark.parametrize(
    ("outcome", "exception"),
    [
        (500, InternalServerError),
        ("503", ServiceUnavailableError),
        (403, ForbiddenError),
        (413, PayloadTooLargeError),
        (400, BadRequestsError),
    ],
)
def test_scripted_errors_raise_the_library_exceptions(
    fake: FakeSendGrid, outcome: int | str, exception: type[HTTPError]
) -> None:
    fake.script(outcome)
    with pytest.raises(exception) as raised:
        client(fake).send(mail())
    assert raised.value.to_dict["errors"]
    assert fake.requests == []


def test_502_is_a_plain_http_error_with_an_html_body(fake: FakeSendGrid) -> None:
    fake.script(502)
    with pytest.raises(HTTPError) as raised:
        client(fake).send(mail())
    assert type(raised.value) is HTTPError
    assert raised.value.status_code == 502
    assert raised.value.body.startswith(b"<html>")


def test_non_string_custom_arg_is_a_bad_request(fake: FakeSendGrid) -> None:
    with pytest.raises(BadRequestsError) as raised:
        client(fake).send(mail(outbox_id=42))
    [error] = raised.value.to_dict["errors"]
    assert error["field"] == "personalizations.0.custom_args.outbox_id"
    assert fake.requests == []


def test_header_value_with_line_break_is_a_bad_request(fake: FakeSendGrid) -> None:
    with pytest.raises(BadRequestsError) as raised:
        client(fake).send(mail(**{"X-Note": "hi\r\nBcc: eve@example.com"}))
    assert "CRLF" in raised.value.to_dict["errors"][0]["message"]
    assert fake.requests == []


def _personalization(*emails: str, **extra: Any) -> dict[str, Any]:
    return {"to": [{"email": e} for e in emails], **extra}


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"personalizations": []}, id="no-personalizations"),
        pytest.param(
            {"personalizations": [_personalization(f"r{i}@example.net") for i in range(1001)]},
            id="1001-personalizations",
        ),
        pytest.param(
            {
                "personalizations": [
                    _personalization(*(f"r{i}-{j}@example.net" for j in range(101)))
                    for i in range(10)
                ]
            },
            id="1010-recipients",
        ),
        pytest.param({"personalizations": [{"to": []}]}, id="empty-to"),
        pytest.param(
            {"personalizations": [_personalization("a@example.net", "A@example.net")]},
            id="duplicate-address",
        ),
        pytest.param(
            {"personalizations": [{"to": [{"email": "a@example.net", "name": "Lovelace, Ada"}]}]},
            id="comma-in-name",
        ),
        pytest.param({"custom_args": {"env": "x" * 10_000}}, id="custom-args-too-big"),
        pytest.param({"custom_args": {"n": 1}}, id="non-string-message-custom-arg"),
        pytest.param({"categories": [f"c{i}" for i in range(11)]}, id="11-categories"),
        pytest.param({"categories": ["c" * 256]}, id="long-category"),
        pytest.param({"headers": {"BCC": "eve@example.com"}}, id="reserved-header"),
        pytest.param({"headers": {"X-Note": "a\nb"}}, id="lf-in-header"),
        pytest.param({"subject": None}, id="no-subject"),
        pytest.param({"subject": ""}, id="empty-subject"),
        pytest.param({"subject": "Hi\r\nBcc: eve@example.com"}, id="crlf-subject"),
        pytest.param({"from": None}, id="no-from"),
        pytest.param({"from": {"name": "Ada"}}, id="from-without-email"),
        pytest.param({"content": []}, id="no-content"),
        pytest.param(
            {
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            },
            id="html-first",
        ),
        pytest.param({"send_at": int(time.time()) + 73 * 3600}, id="send-at-beyond-72h"),
        pytest.param(
            {"reply_to": {"email": "a@example.net"}, "reply_to_list": []}, id="both-reply-tos"
        ),
    ],
)
def test_invalid_payloads_are_bad_requests(fake: FakeSendGrid, overrides: dict[str, Any]) -> None:
    body = payload(**overrides)
    if body.get("subject") is None:
        body.pop("subject", None)
    if body.get("from") is None:
        body.pop("from", None)
    with pytest.raises(BadRequestsError) as raised:
        client(fake).send(body)
    assert raised.value.to_dict["errors"]
    assert fake.requests == []
    assert [r.status for r in fake.all_requests] == [400]


def test_per_personalization_subject_and_1000_recipients_are_fine(fake: FakeSendGrid) -> None:
    people = [
        _personalization(f"r{i}@example.net", subject=f"Hi {i}", custom_args={"outbox_id": str(i)})
        for i in range(1000)
    ]
    body = payload(personalizations=people)
    del body["subject"]
    assert client(fake).send(body).status_code == 202


def test_body_of_30_mb_is_too_large(fake: FakeSendGrid) -> None:
    body = payload(content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024)}])
    with pytest.raises(PayloadTooLargeError):
        client(fake, timeout=10).send(body)
    assert fake.requests == []
    assert fake.all_requests[0].raw == b""  # not kept


def test_signed_webhook_batches_verify_with_the_library() -> None:
    signer = WebhookSigner()
    events = [
        event("processed", "0b5e1c9e-outbox", "bob@example.net", message_id="abcDEF123"),
        event("delivered", "0b5e1c9e-outbox", "bob@example.net", message_id="abcDEF123"),
    ]
    body, headers = signer.batch(events)
    verifier = EventWebhook(signer.public_key)
    signature = headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = headers["X-Twilio-Email-Event-Webhook-Timestamp"]

    assert verifier.verify_signature(body, signature, timestamp) is True
    assert (
        verifier.verify_signature(body.replace("delivered", "bounce"), signature, timestamp)
        is False
    )
    assert verifier.verify_signature(body, signature, str(int(timestamp) + 1)) is False

    fixed = signer.sign("[]\r\n", timestamp="1700000000")
    assert fixed["X-Twilio-Email-Event-Webhook-Timestamp"] == "1700000000"
    assert verifier.verify_signature(
        "[]\r\n", fixed["X-Twilio-Email-Event-Webhook-Signature"], "1700000000"
    )
    assert (
        EventWebhook(WebhookSigner().public_key).verify_signature(body, signature, timestamp)
        is False
    )


def test_event_objects_look_like_sendgrid_events() -> None:
    first = event("processed", "outbox-1", "bob@example.net", message_id="XBg2anf2TqCy6WXKQFhieQ")
    second = event(
        "bounce", None, "bob@example.net", message_id="XBg2anf2TqCy6WXKQFhieQ", type="blocked"
    )

    assert first["event"] == "processed"
    assert first["outbox_id"] == "outbox-1"
    assert first["email"] == "bob@example.net"
    assert isinstance(first["timestamp"], int)
    prefix, filter_part, n, zero = first["sg_message_id"].split(".")
    assert (prefix, filter_part, zero) == ("XBg2anf2TqCy6WXKQFhieQ", "filter0001", "0")
    assert int(n) >= 1
    assert first["sg_event_id"] != second["sg_event_id"]
    assert "outbox_id" not in second
    assert second["type"] == "blocked" and second["reason"]
    assert event("open", None, "a@example.net")["sg_message_id"].split(".")[0]
