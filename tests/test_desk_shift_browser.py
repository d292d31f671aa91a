"""A desk for a shift, in a real browser in Europe/Paris (not UTC) at 390, 820 and 1440 px:
a verdict belongs to the visit and survives its next sighting and a reload, cards keep
their place and update in place when others arrive, age out into History, and History and
its CSV show the same local time as the desk.

Screenshots go to tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneeye.events import DeskEvent
from tests.dashboard_helpers import Signer, desk_event, serve_dashboard
from tests.desk_support import WIDTHS, deliver, desk_page, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PARIS = "Europe/Paris"
#: Short enough to watch a card age out; the tick that ages cards runs every TTL/4.
CARD_TTL_S = 12


@pytest.fixture
def desk(tmp_path: Path, port: int) -> Iterator[tuple[str, Signer]]:
    yield from serve_dashboard(tmp_path, port, card_ttl_s=CARD_TTL_S, visit_window_s=600)


@pytest.fixture
def shift_desk(tmp_path: Path, port: int) -> Iterator[tuple[str, Signer]]:
    """The default card_ttl_s (30 min): cards stay for the whole test."""
    yield from serve_dashboard(tmp_path, port, visit_window_s=600)


def arrival(person: str, name: str, photos: str, photo: str, *,
            camera: str = "cam-door-1") -> DeskEvent:
    event = desk_event(person_id=person, name=name, device_id=camera)
    return event.model_copy(update={
        "customer": {**(event.customer or {}), "photo_url": f"{photos}/{photo}"},
        "snapshot_url": f"{photos}/{photo}"})


def card_of(page: Any, person: str) -> Any:
    return page.locator(f".card[data-person='{person}']")


def test_a_verdict_survives_the_next_sighting_and_a_reload(
        shift_desk: tuple[str, Signer], browser: Any, photos: str) -> None:
    from playwright.sync_api import expect

    url, signer = shift_desk
    pages = {w: desk_page(browser, url, "alice", w, timezone=PARIS) for w in WIDTHS}
    deliver(url, signer, arrival("C-1012", "Bill Gates", photos, "biden.jpg"))
    desktop = pages["desktop"]
    card = card_of(desktop, "C-1012")
    expect(card).to_contain_text("Bill Gates")
    card.locator("button.fb.rejected").click()
    for page in pages.values():                  # every desk of the site shows the verdict
        expect(card_of(page, "C-1012")).to_contain_text("Not this person · alice")
        expect(card_of(page, "C-1012")).to_have_class("card rejected")
    undo = card.locator("button.fb.undo").element_handle()

    deliver(url, signer, arrival("C-1012", "Bill Gates", photos, "biden.jpg", camera="cam-2"))
    for width, page in pages.items():
        seen = card_of(page, "C-1012")
        expect(seen).to_have_attribute("data-count", "2")
        expect(seen).to_contain_text("seen 2×")
        expect(seen).to_contain_text("Not this person · alice")   # still the visit's verdict
        expect(seen).to_have_class("card rejected")               # greyed, no "new" animation
        expect(page.locator(".card")).to_have_count(1)
        screenshot(page, f"shift-verdict-kept-{width}.png")
    assert undo.evaluate("b => b.isConnected")     # updated in place: the same button

    desktop.reload()
    expect(desktop.locator("body[data-caught-up='1']")).to_have_count(1)
    expect(card_of(desktop, "C-1012")).to_contain_text("Not this person · alice")
    card_of(desktop, "C-1012").locator("button.fb.undo").click()
    for page in pages.values():
        expect(card_of(page, "C-1012").locator(".given")).to_be_hidden()
        expect(card_of(page, "C-1012")).to_have_class("card")
    assert all(p.errors == [] for p in pages.values())


def test_cards_keep_their_place_and_age_out_into_history(
        desk: tuple[str, Signer], browser: Any, photos: str) -> None:
    from playwright.sync_api import expect

    url, signer = desk
    pages = {w: desk_page(browser, url, "alice", w, timezone=PARIS) for w in WIDTHS}
    desktop = pages["desktop"]
    deliver(url, signer, arrival("C-1", "Barack Obama", photos, "obama.jpg"))
    deliver(url, signer, arrival("C-2", "Joe Biden", photos, "biden.jpg"))
    expect(desktop.locator(".card")).to_have_count(2)
    confirm = card_of(desktop, "C-1").locator("button.fb.confirmed").element_handle()
    deliver(url, signer, arrival("C-1", "Barack Obama", photos, "obama.jpg", camera="cam-2"))
    for width, page in pages.items():
        expect(card_of(page, "C-1")).to_have_attribute("data-count", "2")
        # newest first arrival first: C-1's repeat does not move it above C-2
        expect(page.locator(".card").first).to_have_attribute("data-person", "C-2")
        expect(page.locator(".card").nth(1)).to_have_attribute("data-person", "C-1")
        time_ = card_of(page, "C-1").locator("time.ago")
        expect(time_).to_have_text("just now")
        expect(time_).to_have_attribute("title", _LOCAL_TITLE)
        screenshot(page, f"shift-stable-{width}.png")
    assert confirm.evaluate("b => b.isConnected")  # the button under the pointer stayed
    # evidence opens full size: the profile photo and the camera crop are links
    expect(card_of(desktop, "C-1").locator("a.full")).to_have_count(2)

    card_of(desktop, "C-2").locator("button.fb.served").click()
    for page in pages.values():
        expect(card_of(page, "C-2")).to_have_count(0)
    for page in pages.values():                   # then C-1 ages out after card_ttl_s
        expect(card_of(page, "C-1")).to_have_count(0, timeout=CARD_TTL_S * 1000 + 20_000)
        expect(page.locator("#no-cards")).to_be_visible()
    desktop.reload()
    expect(desktop.locator("body[data-caught-up='1']")).to_have_count(1)
    expect(desktop.locator(".card")).to_have_count(0)
    desktop.goto(url + "/history")
    expect(desktop.locator("p.count")).to_contain_text("3 results")
    screenshot(desktop, "shift-history-desktop.png")


def test_history_and_csv_times_match_the_desk_in_the_viewers_zone(
        desk: tuple[str, Signer], browser: Any, photos: str) -> None:
    from playwright.sync_api import expect

    url, signer = desk
    page = desk_page(browser, url, "alice", "tablet", timezone=PARIS)
    event = arrival("C-7", "Ada Lovelace", photos, "obama.jpg")
    deliver(url, signer, event)
    shown = card_of(page, "C-7").locator("time.ago")
    expect(shown).to_have_attribute("title", _LOCAL_TITLE)
    desk_time = str(shown.get_attribute("title"))[:19]     # "2026-12-06 22:49:01"
    assert desk_time[11:13] != event.observed_at[11:13]      # Paris is never UTC

    page.goto(url + "/history")
    cell = page.locator("table.history td.when").first
    expect(cell).to_contain_text(desk_time)
    expect(page.locator("p.count")).to_contain_text("times in Europe/Paris")
    screenshot(page, "shift-history-paris-tablet.png")
    with page.expect_download() as download:
        page.click("a[download]")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][1] == "observed_at_local (Europe/Paris)"
    assert rows[1][1].startswith(desk_time) and rows[1][0] == event.observed_at


#: The absolute local time on hover: "2026-12-06 22:49:01 Europe/Paris".
_LOCAL_TITLE = __import__("re").compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Europe/Paris$")
