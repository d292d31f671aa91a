"""The phone page in a real browser (headless Debian chromium, phone-sized viewport).

Parts: a moto server with the template's resources; the local stack's HTTP API
stand-in (oneeye/local/httpapi.py: routes read from cloud/template.yaml, the
real handlers, the same-origin /s3-upload proxy to moto, the static page); the
real gallery_indexer fed from the indexer queue (tests/amber_support.py).
Screenshots go to tests/artifacts/mobile-*.png.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from oneeye.cloud import gallery_store, store
from oneeye.cloud.agencies import Agencies
from tests.amber_support import IndexerPump
from tests.cloud_support import *  # noqa: F403
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                       "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"}


@pytest.fixture
def stack(cloud_env: dict[str, str], moto_server: str) -> Iterator[dict[str, Any]]:
    from oneeye.local import template as tpl
    from oneeye.local.httpapi import HttpApi
    from oneeye.local.lambdas import Lambdas

    template = tpl.load(REPO / "cloud" / "template.yaml")
    api = HttpApi(template.routes, Lambdas(template.functions),
                  static_dir=REPO / "mobile_upload", moto_url=moto_server,
                  confirm=lambda arn, token: None, unsubscribe=lambda arn: False)
    port = free_port()
    api.serve("127.0.0.1", port)
    pump = IndexerPump(cloud_env["INDEXER_QUEUE_URL"])
    token = Agencies(cloud_env["AGENCIES_TABLE"]).add("Thames Valley Police")[0]
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "token": token, "env": cloud_env,
               "pump": pump}
    finally:
        pump.close()
        api.stop()


@pytest.fixture
def page(stack: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(**PHONE)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        # The page is served with a strict CSP; anything it blocks would be a broken page.
        pg.on("console", lambda msg: errors.append(msg.text)
              if "Content Security Policy" in msg.text else None)
        resp = pg.goto(stack["url"])
        assert resp is not None and "script-src 'self'" in resp.headers[
            "content-security-policy"]
        pg.wait_for_selector("body[data-ready=true]")
        yield pg
        context.close()
        browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"mobile-{name}.png"), full_page=True)


def upload(page: Any, photo: Path) -> dict[str, str]:
    page.set_input_files("#library", str(photo))
    page.wait_for_selector("#preview:not([hidden])")
    page.click("#submit")
    # A selector, not wait_for_function: the page's CSP forbids the eval that would need.
    page.wait_for_selector("#status[data-state=accepted], #status[data-state=rejected], "
                           "#status[data-state=error]", state="attached", timeout=90_000)
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
    page.wait_for_timeout(300)
    assert page.evaluate("(() => { const r = document.querySelector('#status')"
                         ".getBoundingClientRect(); return r.top >= 0 && "
                         "r.top < window.innerHeight; })()")
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
    # the accepted token is remembered on this phone; the form is back after a reload
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
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
    page.wait_for_selector("body[data-ready=true]")
    assert page.input_value("#token") == ""  # a refused token is never remembered


def _keys(bucket: store.Bucket, prefix: str) -> list[str]:
    from oneeye import aws

    resp = aws.client("s3").list_objects_v2(Bucket=bucket.name, Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]
