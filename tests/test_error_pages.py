"""A page that says "try again" offers a way to: back to the page that was refused, or to
the form a refused POST came from, and never to anywhere but this site."""

from __future__ import annotations

import html
import re

from blueprints.ratelimit import Limit
from domain import limits
from domain.tokens import new_token
from tests.conftest import csrf_token_from, shown
from tests.test_rate_limits import cut_off, guest


def again_link(page, label: str = "Try again") -> str | None:
    """Return where the page's "Try again" leads, or None when it offers none."""
    found = re.search(rf'<a class="button" href="([^"]*)">{label}</a>', page.text)
    return html.unescape(found.group(1)) if found else None


def fill_the_room(app, endpoint: str, limit: str) -> None:
    """Use up the budget of the room's one address (the test client's) for a route."""
    rule = Limit.parse(limit)
    store = app.extensions["rate_limits"].storage
    key = f"rapport/{endpoint}/127.0.0.1/{rule.amount}/{rule.seconds}"
    store.run([(key, "take", rule.amount, rule.seconds)] * rule.amount)


def test_a_refused_check_in_leads_back_to_its_poster(app, make_event):
    event = make_event()
    fill_the_room(app, "blueprints.public.landing", limits.CHECKINS_PER_ADDRESS)
    phone = app.test_client()
    assert phone.get(f"/e/{event.checkin_token}").status_code == 200
    refused = phone.post(f"/e/{event.checkin_token}", data=guest(1))
    assert refused.status_code == 429
    assert "You can try again in" in shown(refused)
    assert again_link(refused) == f"/e/{event.checkin_token}"
    assert phone.get(again_link(refused)).status_code == 200  # the form, to send again


def test_a_refused_page_leads_back_to_itself_with_its_query(app, make_event, make_attendee):
    real = make_attendee(make_event())
    phone = cut_off(app, real.attendance.event.checkin_token)
    refused = phone.get(f"/b/{real.badge_token}?from=poster&x=%C3%A9")
    assert refused.status_code == 429
    assert again_link(refused) == f"/b/{real.badge_token}?from=poster&x=%C3%A9"
    # A query that is not UTF-8 (a server may pass one on) comes back as it was sent.
    odd = phone.get(f"/b/{real.badge_token}", environ_overrides={"QUERY_STRING": "x=\xff"})
    assert odd.status_code == 429
    assert again_link(odd) == f"/b/{real.badge_token}?x=%FF"


def test_a_refused_button_without_a_page_of_its_own_offers_the_start_page_only(
    app, make_event, make_attendee
):
    event = make_event()
    asker, owner = make_attendee(event), make_attendee(event)
    phone = cut_off(app, event.checkin_token)
    # The phone is cut off everywhere now: its buttons are refused too, and their
    # addresses are no pages to open.
    for action in (
        f"/b/{owner.badge_token}/connect",
        f"/b/{asker.badge_token}/suggestions/{owner.attendance.id}/connect",
    ):
        refused = phone.post(action)
        assert refused.status_code == 429
        assert again_link(refused) is None
        assert 'href="/">Go to the start page' in refused.text


def test_a_cut_off_phone_is_never_offered_a_link_elsewhere(app, make_event):
    phone = cut_off(app, make_event().checkin_token)
    phone.get(f"/b/{new_token()}")
    for path in ("//elsewhere.example/b/x", "/\\elsewhere.example", "/nowhere/at/all"):
        page = phone.get(path)
        assert page.status_code in (404, 429)
        assert again_link(page) is None
        assert "elsewhere.example" not in page.text


def test_an_expired_form_leads_back_to_it(app_factory, make_event):
    strict = app_factory(WTF_CSRF_ENABLED=True)
    with strict.app_context():
        event = make_event()
        phone = strict.test_client()
        form = phone.get(f"/e/{event.checkin_token}")
        assert csrf_token_from(form.text)
        expired = phone.post(f"/e/{event.checkin_token}", data={**guest(1), "csrf_token": "old"})
        assert expired.status_code == 400
        assert "This form has expired" in expired.text
        assert "send it once more" in expired.text
        assert again_link(expired, "Open the form again") == f"/e/{event.checkin_token}"
        odd = phone.post(
            f"/e/{event.checkin_token}",
            data={**guest(1), "csrf_token": "old"},
            environ_overrides={"QUERY_STRING": "next=\xfe"},
        )
        assert odd.status_code == 400
        assert again_link(odd, "Open the form again") == f"/e/{event.checkin_token}?next=%FE"
