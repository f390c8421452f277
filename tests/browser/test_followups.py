"""Follow-up emails end to end: check in, confirm, connect, end the event, digest, unsubscribe.

Headless Chromium (Debian's, through the shared fixtures) plays an organiser's laptop and two
phones against the app on 127.0.0.1 with CSRF protection on. Email goes through the real
``flask outbox worker --once`` command, in a process of its own, to a fake SendGrid v3 server on
127.0.0.1 that records every message; the links in those messages are then opened on the phones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import expect

from domain.db import db
from domain.models import Event, OutboxMessage
from domain.outbox import ACTIVE
from domain.suppression import is_suppressed
from tests.browser.support import (
    ANA,
    BEN,
    EVENT_NAME,
    LiveServer,
    assert_no_axe_violations,
    button,
    check_in_at,
    only_event,
    sign_up_and_create_event,
)
from tests.conftest import POSTAL_ADDRESS
from tests.fake_sendgrid import FakeSendGrid, Recorded

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
WORKER_TIMEOUT_SECONDS = 15
DIGEST_SUBJECT = f"The people you met at {EVENT_NAME}"
CONFIRM_SUBJECT = "Confirm your email address for Rapport"
SHARED = "marathons"


# ---------------------------------------------------------------- helpers


def check_in(page: Any, server: LiveServer, event: Event, profile: dict[str, str]) -> str:
    """Check in from the poster link, sharing the profile and asking for follow-ups."""
    return f"{server.url}/b/{check_in_at(page, server, event, profile, followups=True)}"


def run_worker(server: LiveServer, fake: FakeSendGrid) -> str:
    """Run `flask outbox worker --once` in its own process, on the live server's database."""
    config = server.app.config
    env = {
        **os.environ,
        "SECRET_KEY": config["SECRET_KEY"],
        "DATABASE_URL": config["DATABASE_URL"],
        "PUBLIC_URL": server.url,
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_HOST": fake.url,
        "MAIL_POSTAL_ADDRESS": POSTAL_ADDRESS,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    result = subprocess.run(
        [str(FLASK), "--app", "app", "outbox", "worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sending with SendGridMailer" in result.stdout, result.stdout
    return result.stdout


def recipient(message: Recorded) -> str:
    [personalization] = message.body["personalizations"]
    [to] = personalization["to"]
    return to["email"]


def subject(message: Recorded) -> str:
    return message.body["personalizations"][0].get("subject") or message.body.get("subject")


def content(message: Recorded, kind: str) -> str:
    [value] = [part["value"] for part in message.body["content"] if part["type"] == kind]
    return value


def sent_to(fake: FakeSendGrid, subject_line: str) -> dict[str, Recorded]:
    """Return the recorded messages with this subject, by recipient (one each, at most)."""
    messages = [message for message in fake.requests if subject(message) == subject_line]
    by_recipient = {recipient(message): message for message in messages}
    assert len(by_recipient) == len(messages), f"more than one {subject_line!r} to someone"
    return by_recipient


def confirm_email(page: Any, server: LiveServer, message: Recorded) -> None:
    """Open the confirmation link from the plain-text email on this phone and confirm."""
    links = re.findall(re.escape(server.url) + r"/m/[A-Za-z0-9_-]+", content(message, "text/plain"))
    assert len(links) == 1, content(message, "text/plain")
    page.goto(links[0])
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email")
    assert_no_axe_violations(page, "the confirm-your-email page")
    button(page, "Confirm my email").click()
    expect(page.locator(".flash")).to_have_text("Thanks: your email is confirmed.")
    # Back on the badge the confirmation was about, with the way to /me beside it.
    expect(page.locator("svg.qr")).to_be_visible()
    expect(page.get_by_role("link", name="My connections", exact=True)).to_be_visible()


def counts_shown(laptop: Any) -> dict[str, int]:
    counts = {}
    for item in laptop.locator("ul.counts li").all_inner_texts():
        number, state = item.split(maxsplit=1)
        counts[state] = int(number)
    return counts


# ---------------------------------------------------------------- the journey


def test_follow_up_digest_from_check_in_to_unsubscribe(
    mailing_live_server, fake_sendgrid, laptop, new_phone
):
    live_server, fake = mailing_live_server, fake_sendgrid

    # 1. The organiser signs up and creates an event whose digests go out when it ends.
    sign_up_and_create_event(laptop, live_server, followups="As soon as the event ends")
    event = only_event(live_server)
    assert event.followup_timing == "at_end"
    emails_url = f"{live_server.url}/organiser/events/{event.id}/emails"

    # 2. Ana and Ben check in on their phones, asking for follow-ups; the worker sends each
    # a confirmation, and each confirms on their own phone.
    ana_phone, ben_phone = new_phone(), new_phone()
    ana_url = check_in(ana_phone, live_server, event, ANA)
    check_in(ben_phone, live_server, event, BEN)
    output = run_worker(live_server, fake)
    assert "outbox: sent 2," in output, output
    confirmations = sent_to(fake, CONFIRM_SUBJECT)
    assert set(confirmations) == {ANA["Email"], BEN["Email"]}
    assert len(fake.requests) == 2
    confirm_email(ana_phone, live_server, confirmations[ANA["Email"]])
    confirm_email(ben_phone, live_server, confirmations[BEN["Email"]])

    # 3. Ben opens Ana's badge and connects; Ana accepts on her badge page.
    ben_phone.goto(ana_url)
    expect(ben_phone.get_by_role("heading", level=1)).to_have_text(ANA["Name"])
    button(ben_phone, f"Connect with {ANA['Name']}").click()
    expect(ben_phone.locator(".pending")).to_have_text(
        f"Request sent. {ANA['Name']} will see it on their badge."
    )
    ana_phone.goto(ana_url)
    expect(ana_phone.locator("#live .requests")).to_contain_text(f"{BEN['Name']} wants to connect")
    button(ana_phone, f"Accept {BEN['Name']}").click()
    expect(ana_phone.locator(".flash")).to_have_text(f"You're now connected with {BEN['Name']}.")

    # Nothing more goes out before the event ends.
    output = run_worker(live_server, fake)
    assert "outbox: sent 0," in output, output
    assert len(fake.requests) == 2

    # 4. The organiser ends the event from its Emails page, confirming what will happen;
    # the worker sends the digests.
    laptop.get_by_role("link", name="Emails", exact=True).click()
    expect(laptop).to_have_url(emails_url)
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Follow-up emails")
    laptop.get_by_role("link", name="End the event now").click()
    expect(laptop.locator(".confirm")).to_contain_text("Follow-up emails go to 2 people now")
    button(laptop, "End the event now").click()
    expect(laptop.locator(".flash")).to_have_text(
        "The event has ended. Follow-ups go out as set in the event's settings."
    )
    output = run_worker(live_server, fake)
    assert "outbox: sent 2," in output, output

    # 5. One digest each, naming the other and what they share.
    digests = sent_to(fake, DIGEST_SUBJECT)
    assert set(digests) == {ANA["Email"], BEN["Email"]}
    assert len(fake.requests) == 4
    for me, other in ((ANA, BEN), (BEN, ANA)):
        for kind in ("text/plain", "text/html"):
            body = content(digests[me["Email"]], kind)
            assert other["Name"] in body, (me["Name"], kind)
            assert SHARED in body, (me["Name"], kind)
            assert me["Name"] in body, (me["Name"], kind)  # "Hi Ana Lima, ..."
        headers = digests[me["Email"]].body["personalizations"][0]["headers"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The digest as a phone's mail app shows it: no accessibility violations.
    ana_html = content(digests[ANA["Email"]], "text/html")
    reader = new_phone()
    reader.set_content(ana_html)
    expect(reader.get_by_role("heading", level=1)).to_have_text(DIGEST_SUBJECT)
    expect(reader.get_by_role("heading", level=2)).to_have_text(BEN["Name"])
    expect(reader.locator("strong", has_text=SHARED)).to_be_visible()
    assert (
        reader.evaluate("document.documentElement.scrollWidth") <= reader.viewport_size["width"]
    ), "the digest scrolls sideways on a phone"
    assert_no_axe_violations(reader, "Ana's digest at phone width")
    unsubscribe = reader.get_by_role("link", name="Unsubscribe from Rapport emails")
    unsubscribe_url = unsubscribe.get_attribute("href")
    assert re.fullmatch(re.escape(live_server.url) + r"/u/[A-Za-z0-9_-]+", unsubscribe_url)
    ben_html = content(digests[BEN["Email"]], "text/html")
    reader.set_content(ben_html)
    expect(reader.get_by_role("heading", level=2)).to_have_text(ANA["Name"])
    assert_no_axe_violations(reader, "Ben's digest at phone width")

    # Ana unsubscribes on her phone: a page that asks first, then one that says it's done.
    ana_phone.goto(unsubscribe_url)
    expect(ana_phone.get_by_role("heading", level=1)).to_have_text(
        "Unsubscribe from Rapport emails?"
    )
    assert_no_axe_violations(ana_phone, "the unsubscribe page")
    button(ana_phone, "Unsubscribe").click()
    expect(ana_phone.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
    expect(ana_phone.locator("main")).to_contain_text(ANA["Email"])
    assert_no_axe_violations(ana_phone, "the unsubscribed page")

    with live_server.app.app_context():
        assert is_suppressed(ANA["Email"])
        assert not is_suppressed(BEN["Email"])
        waiting = db.session.scalars(
            sa.select(OutboxMessage.kind).where(
                OutboxMessage.to_email == ANA["Email"],
                OutboxMessage.status.in_((*ACTIVE, "sending")),
            )
        ).all()
        assert waiting == []
        ana_nudge = db.session.scalars(
            sa.select(OutboxMessage).where(
                OutboxMessage.to_email == ANA["Email"], OutboxMessage.kind == "nudge"
            )
        ).one()
        assert (ana_nudge.status, ana_nudge.cancel_reason) == ("cancelled", "unsubscribed")
        ben_waiting = db.session.scalars(
            sa.select(OutboxMessage.kind).where(
                OutboxMessage.to_email == BEN["Email"], OutboxMessage.status.in_(ACTIVE)
            )
        ).all()
        assert ben_waiting == ["nudge"]  # a week after the event: Ben is still subscribed
        db.session.remove()

    # 6. The organiser's Emails page shows what went out.
    laptop.goto(emails_url)
    assert counts_shown(laptop) == {
        "to send": 1,
        "waiting for confirmation": 0,
        "sending": 0,
        "checking": 0,
        "sent": 4,
        "failed": 0,
        "will not be sent": 1,
    }
    rows = laptop.locator("table.attendees tbody tr")
    for name in (ANA["Name"], BEN["Name"]):
        for kind in ("confirm", "digest"):
            row = rows.filter(has=laptop.locator("td", has_text=name)).filter(
                has=laptop.locator("td", has_text=re.compile(f"^{kind}$"))
            )
            expect(row.locator("td").nth(2)).to_have_text("sent")
    ana_nudge_row = rows.filter(has=laptop.locator("td", has_text=ANA["Name"])).filter(
        has=laptop.locator("td", has_text=re.compile("^nudge$"))
    )
    expect(ana_nudge_row.locator("td").nth(2)).to_have_text("will not be sent: unsubscribed")
    assert_no_axe_violations(laptop, "the organiser's Emails page")
    assert fake.server_errors == []
    assert len(fake.all_requests) == 4
