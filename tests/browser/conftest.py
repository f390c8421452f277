"""Browser fixtures: a live server with CSRF on, headless Chromium, phones and a laptop.

Chromium is Debian's (found on PATH); without it these tests are skipped with a reason,
unless REQUIRE_BROWSER is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.browser.support import CHROMIUM, LAPTOP_VIEWPORT, PHONE, LiveServer
from tests.conftest import sendgrid_settings
from tests.fake_sendgrid import FakeSendGrid


@pytest.fixture
def live_server(app_factory: Callable[..., Flask]) -> Iterator[LiveServer]:
    """The app on a real HTTP server, with CSRF protection on, as in production."""
    with LiveServer(app_factory(WTF_CSRF_ENABLED=True)) as server:
        yield server


@pytest.fixture
def mailing_live_server(
    app_factory: Callable[..., Flask], fake_sendgrid: FakeSendGrid
) -> Iterator[LiveServer]:
    """A live server with CSRF protection on and SendGrid pointed at the fake."""
    app = app_factory(WTF_CSRF_ENABLED=True, **sendgrid_settings(fake_sendgrid))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but no chromium was found on PATH")
        pytest.skip("no Chromium found on PATH (install Debian's chromium to run browser tests)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--disable-gpu"]
    )
    yield browser
    browser.close()


@pytest.fixture
def new_phone(browser: Any, playwright_instance: Any) -> Iterator[Callable[..., Any]]:
    """Open pages on fresh phones (Pixel 7 emulation), each with its own cookies."""
    contexts = []

    def open_phone(**options: Any) -> Any:
        context = browser.new_context(**{**playwright_instance.devices[PHONE], **options})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_phone
    for context in contexts:
        context.close()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    """Open a page on a laptop-sized browser window."""
    context = browser.new_context(viewport=LAPTOP_VIEWPORT)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
