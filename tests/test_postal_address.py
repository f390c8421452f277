"""Real email carries the sender's postal address: SendGrid sending needs MAIL_POSTAL_ADDRESS."""

from __future__ import annotations

import sqlalchemy as sa

from domain.db import db
from domain.models import OutboxMessage
from tests.conftest import POSTAL_ADDRESS, sendgrid_settings


def pending() -> int:
    db.session.rollback()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == "pending")
    )


def test_worker_refuses_to_start_sendgrid_sending_without_a_postal_address(
    app, runner, met, fake_sendgrid
):
    waiting = pending()
    assert waiting > 0
    for missing in ("", "   ", None):
        app.config.update(sendgrid_settings(fake_sendgrid), MAIL_POSTAL_ADDRESS=missing)
        result = runner.invoke(args=["outbox", "worker", "--once"])
        assert result.exit_code == 1, result.output
        assert "MAIL_POSTAL_ADDRESS is not set" in result.output
        assert "Traceback" not in result.output
    assert fake_sendgrid.all_requests == []
    assert pending() == waiting

    app.config.update(MAIL_POSTAL_ADDRESS=POSTAL_ADDRESS)
    result = runner.invoke(args=["outbox", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert pending() < waiting
    assert fake_sendgrid.requests
    assert all(POSTAL_ADDRESS in request.raw.decode() for request in fake_sendgrid.requests)


def test_files_need_no_postal_address(app, runner, met, tmp_path):
    app.config.update(SENDGRID_API_KEY=None, MAIL_POSTAL_ADDRESS="")
    app.instance_path = str(tmp_path)
    waiting = pending()
    result = runner.invoke(args=["outbox", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "FileMailer" in result.output
    assert pending() < waiting
    assert list((tmp_path / "mail").iterdir())
