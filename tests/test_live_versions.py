"""The live refresh answers 304 exactly when nothing its page shows has changed.

Every request goes through the real compression stack (Brotli accepted), and each refresh
sends back exactly the ETag the server last sent, as the page's script does.
"""

from __future__ import annotations

import re

import brotli
import pytest

from domain.db import db
from tests.conftest import live_versions_from, login

BROTLI = {"Accept-Encoding": "gzip, deflate, br"}
MINE, TO_MEET = "/live", "/live/people"  # the badge page's two live halves


def text(response) -> str:
    """Return a response's body as text, decompressed if it came compressed."""
    if response.headers.get("Content-Encoding") == "br":
        return brotli.decompress(response.data).decode()
    return response.data.decode()


class Phone:
    """A phone at the event, checked in through the poster, polling its badge's live part."""

    def __init__(self, app, token: str, name: str, interests: str = "") -> None:
        self.client = app.test_client()
        assert self.client.get(f"/e/{token}").status_code == 200
        checked_in = self.client.post(
            f"/e/{token}",
            data={
                "name": name,
                "email": f"{name.lower()}@example.org",
                "interests": interests,
                "share_profile": "y",
            },
        )
        assert checked_in.status_code == 303, checked_in.text
        self.badge = checked_in.headers["Location"]
        page = self.client.get(self.badge, headers=BROTLI)
        assert page.status_code == 200
        # The page's two live halves, each with the address it refreshes from and the
        # version it shows: my own list, and the people to meet.
        self.etags = live_versions_from(text(page))
        assert list(self.etags) == [f"{self.badge}/live", f"{self.badge}/live/people"]

    def refresh(self, half: str = MINE):
        """Ask for one live half as the page's script does; keep the new ETag on a 200."""
        url = f"{self.badge}{half}"
        response = self.client.get(url, headers={**BROTLI, "If-None-Match": self.etags[url]})
        assert response.status_code in (200, 304), response.status_code
        if response.status_code == 200:
            assert response.headers["ETag"] != self.etags[url]
            self.etags[url] = response.headers["ETag"]
        else:
            assert response.headers["ETag"] == self.etags[url]
            assert response.data == b""
        return response

    def post(self, path: str, **data: str):
        response = self.client.post(path, data=data)
        assert response.status_code == 303, response.text
        return response

    def connection_id(self) -> int:
        page = text(self.client.get(f"{self.badge}/live", headers=BROTLI))
        match = re.search(r"/connections/(\d+)/", page)
        assert match, page
        return int(match.group(1))


@pytest.fixture
def poster(make_event):
    return make_event().checkin_token


def unchanged(phone: Phone, half: str = MINE) -> bool:
    return phone.refresh(half).status_code == 304


def changed(phone: Phone, half: str = MINE) -> str:
    response = phone.refresh(half)
    assert response.status_code == 200, "expected a changed fragment"
    return text(response)


