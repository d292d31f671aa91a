"""The missing-person alert reaches the agency (issue 20), in a real browser (Debian chromium,
in Europe/Paris) at 390, 820 and 1440 px: the officer lands on Cases; a photo uploaded on
the phone page and then a sighting (the real amber_alert against moto) appear on the case
page with the camera crop, live; the contact typed at upload is in the alert outbox; a
colleague's desk shows who acknowledged; closing the case turns the desk's banner into
"case closed", live and after a reload.

Parts: moto (in-process), the phone page's HTTP API stand-in and the real gallery indexer
(tests/amber_support.PhoneApi), the local alert outbox on moto's direct SMS/SES tap, and a
dashboard process. Screenshots go to tests/artifacts/officer-*.png.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from oneeye.cloud import devices
from oneeye.cloud.agencies import Agencies
from oneeye.cloud.functions import amber_alert as amber
from oneeye.local import alert_outbox
from oneeye.local.moto_server import tap_direct_messages, untap_direct_messages
from tests.amber_support import PhoneApi
from tests.browser_support import ARTIFACTS, PHONE
from tests.cloud_support import observe, sighting
from tests.dashboard_helpers import PASSWORD, serve_dashboard
from tests.wait import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]
WIDTHS = {"390": (390, 844), "820": (820, 1180), "1440": (1440, 900)}
ZONE = "Europe/Paris"
#: Typed on the phone page; amber_alert messages it in E.164.
CONTACT, CONTACT_E164 = "+44 1865 000000", "+441865000000"


@pytest.fixture
def world(tmp_path: Path, port: int, cloud_env: dict[str, str],
          moto_server: str) -> Iterator[dict[str, Any]]:
    devices.register("branch1-cam", "branch-1", ["door"])
    box = alert_outbox.AlertOutbox(tmp_path / "alert_outbox.jsonl",
                                   topic_arn=cloud_env["ALERTS_TOPIC_ARN"],
                                   smtp_host="127.0.0.1", smtp_port=9)

    def direct(kind: str, to: str, subject: str | None, body: str, message_id: str,
               event_id: str | None) -> None:
        if kind == "sms":       # no SMTP sink here: the contact typed is a phone number
            box.handle_direct(kind, to, subject, body, message_id=message_id,
                              event_id=event_id)

    tap_direct_messages(direct)
    phone = PhoneApi(cloud_env, moto_server)
    token = Agencies(cloud_env["AGENCIES_TABLE"]).add("County Police", time_zone=ZONE)[0]
    try:
        for url, signer in serve_dashboard(
                tmp_path, port, alert_outbox_path=box.path, cloud={
                    "bucket": cloud_env["ONEEYE_BUCKET"],
                    "cases_table": cloud_env["CASES_TABLE"],
                    "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]}):
            yield {"url": url, "signer": signer, "phone": phone.url, "token": token,
                   "outbox": box.path, "desk_topic": observe(cloud_env["DESK_TOPIC_ARN"])}
    finally:
        phone.close()
        untap_direct_messages(direct)


def open_page(browser: Any, url: str, user: str, width: str, *, path: str = "") -> Any:
    w, h = WIDTHS[width]
    page = browser.new_context(viewport={"width": w, "height": h},
                               timezone_id=ZONE).new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(url + "/login" + (f"?next={path}" if path else ""))
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button")
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"officer-{name}.png"), full_page=True,
                    animations="disabled")


def fits(page: Any) -> None:
    """No horizontal overflow: the page is usable without scrolling sideways."""
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in {width[1]} px"


def sighted(world: dict[str, Any], case_id: str, crop: bytes) -> None:
    """The edge saw the case at branch-1 (``crop``: its JPEG): the real amber_alert, then its
    desk event to the dashboard as SNS delivers it (signed)."""
    match = sighting(device_id="branch1-cam", iot_thing="branch1-cam", site_id="branch-1",
                     camera_id="door", person_id=case_id,
                     snapshot_jpeg=base64.b64encode(crop).decode())
    assert amber.amber_alert(match, amber.amber_from_env())["status"] in ("alerted", "cooldown")
    [desk] = [m for m in world["desk_topic"].drain(wait_s=10)
              if json.loads(m["Message"])["event_id"] == match["event_id"]]
    resp = requests.post(world["url"] + "/sns", timeout=10, headers={
        "x-amz-sns-message-type": "Notification"},
        data=json.dumps(world["signer"].notification(desk["Message"])))
    assert resp.status_code == 200, resp.text


def upload_on_the_phone(browser: Any, world: dict[str, Any], photo: Path) -> str:
    from playwright.sync_api import expect

    phone = browser.new_context(**PHONE, timezone_id=ZONE).new_page()
    phone.goto(world["phone"])
    expect(phone.locator("body")).to_have_attribute("data-ready", "true")
    phone.fill("#token", world["token"])
    phone.fill("#agency", "PC 1234 Smith")
    phone.fill("#contact", CONTACT)
    phone.fill("#name", "Barack O.")
    phone.set_input_files("#library", str(photo))
    phone.click("#submit")
    expect(phone.locator("#status")).to_have_attribute("data-state", "accepted",
                                                       timeout=90_000)
    case_id: str = phone.input_value("#case_id")
    expect(phone.locator(f"#history-list li[data-case='{case_id}']")).to_contain_text(
        "accepted")
    phone.click("#new-case")                      # the next person starts a new case
    assert phone.input_value("#case_id") == "" and phone.input_value("#name") == ""
    assert phone.input_value("#contact") == CONTACT          # the officer's own fields stay
    phone.reload()                                 # the recent uploads stay on this phone
    expect(phone.locator(f"#history-list li[data-case='{case_id}']")).to_contain_text(
        "Barack O.")
    phone.screenshot(path=str(ARTIFACTS / "officer-phone-recent-390.png"), full_page=True)
    return case_id


def test_the_officer_follows_a_case_from_the_phone_to_every_desk(
        world: dict[str, Any], browser: Any, examples: Path) -> None:
    from playwright.sync_api import expect

    url = world["url"]
    officer = open_page(browser, url, "olga", "390")
    expect(officer).to_have_url(url + "/cases")                  # the officer's home
    expect(officer.locator("nav a.on")).to_have_text("Cases")

    case_id = upload_on_the_phone(browser, world, examples / "obama-1080p.jpg")
    officer.goto(url + f"/cases/{case_id}")
    expect(officer.locator("#story .badge")).to_have_text("open")
    expect(officer.locator(".status-history")).to_contain_text("pending")
    alice = open_page(browser, url, "alice", "1440")             # a teller's desk
    ada = open_page(browser, url, "ada", "820")                  # her colleague's
    for desk in (alice, ada):
        expect(desk.locator("body[data-caught-up='1']")).to_have_count(1)

    crop_jpeg = (examples / "obama_small.jpg").read_bytes()
    crop_width = Image.open(io.BytesIO(crop_jpeg)).width
    sighted(world, case_id, crop_jpeg)
    sighting_card = officer.locator(".sighting").first               # live, no reload
    expect(sighting_card).to_contain_text("site branch-1 · camera door")
    crop = sighting_card.locator("a.crop")
    assert "/snapshots/" in (crop.get_attribute("href") or "")
    assert crop.get_attribute("target") == "_blank"                 # opens full size
    expect(crop.locator("img")).to_have_js_property("naturalWidth", crop_width)  # it loads
    expect(sighting_card).to_contain_text(f"SMS to {CONTACT_E164} sent")
    expect(sighting_card.locator(".when")).to_contain_text("CET")   # the viewer's zone
    lines = wait_until(lambda: [e for e in alert_outbox.read(world["outbox"])
                                if e.get("to") == CONTACT_E164] or None, 10,
                       "the SMS to the contact typed at upload in the alert outbox")
    assert lines[0]["kind"] == "sms" and case_id in lines[0]["body"]

    banner = f".banner[data-subject='{case_id}']"
    expect(alice.locator(banner)).to_contain_text("Do not approach; contact the agency.")
    ada.locator(banner + " button.ack").click()
    expect(alice.locator(banner)).to_contain_text("acknowledged by ada")   # a colleague's
    shot(alice, "desk-colleague-acknowledged-1440")
    expect(officer.locator(".sighting .acked").first).to_contain_text("Acknowledged by ada")

    sighted(world, case_id, crop_jpeg)                            # seen again
    expect(alice.locator(banner + ".reraised")).to_contain_text("seen 2× in all (1 new)")
    expect(officer.locator("#story")).to_have_attribute("data-sightings", "2")
    for width in WIDTHS:
        w, h = WIDTHS[width]
        officer.set_viewport_size({"width": w, "height": h})
        fits(officer)
        shot(officer, f"case-{width}")
    officer.set_viewport_size({"width": 390, "height": 844})

    officer.locator("details.confirm summary").click()             # asks first
    expect(officer.locator("#confirm-close")).to_be_visible()
    shot(officer, "case-confirm-close-390")
    officer.locator("#confirm-close").click()
    expect(officer.locator("#story .badge")).to_have_text("closed")
    expect(officer.locator(".status-history li").last).to_contain_text("closed")
    expect(officer.locator(".status-history li").last).to_contain_text("olga")
    for desk in (alice, ada):                                          # live
        expect(desk.locator(banner + ".closed")).to_contain_text(
            "case closed by olga at")
        expect(desk.locator(banner)).to_contain_text("no action needed")
        expect(desk.locator(banner)).not_to_contain_text("Call ")
        # closed: it was re-raised before, but nobody is asked to look again or to judge
        expect(desk.locator(banner + ".reraised")).to_have_count(0)
        expect(desk.locator(banner)).not_to_contain_text("Seen again after")
        expect(desk.locator(banner + " .verdict button")).to_have_count(0)
    alice.reload()                                                   # and after a reload
    expect(alice.locator(banner + ".closed")).to_contain_text("case closed by olga")
    shot(alice, "desk-case-closed-1440")

    for path, name in (("/cases", "cases"), ("/alerts", "alerts")):
        officer.goto(url + path)
        for width in WIDTHS:
            w, h = WIDTHS[width]
            officer.set_viewport_size({"width": w, "height": h})
            fits(officer)
            shot(officer, f"{name}-{width}")
    expect(officer.locator(".alert-outbox")).to_contain_text(CONTACT_E164)
    officer.goto(url + "/cases")
    expect(officer.locator(f"li[data-case='{case_id}']")).to_contain_text("seen 2×")
    assert officer.errors == [] and alice.errors == [] and ada.errors == []
