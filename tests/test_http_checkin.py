"""Checking in from a phone over HTTP: the landing page, the form, the badge."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from blueprints.ratelimit import Limit
from domain import limits
from domain.db import db
from domain.models import Attendance, Event, Interest, Organiser, Person
from tests.conftest import PUBLIC_URL, login, qr_codes

VALID = {
    "name": "Ana",
    "email": "ana@example.org",
    "about": "Runs, bakes, codes",
    "interests": "Marathons, travel in Asia",
    "talk_about": "Hanoi night markets",
    "links": "https://example.org/ana",
    "share_profile": "y",
}


def row_counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Organiser, Event, Person, Attendance, Interest)
    )


def badge_token(location: str) -> str:
    match = re.fullmatch(r"/b/([\w-]{43})", location)
    assert match, location
    return match.group(1)


def test_landing_page_shows_event_and_labelled_form(client, make_event):
    event = make_event(name="Sunday brunch", venue="The corner café")
    page = client.get(f"/e/{event.checkin_token}")
    assert page.status_code == 200
    for text in ("Sunday brunch", "The corner café", event.event_word):
        assert text in page.text
    for label in ("Name", "Email", "About me", "Interests", "Happy to talk about", "Links"):
        assert re.search(rf"<label for=\"\w+\">{re.escape(label)}", page.text), label
    # What must be filled in is said, and is marked so for screen readers.
    assert "Only your name and email are needed." in page.text
    needed = re.findall(r'<input[^>]*\bname="(\w+)"[^>]*\brequired\b', page.text)
    assert needed == ["email", "name", "email"]  # the sign-in link's, then the form's
    # A name or a line typed in any script runs in its own direction as it is typed.
    directions = {
        field: 'dir="auto"' in attributes
        for attributes, field in re.findall(r'<(?:input|textarea)([^>]*)\bid="(\w+)"', page.text)
    }
    assert directions["name"] and directions["about"] and directions["talk_about"]
    assert not directions["email"]
    assert 'type="checkbox"' in page.text
    assert "checked" not in page.text  # consent boxes start unticked
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_check_in_redirects_to_my_badge(client, make_event):
    event = make_event()
    response = client.post(f"/e/{event.checkin_token}", data=VALID)
    assert response.status_code == 303
    token = badge_token(response.location)
    badge = client.get(response.location)
    assert badge.status_code == 200
    assert 'aria-label="Badge QR code for Ana"' in badge.text
    assert "Edit my profile" in badge.text
    assert "Marathons" in badge.text  # as typed
    attendance = db.session.scalars(sa.select(Attendance)).one()
    assert attendance.person.email == "ana@example.org"
    assert token not in attendance.badge_token_hash
    assert attendance.profile_consent_at is not None
    assert attendance.followup_consent_at is None


def test_the_badge_qr_holds_the_public_badge_url(client, make_event):
    import io

    from PIL import Image

    event = make_event()
    response = client.post(f"/e/{event.checkin_token}", data=VALID)
    badge = client.get(response.location)
    svg = re.search(r"<svg class=\"qr\".*?</svg>", badge.text, re.S).group(0)
    image = render_svg_modules(svg)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    decoded = [r.text for r in qr_codes(Image.open(buffer))]
    assert decoded == [f"{PUBLIC_URL}{response.location}"]


def render_svg_modules(svg: str):
    """Rasterise our QR SVG (white background, one path of one-module-high runs) with Pillow."""
    from PIL import Image, ImageDraw

    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    path = re.search(r' d="([^"]+)"', svg).group(1)
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", path)
    assert "".join(f"M{x} {y}h{w}v1h-{w}z" for x, y, w in runs) == path
    for x, y, width in runs:
        x0, y0, x1 = int(x), int(y), int(x) + int(width)
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, (y0 + 1) * scale - 1], fill=0)
    return image


def test_same_phone_checking_in_again_sees_already_checked_in(client, make_event):
    event = make_event()
    first = client.post(f"/e/{event.checkin_token}", data=VALID)
    again = client.post(f"/e/{event.checkin_token}", data=VALID, follow_redirects=True)
    assert "You&#39;re already checked in" in again.text
    assert again.request.path == first.location
    landing = client.get(f"/e/{event.checkin_token}")
    assert landing.status_code == 303
    assert landing.location == first.location
    assert row_counts()[3] == 1


def test_double_tap_before_the_cookie_arrives_gives_the_same_badge(app, make_event):
    event = make_event()
    client = app.test_client()
    client.get(f"/e/{event.checkin_token}")  # the phone gets its device secret with the form
    cookie = client.get_cookie("session").value
    first, second = app.test_client(), app.test_client()
    for phone in (first, second):
        phone.set_cookie("session", cookie)
    one = first.post(f"/e/{event.checkin_token}", data=VALID)
    two = second.post(f"/e/{event.checkin_token}", data=VALID)
    assert one.status_code == two.status_code == 303
    assert one.location == two.location
    assert second.get(two.location).text.count("Forget this phone") == 1
    assert row_counts()[3] == 1


def test_another_phone_cannot_take_over_a_checked_in_email(app, make_event):
    event = make_event()
    app.test_client().post(f"/e/{event.checkin_token}", data=VALID)
    before = row_counts()
    other = app.test_client()
    response = other.post(f"/e/{event.checkin_token}", data={**VALID, "name": "Mallory"})
    assert response.status_code == 200
    assert "already belongs to someone on Rapport" in response.text
    assert row_counts() == before
    assert db.session.scalars(sa.select(Person.name)).all() == ["Ana"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "Please tell people your name."),
        ({"email": ""}, "Please enter your email address."),
        ({"email": "ana@"}, "Please enter a valid email address"),
        ({"interests": ", ".join(f"tag{n}" for n in range(11))}, "at most 10 interests"),
        ({"interests": "x" * 41}, "Keep each interest to 40 characters"),
        ({"about": "a" * 500}, "160 characters or fewer"),
        ({"talk_about": "t" * 500}, "160 characters or fewer"),
        ({"name": "n" * 500}, "80 characters or fewer"),
        ({"name": "Ana\x00"}, "control characters"),
        ({"about": "line one\nline two"}, "control characters"),
        ({"talk_about": "bell\x07"}, "control characters"),
        ({"name": "\u200b\u200d"}, "Please type something that shows"),
        ({"name": "\u202e\u2066"}, "Please tell people your name."),
        ({"name": "\u3164\u2800 \u0301"}, "Please type something that shows"),
        ({"about": "\ufeff"}, "Please type something that shows"),
        # Marks that sit on no letter draw nothing, whatever their combining class.
        ({"name": "\ufe0f\u034f"}, "Please type something that shows"),
        ({"name": "\u20dd\u17b4\u180b"}, "Please type something that shows"),
        ({"name": "Ana" + "\u0301" * 40}, "at most 3 accents on one letter"),
        ({"talk_about": "Zalgo" + "\u0336\u0337" * 4}, "at most 3 accents on one letter"),
        ({"links": "javascript:alert(1)"}, "Links must be web addresses"),
        ({"links": "a\nb\nc\nd"}, "at most 3 links"),
    ],
)
def test_check_in_errors_rerender_the_form_and_write_nothing(client, make_event, change, message):
    event = make_event()
    before = row_counts()
    response = client.post(f"/e/{event.checkin_token}", data={**VALID, **change})
    assert response.status_code == 200
    assert message in response.text.replace("&#39;", "'")
    assert 'aria-invalid="true"' in response.text
    assert row_counts() == before
    # Said first, before the event's name: a small screen opens the page at the top.
    summary = response.text.index("You're not checked in yet")
    assert summary < response.text.index("<h1>")
    field = next(iter(change))
    assert f'href="#{field}"' in response.text[summary : response.text.index("<h1>")]


def test_names_keep_their_script_and_lose_direction_overrides(client, make_event):
    event = make_event()
    # An override would make "Ana" read backwards on every badge and list; marks and
    # joiners that Persian, Hindi and emoji need stay as typed.
    typed = {
        "name": "\u202eanA\u202c \u2067Almeida\u2069",
        "about": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200f\u2066x\u2069",
        "talk_about": "\u0915\u094d\u200d\u0937 \U0001f469\u200d\U0001f373",
    }
    response = client.post(f"/e/{event.checkin_token}", data={**VALID, **typed})
    assert response.status_code == 303
    person = db.session.scalars(sa.select(Person)).one()
    assert person.name == "anA Almeida"
    assert person.about == "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u200fx"
    assert person.talk_about == typed["talk_about"]


@pytest.mark.parametrize(
    ("ticked", "message"),
    [
        (["a\x01b"], "control characters"),
        (["x" * 50], "Keep each interest to 40 characters"),
        (["\u200b"], "nothing you can see"),
        (["e" + "\u0301" * 5], "at most 3 accents on one letter"),
        ([f"tag{n}" for n in range(40)], "at most 10 interests"),
    ],
)
def test_a_forged_popular_interest_gets_a_message_not_an_error(client, make_event, ticked, message):
    """The "Popular here" boxes offer only interests in use, but a post may carry anything,
    with the Interests field empty or not."""
    event = make_event()
    before = row_counts()
    for interests in ("", "jazz"):
        data = {**VALID, "interests": interests, "suggested": ticked}
        response = client.post(f"/e/{event.checkin_token}", data=data)
        assert response.status_code == 200
        assert message in response.text.replace("&#39;", "'")
    assert row_counts() == before


def test_a_form_error_keeps_what_was_typed(client, make_event):
    event = make_event()
    response = client.post(f"/e/{event.checkin_token}", data={**VALID, "email": "nope"})
    assert 'value="Runs, bakes, codes"' in response.text
    assert 'value="Marathons, travel in Asia"' in response.text


def test_oversized_request_gets_a_readable_413(client, make_event):
    event = make_event()
    before = row_counts()
    response = client.post(f"/e/{event.checkin_token}", data={**VALID, "about": "a" * 100_000})
    assert response.status_code == 413
    assert "more than we accept" in response.text
    assert row_counts() == before


def test_suggested_interests_come_from_people_at_this_event(client, make_event, make_attendee):
    event, other = make_event(), make_event(name="Other")
    make_attendee(event, interests=["marathons", "sourdough"])
    make_attendee(event, interests=["marathons"])
    make_attendee(event, interests=["secret hobby"], share_profile=False)
    make_attendee(other, interests=["knitting"])
    page = client.get(f"/e/{event.checkin_token}")
    assert page.text.index('value="marathons"') < page.text.index('value="sourdough"')
    assert "secret hobby" not in page.text
    assert "knitting" not in page.text
    response = client.post(
        f"/e/{event.checkin_token}", data={**VALID, "interests": "chess", "suggested": "sourdough"}
    )
    assert response.status_code == 303
    attendance = db.session.scalars(
        sa.select(Attendance).join(Person).where(Person.email == "ana@example.org")
    ).one()
    assert [i.name for i in attendance.interests] == ["chess", "sourdough"]


def test_get_pages_change_no_rows(client, make_event, make_attendee):
    event = make_event()
    result = make_attendee(event, "Ben")
    before = row_counts()
    assert client.get(f"/e/{event.checkin_token}").status_code == 200
    assert client.get(f"/b/{result.badge_token}").status_code == 200
    assert client.get(f"/b/{result.badge_token}/edit").status_code == 404
    assert row_counts() == before


def test_public_card_shows_only_what_is_shared(client, make_event, make_attendee):
    event = make_event()
    viewer = {**VALID, "name": "Vic", "email": "vic@example.org"}
    client.post(f"/e/{event.checkin_token}", data=viewer)  # the viewer is here too
    shared = make_attendee(
        event,
        "Ana",
        "ana@example.org",
        about="Baker",
        interests=["sourdough"],
        links=["https://ana.example"],
    )
    private = make_attendee(
        event, "Ben", "ben@example.org", about="Secret", interests=["macrame"], share_profile=False
    )
    card = client.get(f"/b/{shared.badge_token}").text
    assert "Ana" in card and "Baker" in card and "sourdough" in card
    assert "ana@example.org" not in card  # email: connections only
    assert "ana.example" not in card  # links: connections only
    assert "Edit my profile" not in card
    outsider = client.application.test_client().get(f"/b/{shared.badge_token}").text
    assert "Ana" in outsider and "Check in to connect" in outsider
    assert "Baker" not in outsider and "sourdough" not in outsider
    hidden = client.get(f"/b/{private.badge_token}").text
    assert "Ben" in hidden
    assert "Secret" not in hidden and "macrame" not in hidden and "ben@example.org" not in hidden


def test_unknown_and_revoked_tokens_get_the_same_404(app, client, make_event):
    event = make_event()
    old = event.checkin_token
    login(client, event.organiser)
    client.post(f"/organiser/events/{event.id}/poster/rotate")
    client = app.test_client()
    bodies = set()
    for path in (f"/e/{old}", "/e/" + "A" * 43, "/e/x", "/b/" + "B" * 43, "/b/x"):
        response = client.get(path)
        assert response.status_code == 404, path
        bodies.add(response.text)
    assert len(bodies) == 1


def test_edit_my_profile(client, make_event):
    event = make_event()
    location = client.post(f"/e/{event.checkin_token}", data=VALID).location
    form = client.get(f"{location}/edit")
    # Both are popular here (Ana's own): ticked among the chips, and kept in her spelling in
    # the Interests box.
    for tag in ("Marathons", "travel in Asia"):
        assert re.search(rf'checked[^>]*value="{tag}"|value="{tag}"[^>]*checked', form.text), tag
    assert re.search(r"<input[^>]*name=\"interests\"[^>]*value=\"[^\"]*Marathons", form.text)
    response = client.post(
        f"{location}/edit",
        data={
            "name": "Ana K.",
            "interests": "chess",
            "about": "",
            "talk_about": "",
            "links": "",
            "share_profile": "y",
        },
    )
    assert response.status_code == 303
    attendance = db.session.scalars(sa.select(Attendance)).one()
    assert attendance.person.name == "Ana K."
    assert [i.name for i in attendance.interests] == ["chess"]
    bad = client.post(f"{location}/edit", data={"name": ""})
    assert bad.status_code == 200
    db.session.refresh(attendance.person)
    assert attendance.person.name == "Ana K."


def test_forget_this_phone(client, make_event):
    event = make_event()
    location = client.post(f"/e/{event.checkin_token}", data=VALID).location
    response = client.post(f"{location}/forget")
    assert response.status_code == 303
    assert client.get(f"/e/{event.checkin_token}").status_code == 200
    assert "Edit my profile" not in client.get(location).text


def test_the_form_does_not_say_where_an_email_was_used(app, make_event):
    here, elsewhere = make_event(), make_event(name="Elsewhere")
    app.test_client().post(f"/e/{here.checkin_token}", data=VALID)
    same_event = app.test_client().post(f"/e/{here.checkin_token}", data=VALID)
    other_event = app.test_client().post(f"/e/{elsewhere.checkin_token}", data=VALID)
    messages = [
        re.search(r'<p class="error" id="email-error">([^<]*)</p>', page.text).group(1)
        for page in (same_event, other_event)
    ]
    assert messages[0] == messages[1]
    assert "sign-in link" in messages[0]


def test_check_in_posts_from_one_address_are_capped(app, make_event):
    """The room's budget counts new people: once a full room is in, the next one waits."""
    limit = Limit.parse(limits.CHECKINS_PER_ADDRESS)
    event = make_event()
    store = app.extensions["rate_limits"].storage
    room = f"rapport/blueprints.public.landing/127.0.0.1/{limit.amount}/{limit.seconds}"
    store.run([(room, "take", limit.amount, limit.seconds)] * (limit.amount - 1))

    def newcomer(number: int):
        phone = app.test_client()
        assert phone.get(f"/e/{event.checkin_token}").status_code == 200
        return phone.post(
            f"/e/{event.checkin_token}",
            data={**VALID, "name": f"Guest {number}", "email": f"guest{number}@example.org"},
        )

    assert newcomer(1).status_code == 303
    assert store.run([(room, "peek", limit.amount, limit.seconds)]) == [limit.amount]
    refused = newcomer(2)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(limit.seconds)
