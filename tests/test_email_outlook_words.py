"""Every reason the code gives for not sending an email reads as words on the emails page."""

from __future__ import annotations

import re
from pathlib import Path

from domain.delivery import SUPPRESSING_EVENTS
from domain.email_outlook import NOT_SENT_BECAUSE, outlook
from domain.models import MessageStatus

ROOT = Path(__file__).resolve().parent.parent
GIVEN = [
    r'Skip\("(\w+)"\)',
    r'cancel_about_connection\(\w+, "(\w+)"\)',
    r'suppress\([\w.]+, "(\w+)"\)',
]


def reasons_in_the_code() -> set[str]:
    found = set(SUPPRESSING_EVENTS) | {"bounced"}
    for source in [*ROOT.glob("domain/*.py"), *ROOT.glob("blueprints/*.py")]:
        text = source.read_text()
        for pattern in GIVEN:
            found.update(re.findall(pattern, text))
    return found


def test_every_reason_given_in_the_code_has_words():
    reasons = reasons_in_the_code()
    assert {"connection_removed", "blocked", "deleted", "no_consent", "unsubscribed"} <= reasons
    assert reasons <= set(NOT_SENT_BECAUSE), reasons - set(NOT_SENT_BECAUSE)


def test_a_reason_without_words_never_shows_its_code():
    said = outlook(MessageStatus.CANCELLED, "some_new_code", "digest", True)
    assert said.text == "will not be sent" and "some_new_code" not in said.text


def test_the_emails_page_says_why_sending_waits(app, make_organiser, make_event):
    from datetime import timedelta

    from domain.db import db, utcnow, writing
    from domain.sending import pause_sending, resume_sending, throttle_sending
    from tests.conftest import login

    organiser = make_organiser()
    event = make_event(organiser)
    desk = app.test_client()
    login(desk, organiser)
    page = f"/organiser/events/{event.id}/emails"
    assert "Sending is paused" not in desk.get(page).text

    with writing():
        throttle_sending(utcnow(), utcnow() + timedelta(minutes=20))
        db.session.commit()
    slowed = desk.get(page).text
    assert "asked us to slow down" in slowed and "refused our key" not in slowed

    with writing():
        pause_sending(utcnow(), "401 unauthorized")
        db.session.commit()
    assert "refused our key or sender" in desk.get(page).text

    with writing():
        resume_sending(organiser, None, administrator=True, now=utcnow())
        db.session.commit()
    assert "refused our key or sender" not in desk.get(page).text


def test_link_emails_say_the_lifetime_the_link_really_has():
    from domain.signin import LINK_LIFETIME, lifetime_in_words

    assert lifetime_in_words("confirm") == "48 hours"
    assert lifetime_in_words("signin") == "30 minutes"
    assert lifetime_in_words("me") == "7 days"
    assert set(LINK_LIFETIME) == {"confirm", "signin", "me"}
