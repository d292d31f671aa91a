"""Shared builders for the desk's browser tests: a signed delivery to a running dashboard,
a logged-in desk page in a given viewport and time zone, screenshots."""

from __future__ import annotations

import json
from typing import Any

import requests

from oneeye.events import DeskEvent
from tests.browser_support import ARTIFACTS
from tests.dashboard_helpers import PASSWORD, Signer

#: The three widths every desk screen is looked at: phone, portrait tablet, desktop.
WIDTHS = {"phone": (390, 844), "tablet": (820, 1180), "desktop": (1440, 900)}


def deliver(url: str, signer: Signer, event: DeskEvent) -> None:
    """``event`` as SNS delivers it to ``url``/sns (signed by ``signer``), stored."""
    resp = requests.post(url + "/sns", data=json.dumps(signer.notification(event.to_json())),
                         headers={"x-amz-sns-message-type": "Notification"}, timeout=10)
    assert resp.status_code == 200, resp.text


def desk_page(browser: Any, url: str, user: str, width: str, *, password: str = PASSWORD,
              timezone: str | None = None, path: str = "/") -> Any:
    """A page of a new browser context (in ``timezone``, an IANA name; None: the
    machine's), logged in as ``user`` and at
    ``path`` (the desk: caught up); ``page.errors`` collects the page's script errors."""
    from playwright.sync_api import expect

    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, timezone_id=timezone,
                                  accept_downloads=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url + "/login?next=" + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.login button")
    if path == "/":
        expect(page.locator("body[data-caught-up='1']")).to_have_count(1)
    return page


def screenshot(page: Any, name: str) -> None:
    """A full-page screenshot in tests/artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled")
