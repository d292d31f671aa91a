"""Real browser (Debian chromium via Playwright): log in, live card, banner, acknowledge.

Screenshots go to tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from oneeye.events import HealthEvent, utc_now
from tests.browser_support import ARTIFACTS, launch
from tests.dashboard_helpers import Signer, desk_event, serve_dashboard

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def dashboard(tmp_path: Path, port: int) -> Iterator[tuple[str, Signer]]:
    yield from serve_dashboard(tmp_path, port)


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / name), full_page=True, animations="disabled")


def _push(url: str, signer: Signer, event: Any) -> None:
    resp = requests.post(url + "/sns", data=json.dumps(signer.notification(event.to_json())),
                         headers={"x-amz-sns-message-type": "Notification"}, timeout=10)
    assert resp.status_code == 200, resp.text


def test_desk_in_a_real_browser(dashboard: tuple[str, Signer], photos: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, signer = dashboard
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            expect(page.locator("form.login")).to_be_visible()
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "wrong password")
            page.click("form.login button")
            expect(page.locator(".error")).to_contain_text("Wrong user name or password")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "correct horse battery")
            page.click("form.login button")
            expect(page.locator("h2", has_text="Arrivals")).to_be_visible()
            # the page shows its socket state on <body>: a locator wait (no script eval, which
            # the page's CSP refuses)
            expect(page.locator("body")).to_have_attribute("data-socket", "connected")

            health = HealthEvent(device_id="cam-door-1", site_id="branch-1",
                                 camera_id="cam-door-1", sent_at=utc_now(), uptime_s=60,
                                 fps=14.8)
            _push(url, signer, desk_event(kind="device_status", device_id="cam-door-1",
                                          health=health))
            customer = desk_event(name="Barack Obama", person_id="C-1042")
            customer = customer.model_copy(update={"customer": {
                **(customer.customer or {}), "photo_url": f"{photos}/obama.jpg"}})
            _push(url, signer, customer)
            degraded = desk_event(name=None, person_id="C-2077", degraded=True,
                                  message="Customer details unavailable (customer API down)")
            _push(url, signer, degraded)
            card = page.locator(f"[data-event-id='{customer.event_id}']")
            expect(card).to_contain_text("Barack Obama")
            expect(card).to_contain_text("Premier")
            expect(card.locator("img")).to_have_attribute("src", f"{photos}/obama.jpg")
            expect(page.locator(".card.degraded")).to_contain_text("Customer details unavailable")
            expect(page.locator("#devices")).to_contain_text("cam-door-1")
            expect(page.locator("#devices tr.online")).to_contain_text("14.8")

            # a desk that lost its socket catches up on reconnect (/api/events?after=…)
            page.evaluate("window.oneeyeDesk.socket.disconnect()")
            expect(page.locator("body")).to_have_attribute("data-socket", "disconnected")
            expect(page.locator("#conn")).to_be_visible()
            missed = desk_event(name="Grace Hopper", person_id="C-3001")
            _push(url, signer, missed)
            page.evaluate("window.oneeyeDesk.socket.connect()")
            expect(page.locator(f"[data-event-id='{missed.event_id}']")).to_contain_text(
                "Grace Hopper")
            expect(page.locator("#conn")).to_be_hidden()

            sighting = desk_event(kind="missing_person_sighted", person_id="MP-2026-0042",
                                  name="Lin-Manuel Miranda",
                                  snapshot_url=f"{photos}/lin-manuel-miranda.png",
                                  message="Seen at the main entrance")
            _push(url, signer, sighting)
            banner = page.locator(f"#alert-{sighting.event_id}")
            expect(banner).to_contain_text("MISSING PERSON: Lin-Manuel Miranda")
            shot(page, "desk-live.png")

            # the banner survives a reload until someone acknowledges it
            page.reload()
            expect(banner).to_be_visible()
            banner.locator("button.ack").click()
            expect(banner).to_contain_text("acknowledged by alice")
            shot(page, "desk-acknowledged.png")
            page.reload()
            expect(page.locator(f"#alert-{sighting.event_id}")).to_have_count(0)

            tablet = browser.new_page(viewport={"width": 820, "height": 1180})
            tablet.context.add_cookies(page.context.cookies())
            tablet.goto(url + "/")
            expect(tablet.locator(f"[data-event-id='{customer.event_id}']")).to_be_visible()
            shot(tablet, "desk-tablet.png")

            page.goto(url + "/history?person=miranda")
            expect(page.locator("table.history")).to_contain_text("alice")
            shot(page, "history.png")

            # logging out in one window ends the login everywhere: the tablet's open desk
            # is told over its socket and goes to the login form
            tablet.on("pageerror", lambda exc: errors.append(str(exc)))
            page.click("form.logout button")
            expect(page.locator("form.login")).to_be_visible()
            expect(tablet.locator("form.login")).to_be_visible()
            shot(tablet, "desk-tablet-logged-out.png")
            tablet.goto(url + "/")                  # the copied cookie no longer works
            expect(tablet.locator("form.login")).to_be_visible()
            assert errors == []
        finally:
            browser.close()