def test_unchanged_answers_304_with_the_etag_the_server_sent(app, poster):
    ana = Phone(app, poster, "Ana")
    first = ana.client.get(f"{ana.badge}/live", headers=BROTLI)
    assert first.status_code == 200
    # Compression leaves the weak validator as it is, so it comes back exactly as sent.
    assert first.headers["ETag"].startswith('W/"')
    again = ana.client.get(
        f"{ana.badge}/live", headers={**BROTLI, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert unchanged(ana) and unchanged(ana)


def test_a_request_to_connect_changes_the_page(app, poster):
    ana, ben = Phone(app, poster, "Ana"), Phone(app, poster, "Ben")
    assert unchanged(ana)
    ben.post(f"{ana.badge}/connect")
    assert "<bdi>Ben</bdi></strong> wants to connect" in changed(ana)
    assert "Ana" in changed(ben)  # Ben's page lists his request as waiting
    assert unchanged(ana) and unchanged(ben)


def test_an_acceptance_changes_both_pages(app, poster):
    ana, ben = Phone(app, poster, "Ana"), Phone(app, poster, "Ben")
    ben.post(f"{ana.badge}/connect")
    changed(ana), changed(ben)
    ana.post(f"{ana.badge}/connections/{ana.connection_id()}/accept")
    assert "ben@example.org" not in changed(ben)  # Ana keeps her email to connections
    assert "My connections (1)" in changed(ana)


def test_a_new_suggestion_changes_the_people_to_meet_and_an_unrelated_arrival_does_not(app, poster):
    ana = Phone(app, poster, "Ana", interests="sourdough, marathons")
    assert unchanged(ana, TO_MEET)
    Phone(app, poster, "Cem", interests="chess")
    assert unchanged(ana, TO_MEET)
    Phone(app, poster, "Dee", interests="Marathons")
    assert "Dee" in changed(ana, TO_MEET)
    assert unchanged(ana, TO_MEET)


def test_arrivals_sharing_an_interest_leave_my_own_list_unchanged(app, poster):
    """At a busy door everyone's suggestions change all the time; the half polled every few
    seconds (requests, connections) stays a 304 through it, until something of mine moves."""
    ana = Phone(app, poster, "Ana", interests="marathons")
    for name in ("Dee", "Eli", "Fay"):
        Phone(app, poster, name, interests="marathons")
        assert unchanged(ana)
        assert name in changed(ana, TO_MEET)
    assert unchanged(ana)
    gus = Phone(app, poster, "Gus", interests="marathons")
    gus.post(f"{ana.badge}/connect")
    assert "<bdi>Gus</bdi></strong> wants to connect" in changed(ana)
    # Asked by Gus, Ana no longer sees him as someone to meet: that half moves on too.
    assert "Gus" not in changed(ana, TO_MEET)


def test_the_two_halves_are_the_page_as_first_shown(app, poster):
    ana = Phone(app, poster, "Ana", interests="marathons")
    Phone(app, poster, "Dee", interests="marathons")
    page = text(ana.client.get(ana.badge, headers=BROTLI))
    mine = text(ana.client.get(f"{ana.badge}{MINE}", headers=BROTLI))
    to_meet = text(ana.client.get(f"{ana.badge}{TO_MEET}", headers=BROTLI))
    assert mine.strip() and mine.strip() in page
    assert to_meet.strip() and to_meet.strip() in page
    assert "Dee" in to_meet and "Dee" not in mine


def test_a_profile_edit_changes_the_pages_that_show_it(app, poster):
    ana = Phone(app, poster, "Ana", interests="sourdough")
    ben = Phone(app, poster, "Ben", interests="sourdough")
    changed(ana, TO_MEET)  # Ben arrived sharing sourdough
    assert unchanged(ana)  # he is someone to meet, not in Ana's own list
    ben.post(
        f"{ben.badge}/edit",
        name="Benedict",
        interests="sourdough",
        about_visibility="everyone",
        interests_visibility="everyone",
        talk_visibility="everyone",
        links_visibility="connections",
        email_visibility="connections",
    )
    assert "Benedict" in changed(ana, TO_MEET)


def test_an_edit_of_someone_asking_or_connected_changes_my_own_list(app, poster):
    ana, ben = Phone(app, poster, "Ana"), Phone(app, poster, "Ben")
    ben.post(f"{ana.badge}/connect")
    changed(ana), changed(ben)
    shown = {f"{field}_visibility": "everyone" for field in ("about", "interests", "talk")}
    ben.post(f"{ben.badge}/edit", name="Ben", about="Runs the Sunday 10k", **shown)
    assert "Runs the Sunday 10k" in changed(ana)  # under his request
    ana.post(f"{ana.badge}/connections/{ana.connection_id()}/accept")
    changed(ana), changed(ben)
    ben.post(f"{ben.badge}/edit", name="Ben", about="Runs the Saturday 5k", **shown)
    assert "Runs the Saturday 5k" in changed(ana)  # beside his name, as a connection
    assert unchanged(ana)


def test_a_decline_changes_only_the_decliners_page(app, poster):
    ana, ben = Phone(app, poster, "Ana"), Phone(app, poster, "Ben")
    ben.post(f"{ana.badge}/connect")
    changed(ana), changed(ben)
    ana.post(f"{ana.badge}/connections/{ana.connection_id()}/decline")
    assert "wants to connect" not in changed(ana)
    assert unchanged(ben)  # Ben is not told


def test_a_note_a_removal_and_a_block_each_change_the_page(app, poster):
    ana, ben = Phone(app, poster, "Ana"), Phone(app, poster, "Ben")
    ben.post(f"{ana.badge}/connect")
    ana.post(f"{ben.badge}/connect")
    changed(ana), changed(ben)
    connection = ana.connection_id()
    ana.post(f"{ana.badge}/connections/{connection}/note", note="Hanoi night market")
    assert "Hanoi night market" in changed(ana)
    assert unchanged(ben)  # my note is mine alone
    ana.post(f"{ana.badge}/connections/{connection}/remove")
    assert "No connections yet" in changed(ana)
    assert "No connections yet" in changed(ben)
    ben.post(f"{ana.badge}/connect")
    changed(ana), changed(ben)
    ana.post(f"{ana.badge}/connections/{ana.connection_id()}/block")
    assert "Ben" not in changed(ana)
    changed(ben)


def test_the_organiser_page_answers_304_until_someone_arrives(app, make_organiser, make_event):
    organiser = make_organiser()
    event = make_event(organiser)
    laptop = app.test_client()
    login(laptop, organiser)
    live = f"/organiser/events/{event.id}/live"
    first = laptop.get(live, headers=BROTLI)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert laptop.get(live, headers={**BROTLI, "If-None-Match": etag}).status_code == 304
    Phone(app, event.checkin_token, "Ana")
    db.session.remove()
    arrived = laptop.get(live, headers={**BROTLI, "If-None-Match": etag})
    assert arrived.status_code == 200 and arrived.headers["ETag"] != etag
