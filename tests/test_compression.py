"""Text responses are compressed for browsers that accept it, and stay cacheable."""

from __future__ import annotations

import gzip

import brotli


def test_pages_are_gzipped_when_only_gzip_is_accepted(client, make_event):
    event = make_event()
    page = client.get(f"/e/{event.checkin_token}", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page.headers["Vary"]
    assert event.name in gzip.decompress(page.data).decode()
    plain = client.get(f"/e/{event.checkin_token}")
    assert "Content-Encoding" not in plain.headers
    assert len(page.data) < len(plain.data) / 2


def test_brotli_is_preferred_when_the_browser_offers_it(client, make_event):
    event = make_event()
    page = client.get(
        f"/e/{event.checkin_token}", headers={"Accept-Encoding": "gzip, deflate, br, zstd"}
    )
    assert page.headers["Content-Encoding"] == "br"
    assert event.name in brotli.decompress(page.data).decode()
    gzipped = client.get(f"/e/{event.checkin_token}", headers={"Accept-Encoding": "gzip"})
    assert len(page.data) < len(gzipped.data)


def test_an_encoding_the_browser_refuses_with_q_zero_is_not_used(client, make_event):
    event = make_event()
    page = client.get(f"/e/{event.checkin_token}", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    refused = client.get(f"/e/{event.checkin_token}", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


def test_compressed_static_file_still_revalidates(client):
    with client.get("/static/rapport.css", headers={"Accept-Encoding": "gzip"}) as first:
        assert first.headers["Content-Encoding"] == "gzip"
        # Each encoding is its own representation, so its validator names the encoding.
        assert first.headers["ETag"].endswith(':gzip"')
        assert b".qr" in gzip.decompress(first.data)
    with client.get(
        "/static/rapport.css",
        headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]},
    ) as again:  # a 304 keeps the file handle until the response is closed
        assert again.status_code == 304
    with client.get(
        "/static/rapport.css",
        headers={"Accept-Encoding": "br", "If-None-Match": first.headers["ETag"]},
    ) as other:  # the gzip validator does not stand for the brotli body
        assert other.status_code == 200 and other.headers["Content-Encoding"] == "br"


def test_small_and_error_responses_are_left_alone(client):
    small = client.get("/e/unknown", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 404 and "Content-Encoding" not in small.headers
