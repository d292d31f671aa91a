"""The desk people act on, in a real browser (Debian chromium via Playwright), at phone
(390), tablet (820) and desktop (1440) widths: one banner per case, one Acknowledge,
verdicts in the audit, catch-up over several pages, a camera outage, and the management
screens against a moto server and the real gallery indexer.

Screenshots go to tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneeye.events import CameraHealth, DeskEvent, HealthEvent, utc_now
from tests.dashboard_helpers import Signer, desk_event, serve_dashboard
from tests.desk_support import WIDTHS, desk_page
from tests.desk_support import deliver as push
from tests.desk_support import screenshot as shot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
#: The banner of case MP-2026-0042 (its id names the newest sighting's event).
CASE = ".banner[data-subject='MP-2026-0042']"


@pytest.fixture
def desk(tmp_path: Path, port: int) -> Iterator[tuple[str, Signer]]:
    yield from serve_dashboard(tmp_path, port, history_limit=5, offline_after_s=1.5)


def open_desk(browser: Any, url: str, user: str, width: str, *, path: str = "/") -> Any:
    return desk_page(browser, url, user, width, path=path)


def sighting(camera: str, base: str) -> DeskEvent:
    event = desk_event(kind="missing_person_sighted", person_id="MP-2026-0042",
                       name="Lin-Manuel Miranda", device_id=camera,
                       snapshot_url=f"{base}/lin-manuel-miranda.png")
    return event.model_copy(update={"case": {**(event.case or {}), "notified": True,
                                             "photo_url": f"{base}/lin-manuel-miranda.png"}})


def test_three_sightings_one_banner_one_acknowledge_and_verdicts(
        desk: tuple[str, Signer], browser: Any, photos: str) -> None:
    from playwright.sync_api import expect

    url, signer = desk
    pages = {w: open_desk(browser, url, "alice", w) for w in WIDTHS}
    customer = desk_event(name="Barack Obama", person_id="C-1042")
    customer = customer.model_copy(update={"customer": {
        **(customer.customer or {}), "photo_url": f"{photos}/obama.jpg"}})
    push(url, signer, customer)
    for camera in ("cam-1", "cam-3", "cam-1"):
        push(url, signer, sighting(camera, photos))
    for width, page in pages.items():
        banner = page.locator(CASE)
        expect(banner).to_contain_text("seen 3× on cam-1 and cam-3")
        expect(page.locator(".banner")).to_have_count(1)
        expect(banner).to_contain_text("Call County Police +1 555 0100")
        expect(banner.locator(".strength")).to_have_attribute("title", "distance 0.38 (lower "
                                                              "is closer), margin 0.20")
        expect(page.locator(f"[data-event-id='{customer.event_id}']")).to_contain_text(
            "Barack Obama")
        assert page.title() == "(1) OneEye desk"
        shot(page, f"desk-grouped-{width}.png")

    desktop = pages["desktop"]
    card = desktop.locator(f"[data-event-id='{customer.event_id}']")
    card.locator("button.fb.rejected").click()
    expect(card).to_contain_text("Not this person · alice")
    desktop.locator(CASE + " button.fb.confirmed").click()
    expect(desktop.locator(CASE)).to_contain_text("Confirmed · alice")
    desktop.locator(CASE + " button.ack").click()
    expect(desktop.locator(CASE)).to_contain_text("acknowledged by alice")
    for page in pages.values():                    # one click cleared it on every desk
        expect(page.locator(".banner:not(.done)")).to_have_count(0)
        expect(page).to_have_title("OneEye desk")
    shot(pages["phone"], "desk-acknowledged-phone.png")

    push(url, signer, sighting("cam-3", photos))      # seen again after the ack
    expect(desktop.locator(CASE + ".reraised")).to_contain_text(
        "Seen again after alice acknowledged")
    # the case's running count stays: 4 in all, 1 since the acknowledgement
    expect(desktop.locator(CASE)).to_contain_text("seen 4× in all (1 new) on cam-3")
    shot(desktop, "desk-reraised-desktop.png")

    admin = open_desk(browser, url, "ada", "desktop", path="/manage/audit")
    audit = admin.locator("table.audit")
    expect(audit).to_contain_text("rejected")
    expect(audit).to_contain_text("confirmed")
    expect(audit).to_contain_text("acknowledged")
    expect(admin.locator("table.rejections")).to_contain_text("cam-door-1")
    shot(admin, "audit-desktop.png")

    history = pages["tablet"]
    history.goto(url + "/history")
    expect(history.locator("p.count")).to_contain_text("5 results")
    expect(history.locator("table.history")).to_contain_text("not this person · alice")
    shot(history, "history-tablet.png")
    assert all(p.errors == [] for p in pages.values())


def test_catch_up_after_a_reconnect_pages_until_done(
        desk: tuple[str, Signer], browser: Any, photos: str) -> None:
    from playwright.sync_api import expect

    url, signer = desk
    page = open_desk(browser, url, "alice", "tablet")
    push(url, signer, desk_event(person_id="C-0"))
    expect(page.locator("[data-person='C-0']")).to_have_count(1)
    page.evaluate("window.oneeyeDesk.socket.disconnect()")
    expect(page.locator("body[data-socket='disconnected']")).to_have_count(1)
    missed = [desk_event(person_id=f"C-{i}") for i in range(1, 13)]   # > 2 pages of 5
    for event in missed:
        push(url, signer, event)
    push(url, signer, sighting("cam-2", photos))
    page.evaluate("window.oneeyeDesk.socket.connect()")
    expect(page.locator(CASE)).to_contain_text("seen 1× on cam-2")
    expect(page.locator("body[data-caught-up='1']")).to_have_count(1)
    expect(page.locator(".desk")).to_have_attribute("data-last-seq", "14")
    assert int(page.locator(".desk").get_attribute("data-pages") or 0) >= 3
    expect(page.locator("[data-person='C-12']")).to_have_count(1)


def test_an_offline_camera_raises_a_banner_and_is_recorded(
        desk: tuple[str, Signer], browser: Any) -> None:
    from playwright.sync_api import expect

    url, signer = desk
    pages = {w: open_desk(browser, url, "alice", w) for w in WIDTHS}
    health = HealthEvent(device_id="cam-lobby", site_id="branch-1", camera_id="door",
                         sent_at=utc_now(), uptime_s=60, fps=14.8,
                         cameras={"door": CameraHealth(state="ok", fps=14.8),
                                  "vault": CameraHealth(state="ok", fps=9.5)})
    status = desk_event(kind="device_status", device_id="cam-lobby", health=health)
    push(url, signer, status)
    # the cloud's transition (lifecycle event or sweep), as SNS delivers it
    push(url, signer, desk_event(kind="device_offline", device_id="cam-lobby",
                                 message="no health report for over 90 s"))
    for width, page in pages.items():
        banner = page.locator(".banner[data-subject='cam-lobby']")
        expect(banner).to_contain_text("CAMERA OFFLINE: cam-lobby", timeout=15_000)
        expect(page.locator("#devices tr.offline").first).to_contain_text("—")
        for camera in ("door", "vault"):           # one row per camera, no stale fps
            expect(page.locator(f"#devices tr[data-camera='{camera}'] td.fps")).to_have_text(
                "—")
        expect(page.locator("#devices")).to_be_in_viewport()
        shot(page, f"desk-offline-{width}.png")
    tablet = pages["tablet"]
    tablet.goto(url + "/history/cameras")
    expect(tablet.locator("table.history")).to_contain_text("device offline")
    shot(tablet, "history-cameras-tablet.png")
    # the cloud announces the return: device_online is recorded and the outage closed by it
    push(url, signer, desk_event(kind="device_online", device_id="cam-lobby"))
    tablet.goto(url + "/history/cameras")
    expect(tablet.locator("table.history")).to_contain_text("device online")
    expect(tablet.locator("table.history")).to_contain_text("system (back online)")


def test_a_device_with_several_cameras_shows_one_row_per_camera(
        desk: tuple[str, Signer], browser: Any) -> None:
    from playwright.sync_api import expect

    from oneeye.events import CameraHealth

    url, signer = desk
    page = open_desk(browser, url, "alice", "tablet")
    health = HealthEvent(
        device_id="edge-7", site_id="branch-1", camera_id="lobby", sent_at=utc_now(),
        uptime_s=60, fps=0.0, camera_state="reconnecting",
        cameras={"door": CameraHealth(state="ok", fps=14.9, frame_age_ms=80.0),
                 "lobby": CameraHealth(state="reconnecting", frame_age_ms=9000.0)})
    push(url, signer, desk_event(kind="device_status", device_id="edge-7", health=health))
    expect(page.locator("#devices tr[data-camera='door']")).to_contain_text("edge-7 · door")
    expect(page.locator("#devices tr[data-camera='door']")).to_contain_text("14.9")
    lobby = page.locator("#devices tr[data-camera='lobby']")
    expect(lobby).to_contain_text("(reconnecting)")
    expect(lobby).to_contain_text("—")
    shot(page, "desk-cameras-tablet.png")


def test_management_adds_customer_photos_with_verdicts_and_closes_a_case(
        tmp_path: Path, port: int, cloud_env: dict[str, str], browser: Any,
        examples: Path) -> None:
    from playwright.sync_api import expect

    from oneeye.cloud.dal import store as cloud_store
    from tests.amber_support import IndexerPump

    cases = cloud_store.Cases(cloud_env["CASES_TABLE"])
    cases.upsert("MP-2026-0007", {"status": "open", "agency": "County Police", "name": "Ann"})
    cases.upsert("MP-2026-0008", {"status": "open", "agency": "Other Agency", "name": "Ben"})
    pump = IndexerPump(cloud_env["INDEXER_QUEUE_URL"])
    try:
        for url, _ in serve_dashboard(tmp_path, port, cloud={
                "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
                "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]}):
            admin = open_desk(browser, url, "ada", "tablet", path="/manage/customers")
            verdict = admin.locator("#verdict")
            for photo, state, text in (("obama.jpg", "accepted", "Accepted"),
                                       ("two_people.jpg", "rejected", "face")):
                admin.fill("input[name=customer_id]", "C-1042")
                admin.set_input_files("input[name=photo]", str(examples / photo))
                admin.click("#photo-form button")
                expect(verdict).to_have_attribute("data-state", state, timeout=60_000)
                expect(verdict).to_contain_text(text)
                shot(admin, f"manage-photo-{state}-tablet.png")
            admin.reload()
            expect(admin.locator("table.history")).to_contain_text("C-1042")

            officer = open_desk(browser, url, "olga", "phone", path="/manage/cases")
            listing = officer.locator("ul.case-list")           # the old address redirects
            expect(listing).to_contain_text("MP-2026-0007")
            expect(listing).not_to_contain_text("MP-2026-0008")    # another agency's case
            officer.locator("li[data-case='MP-2026-0007'] a.case-link").click()
            officer.locator("details.confirm summary").click()     # asks first
            officer.locator("#confirm-close").click()
            expect(officer.locator(".flash")).to_contain_text("case MP-2026-0007 closed")
            expect(officer.locator("#story .badge")).to_have_text("closed")
            shot(officer, "manage-cases-phone.png")
            assert cases.get("MP-2026-0007")["status"] == "closed"
            assert cases.get("MP-2026-0008")["status"] == "open"
            pump.wait_for(lambda r: r.get("status") in ("removed", "absent")
                          and r.get("person_id") == "MP-2026-0007")
    finally:
        pump.close()
