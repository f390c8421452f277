"""SendGrid's webhook at its edges: odd ids, deep JSON, large batches, replayed posts."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from domain import limits
from domain.db import db
from domain.models import OutboxMessage, WebhookEvent
from tests import test_followups_delivery as delivery
from tests.fake_sendgrid import TIMESTAMP_HEADER, event

MAX_FORM_BYTES = 64 * 1024

# The signed-webhook fixtures of the delivery tests.
signer = delivery.signer
hook = delivery.hook
confirm_sent = delivery.confirm_sent


def webhook_rows() -> list[WebhookEvent]:
    return list(db.session.scalars(sa.select(WebhookEvent).order_by(WebhookEvent.sg_event_id)))


@pytest.mark.parametrize(
    "outbox_id",
    [
        2**31,
        str(2**31),
        2**63,
        "9" * 30,
        10**30,
        -1,
        "-1",
        0,
        "0",
        1.5,
        "1.5",
        1.0,
        "1e3",
        "abc",
        "",
        " 1",
        "\u0661\u0662",  # Arabic-Indic digits: str.isdigit() says yes
        True,
        [1],
        {"id": 1},
    ],
)
def test_an_outbox_id_that_is_no_rows_id_is_ignored(hook, outbox_id):
    sent = {**event("delivered", None, "ana@example.org"), "outbox_id": outbox_id}
    response = hook([sent])
    assert response.status_code == 204
    (row,) = webhook_rows()
    assert row.outbox_message_id is None


def test_an_outbox_id_given_as_a_number_still_finds_the_message(hook, confirm_sent):
    assert (
        hook(
            [{**event("delivered", None, "ana@example.org"), "outbox_id": confirm_sent.id}]
        ).status_code
        == 204
    )
    assert webhook_rows()[0].outbox_message_id == confirm_sent.id
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "delivered"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_json_nested_too_deep_is_400(hook, signer, depth):
    for body in ("[" * depth + "]" * depth, '[{"sg_event_id": ' + "[" * depth + "]" * depth + "}]"):
        response = hook([], body=body, headers=signer.sign(body))
        assert response.status_code == 400
    assert webhook_rows() == []


@pytest.mark.parametrize(
    "body",
    ['{"event": "delivered"}', '"text"', "17", "null", "not json", "[1, 2, [3]]"],
)
def test_a_signed_body_that_is_not_a_list_of_events_is_400_or_ignored(hook, signer, body):
    response = hook([], body=body, headers=signer.sign(body))
    assert response.status_code in (204, 400)
    assert webhook_rows() == []


def test_fields_of_the_wrong_type_are_ignored(hook):
    odd = {
        "sg_event_id": "odd",
        "event": "bounce",
        "email": {"not": "text"},
        "timestamp": [1],
        "type": ["bounce"],
        "sg_message_id": 12.5,
        "unique_args": ["outbox_id"],
    }
    deep = {"sg_event_id": "deep", "event": "delivered", "email": json.loads("[" * 200 + "]" * 200)}
    assert hook([odd, deep, {"sg_event_id": True, "event": "delivered"}]).status_code == 204
    assert {row.sg_event_id for row in webhook_rows()} == {"deep", "odd"}


# ---------------------------------------------------------------- size


BATCH = 2_500


def test_a_signed_batch_of_thousands_of_events_is_accepted_and_processed(
    hook,
    signer,
    confirm_sent,
):
    events = [
        event("processed" if n % 2 else "delivered", str(confirm_sent.id), "ana@example.org")
        for n in range(BATCH)
    ]
    body, headers = signer.batch(events)
    assert MAX_FORM_BYTES < len(body.encode()) <= limits.WEBHOOK_MAX_BODY_BYTES
    response = hook(events, body=body, headers=headers)
    assert response.status_code == 204
    assert len(webhook_rows()) == BATCH
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state == "delivered"


def test_a_body_over_the_webhook_limit_is_413(hook, signer):
    padding = "x" * (limits.WEBHOOK_MAX_BODY_BYTES + 1 - len('[{"pad": ""}]'))
    body = '[{"pad": "' + padding + '"}]'
    assert len(body.encode()) == limits.WEBHOOK_MAX_BODY_BYTES + 1
    response = hook([], body=body, headers=signer.sign(body))
    assert response.status_code == 413
    assert webhook_rows() == []


def test_other_routes_keep_the_small_limit(app, client, make_event):
    event_ = make_event()
    for path in (f"/e/{event_.checkin_token}", "/me/sign-in", "/login"):
        response = client.post(path, data={"name": "Ana", "about": "a" * MAX_FORM_BYTES})
        assert response.status_code == 413, path


# ---------------------------------------------------------------- replay


@pytest.mark.parametrize("offset", [-(11 * 60), 11 * 60, -(24 * 60 * 60), 10**9])
def test_a_signed_post_outside_the_time_window_is_refused(hook, signer, confirm_sent, offset):
    events = [event("bounce", str(confirm_sent.id), "ana@example.org", type="bounce")]
    body, headers = signer.batch(events, timestamp=str(int(time.time()) + offset))
    assert hook(events, body=body, headers=headers).status_code == 403
    assert webhook_rows() == []
    assert db.session.get(OutboxMessage, confirm_sent.id).delivery_state is None


@pytest.mark.parametrize("timestamp", ["-5", "1.5e9", "", " 1", "99999999999999999999"])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(hook, signer, timestamp):
    events = [event("delivered", None, "ana@example.org")]
    body, headers = signer.batch(events, timestamp=timestamp)
    assert hook(events, body=body, headers=headers).status_code == 403
    assert webhook_rows() == []


def test_a_post_inside_the_window_is_taken_and_a_replay_of_it_counts_once(
    hook,
    signer,
    confirm_sent,
):
    events = [event("delivered", str(confirm_sent.id), "ana@example.org")]
    nine_minutes_ago = str(int(time.time()) - 9 * 60)
    body, headers = signer.batch(events, timestamp=nine_minutes_ago)
    assert hook(events, body=body, headers=headers).status_code == 204
    assert hook(events, body=body, headers=headers).status_code == 204  # replayed in time
    assert hook(events).status_code == 204  # the same events signed again, as a retry is
    assert len(webhook_rows()) == 1
    # The header is the one SendGrid signs; a post that drops it is refused.
    assert hook(events, headers={**headers, TIMESTAMP_HEADER: ""}).status_code == 403
