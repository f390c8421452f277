"""Text responses are gzipped for browsers that accept it, and stay cacheable."""

from __future__ import annotations

import gzip


def test_pages_and_stylesheet_are_gzipped_when_accepted(client, make_event):
    event = make_event()
    page = client.get(f"/e/{event.checkin_token}", headers={"Accept-Encoding": "gzip, br"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["Vary"]
    assert event.name in gzip.decompress(page.data).decode()
    plain = client.get(f"/e/{event.checkin_token}")
    assert "Content-Encoding" not in plain.headers
    assert len(page.data) < len(plain.data) / 2


def test_gzipped_static_file_still_revalidates(client):
    first = client.get("/static/rapport.css", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    assert first.headers["ETag"].startswith("W/")
    with client.get(
        "/static/rapport.css",
        headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
    ) as again:  # a 304 keeps the file handle until the response is closed
        assert again.status_code == 304


def test_small_and_binary_responses_are_left_alone(client):
    small = client.get("/e/unknown", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 404 and "Content-Encoding" not in small.headers
