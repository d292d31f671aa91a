"""Headless Debian chromium through Playwright, as every browser test launches it.

Browser tests wait only with locator assertions (``expect(locator).to_…``), which retry until
the page shows the state or the timeout passes. They never evaluate a predicate string in the
page: the pages' Content-Security-Policy (no ``'unsafe-eval'``) refuses that. A page exposes
the state a test waits on as a DOM attribute (``body[data-socket]`` on the desk,
``body[data-ready]`` and ``#status[data-state]`` on the phone page).
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.paths import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Screenshots for a person to look at (gitignored).
ARTIFACTS = REPO / "tests" / "artifacts"

#: A phone's browser context (``browser.new_context(**PHONE)``): 390 px wide, touch.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                       "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"}

# Playwright's 5 s default is too short for a page on a machine whose cores are busy with
# other work (CI, parallel builds); a passing wait returns as soon as the page is ready.
expect.set_options(timeout=30_000)


def launch(pw: Any) -> Any:
    """A headless chromium browser from ``sync_playwright()``'s ``pw``."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
