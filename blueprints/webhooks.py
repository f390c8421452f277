"""SendGrid's signed event webhook: delivery state, bounces and complaints."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, abort, current_app, request
from sendgrid import EventWebhook, EventWebhookHeader

from blueprints.extensions import csrf
from domain import limits
from domain.db import db
from domain.delivery import is_fresh, record_events

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


@csrf.exempt
@bp.post("/sendgrid")
def sendgrid_events() -> tuple[str, int]:
    """Verify the signature and its age on the raw body, then record each event once."""
    key = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not key:
        abort(404)
    # SendGrid's batches are far larger than any form: this route alone takes more.
    request.max_content_length = limits.WEBHOOK_MAX_BODY_BYTES
    raw = request.get_data(as_text=True)
    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    if not is_fresh(timestamp):
        abort(403)  # a replayed (or not yet valid) post, even if the signature is right
    try:
        valid = EventWebhook(key).verify_signature(raw, signature, timestamp)
    except (ValueError, TypeError):  # bad base64 is a binascii.Error, a ValueError
        valid = False
    if not valid:
        abort(403)
    try:
        events = json.loads(raw)
    except (ValueError, RecursionError):  # nesting too deep to parse is a RecursionError
        abort(400)
    if not isinstance(events, list):
        abort(400)
    counted = record_events([event for event in events if isinstance(event, dict)])
    db.session.commit()
    log.info("webhook: %d events, %d new", len(events), counted)
    return "", 204
