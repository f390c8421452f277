"""Never lost: every attendee page leads back to the phone's own pages; no step is a dead end."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from domain.connections import accept_connection, request_connection
from domain.db import db, utcnow, writing
from domain.followups import FOLLOWUP_KINDS
from domain.models import EmailLink, OutboxMessage
from domain.outbox import enqueue, set_link_token
from domain.signin import record_link
from domain.tokens import new_token
from tests.conftest import shown
from tests.mail_support import check_in, end_now, kind_of, link_in, make_due
from tests.test_http_connect import Phone

ATTENDEE_BLUEPRINTS = ("public", "badge", "me", "maillinks")
# GET routes of the attendee blueprints that are not pages a person reads, and why.
NOT_PAGES = {
    "public.home": "the start page for everyone, organisers included",
    "badge.live": "a fragment the badge page fetches into itself",
    "badge.live_people": "a fragment the badge page fetches into itself",
    "badge.contact": "a vCard download",
    "me.data": "a JSON download",
    "me.contact": "a vCard download",
    "maillinks.contact": "a vCard download",
    "maillinks.event_calendar": "a calendar (.ics) download",
}


class Links(HTMLParser):
    """The page's brand link and the links of its "My pages" navigation."""

    def __init__(self) -> None:
        super().__init__()
        self.brand: str | None = None
        self.nav: list[tuple[str, str]] = []
        self._in_nav = False
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "nav" and values.get("aria-label") == "My pages":
            self._in_nav = True
        if tag == "a" and values.get("class") == "brand":
            self.brand = values.get("href")
        if tag == "a" and self._in_nav:
            self._href, self._text = values.get("href"), ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.nav.append((self._text.strip(), self._href))
            self._href = None
        if tag == "nav":
            self._in_nav = False


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def attendee_pages(app) -> set[str]:
    """Every GET endpoint of the attendee blueprints that renders a page."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ATTENDEE_BLUEPRINTS
        and "GET" in rule.methods
        and rule.endpoint not in NOT_PAGES
    }


@pytest.fixture
def night(app, make_event, make_attendee):
    """Ana's phone, checked in and signed in, with a connection, a request, and email links."""
    event = make_event(name="Sunday brunch")
    ana = make_attendee(event, "Ana", "ana@example.org", want_followups=True)
    ben = make_attendee(event, "Ben", "ben@example.org")
    cleo = make_attendee(event, "Cleo", "cleo@example.org")
    with writing():
        connection = request_connection(ben.attendance, ana.attendance)
        accept_connection(ana.attendance, connection)
        ana.attendance.person.email_confirmed_at = utcnow()
        message = enqueue(
            kind="digest",
            dedupe_key="digest:nav",
            person=ana.attendance.person,
            event=event,
            send_after=utcnow(),
        )
        mail_token, sign_in_token = new_token(), new_token()
        set_link_token(message.id, mail_token)
        record_link(ana.attendance.person_id, event.id, "signin", sign_in_token)
        db.session.commit()
    phone = Phone(app, ana)
    with phone.client.session_transaction() as session:
        session["me"] = session["person"]
    return {
        "phone": phone,
        "event": event,
        "badge": f"/b/{ana.badge_token}",
        "paths": {
            "public.landing": [f"/e/{event.checkin_token}"],
            "badge.view": [f"/b/{ana.badge_token}", f"/b/{cleo.badge_token}"],
            "badge.edit": [f"/b/{ana.badge_token}/edit"],
            "badge.preview": [f"/b/{ana.badge_token}/preview"],
            "me.home": ["/me/"],
            "me.profile": ["/me/profile"],
            "me.delete": ["/me/delete"],
            "maillinks.sign_in": [f"/m/{sign_in_token}"],
            "maillinks.unsubscribe_page": [f"/u/{mail_token}"],
            "maillinks.in_touch": [f"/f/{mail_token}/in-touch/{connection.id}"],
        },
    }


def test_every_attendee_page_carries_the_phones_own_navigation(app, night):
    paths: dict[str, list[str]] = night["paths"]
    # A new attendee page fails here until it is given a path below (and the navigation).
    assert attendee_pages(app) == set(paths), attendee_pages(app) ^ set(paths)
    for endpoint, urls in paths.items():
        for url in urls:
            page = night["phone"].get(url, follow_redirects=True)
            assert page.status_code == 200, (endpoint, url)
            links = links_of(page.text)
            assert ("My badge", night["badge"]) in links.nav, (endpoint, url, links.nav)
            assert ("My connections", "/me/") in links.nav, (endpoint, url)
            assert (night["event"].name, f"/e/{night['event'].checkin_token}") in links.nav
            # The logo leads to the person's own badge, not the organisers' start page.
            assert links.brand == night["badge"], (endpoint, url)


def test_a_phone_with_no_badge_still_finds_my_connections(app, client, make_event):
    event = make_event()
    for url in (f"/e/{event.checkin_token}", "/me/"):
        links = links_of(client.get(url).text)
        assert links.nav == [("My connections", "/me/")]
        assert links.brand == "/me/"


def test_the_organisers_pages_keep_their_own_logo_link(client):
    assert links_of(client.get("/login").text).brand == "/"


def test_a_retired_badge_is_not_offered(app, night):
    phone = night["phone"]
    other = app.test_client()
    with phone.client.session_transaction() as session:
        session["badges"] = {**session["badges"], "999999": new_token()}
    links = links_of(phone.get("/me/").text)
    assert [text for text, _ in links.nav] == ["My badge", "My connections", "Sunday brunch"]
    assert links_of(other.get("/me/").text).nav == [("My connections", "/me/")]


