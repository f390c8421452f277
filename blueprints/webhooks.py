"""SendGrid's signed event webhook: delivery state, bounces and complaints."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, abort, current_app, request
from sendgrid import EventWebhook, EventWebhookHeader

from blueprints.extensions import csrf
from domain.db import db
from domain.delivery import record_events

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


@csrf.exempt
@bp.post("/sendgrid")
def sendgrid_events() -> tuple[str, int]:
    """Verify the signature on the raw body, then record each event once."""
    key = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY")
    if not key:
        abort(404)
    raw = request.get_data(as_text=True)
    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    try:
        valid = EventWebhook(key).verify_signature(raw, signature, timestamp)
    except (ValueError, TypeError):  # bad base64 is a binascii.Error, a ValueError
        valid = False
    if not valid:
        abort(403)
    try:
        events = json.loads(raw)
    except ValueError:
        abort(400)
    if not isinstance(events, list):
        abort(400)
    counted = record_events([event for event in events if isinstance(event, dict)])
    db.session.commit()
    log.info("webhook: %d events, %d new", len(events), counted)
    return "", 204
