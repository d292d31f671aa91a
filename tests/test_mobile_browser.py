"""The phone page in a real browser (headless Debian chromium, phone-sized viewport).

Parts: a moto server with the template's resources; the local stack's HTTP API
stand-in (oneeye/local/httpapi.py: routes read from cloud/template.yaml, the
real handlers, the same-origin /s3-upload proxy to moto, the static page); the
real gallery_indexer fed from the indexer queue (tests/amber_support.py).
Screenshots go to tests/artifacts/mobile-*.png.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from oneeye.cloud.agencies import Agencies
from oneeye.cloud.dal import gallery_store, store
from tests.amber_support import PhoneApi
from tests.browser_support import ARTIFACTS, PHONE, launch

pytestmark = [pytest.mark.slow, pytest.mark.browser]

#: The states of ``#status[data-state]`` that end an upload (``working`` does not).
OUTCOME = re.compile(r"^(accepted|rejected|error)$")


@pytest.fixture
def stack(cloud_env: dict[str, str], moto_server: str) -> Iterator[dict[str, Any]]:
    phone = PhoneApi(cloud_env, moto_server)
    token = Agencies(cloud_env["AGENCIES_TABLE"]).add("Thames Valley Police")[0]
    try:
        yield {"url": phone.url, "token": token, "env": cloud_env, "pump": phone.pump}
    finally:
        phone.close()


@pytest.fixture
def page(stack: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(**PHONE)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # The page is served with a strict CSP; anything it blocks would be a broken page.
        pg.on("console", lambda msg: errors.append(msg.text)
              if "Content Security Policy" in msg.text else None)
        # No request the page did not ask for fails (a missing favicon is a console error).
        pg.on("console", lambda msg: errors.append(f"{msg.text} {msg.location.get('url')}")
              if str(msg.location.get("url", "")).endswith("/favicon.ico") else None)
        resp = pg.goto(stack["url"])
        assert resp is not None and "script-src 'self'" in resp.headers[
            "content-security-policy"]
        expect(pg.locator("body")).to_have_attribute("data-ready", "true")
        yield pg
        context.close()
        browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"mobile-{name}.png"), full_page=True)


def upload(page: Any, photo: Path) -> dict[str, str]:
    page.set_input_files("#library", str(photo))
    expect(page.locator("#preview")).to_be_visible()
    page.click("#submit")
    expect(page.locator("#status")).to_have_attribute("data-state", OUTCOME, timeout=90_000)
    return {"state": page.get_attribute("#status", "data-state") or "",
            "message": page.inner_text("#status-message"),
            "detail": page.inner_text("#status-detail")}


def test_phone_upload_accepted_then_no_face_and_two_faces_rejected(
        page: Any, stack: dict[str, Any], examples: Path, tmp_path: Path) -> None:
    page.fill("#token", stack["token"])
    page.fill("#agency", "PC 1234 Smith")
    page.fill("#contact", "+44 1865 000000")
    page.fill("#name", "Barack O.")
    page.fill("#age", "61")
    page.fill("#description", "dark suit, last seen near the station")
    shot(page, "1-form")

    result = upload(page, examples / "obama-1080p.jpg")
    shot(page, "2-accepted")
    assert result["state"] == "accepted", result
    # on a phone the answer is scrolled into view, not left below the fold
    expect(page.locator("#status")).to_be_in_viewport()
    page.screenshot(path=str(ARTIFACTS / "mobile-2b-accepted-screen.png"))
    case_id = page.input_value("#case_id")  # the new case's id, filled in for more photos
    assert case_id.startswith("MP-")
    assert result["message"].startswith("accepted — cameras now looking for Barack O. (gallery v")
    assert result["detail"] == f"case {case_id}"
    bucket = store.Bucket(stack["env"]["ONEEYE_BUCKET"])
    gallery, _ = gallery_store.read_latest(bucket, "missing")
    assert case_id in gallery
    # the browser resized the 1920x1080 photo to ≤ 1600 px JPEG before uploading
    key = next(k for k in _keys(bucket, f"uploads/missing/{case_id}/"))
    obj = bucket.get(key)
    assert obj is not None
    assert max(Image.open(io.BytesIO(obj.data)).size) <= 1600
    assert obj.metadata.get("agency") == "Thames Valley Police"

    blank = tmp_path / "wall.jpg"
    Image.linear_gradient("L").resize((800, 600)).convert("RGB").save(blank)
    result = upload(page, blank)
    shot(page, "3-no-face")
    assert result["state"] == "rejected", result
    assert result["message"] == "no face found — use a photo where the face is clearly visible"

    result = upload(page, examples / "two_people.jpg")
    shot(page, "4-two-faces")
    assert result["state"] == "rejected", result
    assert result["message"] == "two faces — crop to one person"
    history = page.inner_text("#history-list")
    assert history.count(case_id) == 3
    # each with the one date format of OneEye's pages, not the browser locale's
    assert len(re.findall(r" · \d{4}-\d\d-\d\d \d\d:\d\d$", history, re.M)) == 3, history
    # the accepted token is remembered on this phone; the form is back after a reload
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert page.input_value("#token") == stack["token"]
    assert page.input_value("#agency") == "PC 1234 Smith"


def test_phone_page_refuses_non_images_and_bad_tokens(page: Any, stack: dict[str, Any],
                                                      tmp_path: Path, examples: Path) -> None:
    page.click("#submit")
    assert page.is_visible("#form-error")
    assert "the agency token" in page.inner_text("#form-error")
    assert "the person's name" in page.inner_text("#form-error")

    page.fill("#token", stack["token"])
    page.fill("#name", "Jane Doe")
    page.fill("#contact", "+44 1865 000000")
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n" * 50)
    result = upload(page, text)
    assert result["state"] == "error"
    assert result["message"] == "not an image — choose a photo (JPEG or PNG)"

    page.fill("#token", "oeat_" + "x" * 43)
    result = upload(page, examples / "obama_small.jpg")
    shot(page, "5-bad-token")
    assert result["state"] == "error"
    assert result["message"] == "agency token not accepted — check it with your coordinator"
    assert not page.is_visible("#again")  # the fix is in the form, not another photo
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert page.input_value("#token") == ""  # a refused token is never remembered


def test_the_contact_is_checked_on_the_phone_and_the_server_has_the_last_word(
        page: Any, stack: dict[str, Any], examples: Path) -> None:
    """Issue 20 §3: the field says what it takes; a national short code is refused on the
    phone with the rule; a number that looks international but is not assigned (Ofcom's
    drama range) passes the phone's check and is refused by the server, which the page
    shows; a valid one is stored in E.164."""
    assert "international form" in page.inner_text("#contact-hint")
    page.fill("#token", stack["token"])
    page.fill("#name", "Contact Case")
    page.set_input_files("#library", str(examples / "obama_small.jpg"))
    expect(page.locator("#preview")).to_be_visible()
    page.fill("#contact", "101")
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("international form")
    assert "invalid" in (page.get_attribute("#contact", "class") or "")
    page.fill("#contact", "+44 7700 900123")
    page.click("#submit")
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=30_000)
    expect(page.locator("#status-message")).to_contain_text("not a valid phone number")
    assert "invalid" in (page.get_attribute("#contact", "class") or "")
    shot(page, "6-contact-refused")
    page.fill("#contact", "+44 1865 000000; duty@agency.example")
    result = upload(page, examples / "obama_small.jpg")
    assert result["state"] == "accepted", result
    case = store.Cases(stack["env"]["CASES_TABLE"]).get(page.input_value("#case_id"))
    assert case is not None and case["contact"] == "+441865000000, duty@agency.example"


def test_phone_page_composites_transparency_on_white_and_names_heic(
        page: Any, stack: dict[str, Any], tmp_path: Path, examples: Path) -> None:
    page.fill("#token", stack["token"])
    page.fill("#name", "Alpha Case")
    page.fill("#contact", "+44 1865 000000")
    photo = Image.open(examples / "obama_small.jpg").convert("RGBA")
    photo.paste((0, 0, 0, 0), (0, 0, 40, 40))  # a transparent corner
    png = tmp_path / "cutout.png"
    photo.save(png)
    result = upload(page, png)
    assert result["state"] == "accepted", result
    bucket = store.Bucket(stack["env"]["ONEEYE_BUCKET"])
    case_id = page.input_value("#case_id")
    obj = bucket.get(next(iter(_keys(bucket, f"uploads/missing/{case_id}/"))))
    assert obj is not None
    corner = Image.open(io.BytesIO(obj.data)).convert("RGB").crop((0, 0, 30, 30))
    assert min(corner.getextrema()[0][0], corner.getextrema()[2][0]) >= 240  # white, not black

    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    result = upload(page, heic)
    shot(page, "6-heic")
    assert result["state"] == "error"
    assert result["message"] == "HEIC is not supported; export as JPEG"


def _keys(bucket: store.Bucket, prefix: str) -> list[str]:
    from oneeye import aws

    resp = aws.client("s3").list_objects_v2(Bucket=bucket.name, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]