def test_the_ended_event_page_offers_a_sign_in_link(app, client, make_event, make_attendee):
    event = make_event()
    make_attendee(event, "Ana", "ana@example.org")
    with writing():
        # It ended a day ago: the poster's window closed long since.
        event.starts_at -= timedelta(days=1)
        event.ends_at -= timedelta(days=1)
        db.session.commit()
    page = client.get(f"/e/{event.checkin_token}")
    assert "This event has ended" in page.text
    assert re.search(r'<label for="signin-email">Your email</label>', page.text)
    sent = client.post(f"/e/{event.checkin_token}/sign-in", data={"email": "ana@example.org"})
    assert sent.status_code == 200 and "Check your email" in sent.text


def test_a_mistyped_sign_in_address_gets_a_clear_message(client, make_event):
    event = make_event()
    page = client.post(f"/e/{event.checkin_token}/sign-in", data={"email": "not an address"})
    assert page.status_code == 400
    assert 'id="signin-email-error"' in page.text
    assert '<details class="sign-in" open>' in page.text


def test_a_long_note_is_kept_when_the_connect_form_refuses_it(app, night):
    from domain.limits import NOTE_MAX

    phone = night["phone"]
    cleo = night["paths"]["badge.view"][1]
    note = "the Hanoi night market " * (NOTE_MAX // 20)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    page = phone.post(f"{cleo}/connect", data={"note": note})
    assert page.status_code == 400
    assert f"{NOTE_MAX} characters" in page.text
    assert note.strip() in page.text  # what was typed is still in the box
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == before


def test_after_request_sent_the_card_leads_on(app, night):
    phone = night["phone"]
    cleo = night["paths"]["badge.view"][1]
    page = phone.post(f"{cleo}/connect", data={"note": "hi"}, follow_redirects=True)
    assert "Request sent" in page.text
    assert ("My badge", night["badge"]) in links_of(page.text).nav


def test_every_follow_up_email_opens_me_with_a_one_time_link(app, make_event, mailbox, met):
    end_now(met.event)
    make_due()
    mailbox.deliver()
    digest = mailbox.one(met.ana.attendance.person.email, "digest")
    path = link_in(digest, "/m/")
    assert path in digest.html
    assert "All your connections" in digest.text and "All your connections" in digest.html
    link = db.session.scalars(sa.select(EmailLink).where(EmailLink.purpose == "me")).all()
    followups = [email for email in mailbox.emails if kind_of(email) in FOLLOWUP_KINDS]
    assert len(link) == len(followups) >= 2  # one of its own in every follow-up
    phone = app.test_client()
    assert "Sign in" in phone.get(path).text  # GET only asks
    opened = phone.post(path)
    assert opened.location == "/me/"
    assert "Signed in as Ana" in shown(phone.get("/me/"))
    assert phone.post(path).status_code == 410  # once


def test_the_confirmation_link_lands_on_the_badge(app, make_event, mailbox):
    event = make_event()
    phone = app.test_client()
    badge = check_in(phone, event, "Ana", "ana@example.org")
    mailbox.deliver()
    path = link_in(mailbox.one("ana@example.org", "confirm"), "/m/")
    done = phone.post(path, follow_redirects=True)
    assert "Thanks: your email is confirmed." in done.text
    assert ("My connections", "/me/") in links_of(done.text).nav
    assert f"/b/{badge}/edit" in done.text  # it is the badge page


@pytest.mark.parametrize("path", ["/b/{token}", "/e/{token}", "/m/{token}", "/b/{token}/edit"])
def test_error_pages_keep_the_phones_navigation(app, night, path):
    """A replaced badge or poster link is no dead end on a phone that has its own pages."""
    url = path.format(token=new_token())
    page = night["phone"].get(url)
    assert page.status_code == 404
    links = links_of(page.text)
    assert ("My badge", night["badge"]) in links.nav, links.nav
    assert ("My connections", "/me/") in links.nav
    assert links.brand == night["badge"]
    # A phone with no pages of its own gets the plain error page.
    stranger = links_of(app.test_client().get(url).text)
    assert stranger.nav == [] and stranger.brand == "/"


def test_another_events_page_names_the_older_badge_by_its_day(app, night, make_event):
    later = make_event(name="April brunch")
    page = night["phone"].get(f"/e/{later.checkin_token}")
    links = links_of(page.text)
    # No badge here yet: nothing calls the older event's badge "My badge".
    assert "My badge" not in [text for text, _ in links.nav]
    older = [(text, href) for text, href in links.nav if href == night["badge"]]
    assert len(older) == 1 and re.fullmatch(r"Sunday brunch, \d{1,2} \w{3}", older[0][0])
    assert links.brand == "/me/"


def test_a_phone_holding_badges_at_several_events_names_each_in_its_navigation(app, make_event):
    """With one badge found on the page and another only in the cookie, both are named."""
    brunch, run_club = make_event(name="Brunch"), make_event(name="Run club")
    phone = app.test_client()
    first = check_in(phone, brunch, "Ana", "ana@example.org", followups=False)
    check_in(phone, run_club, "Ana", "ana@example.org", followups=False)
    page = phone.get(f"/b/{first}").text
    assert f'href="/b/{first}"' in page
    assert f"/e/{brunch.checkin_token}" in page
