"""Confirm creates a template visible on the person's page, and it is removable (issue 22,
Done when), in a real browser (Debian chromium via Playwright) in Europe/Paris: a teller
confirms a card whose sighting carries the edge's encoding, the real gallery indexer
learns it, the branch admin sees the sighting template with who and when on the person's
page at 390, 820 and 1440 px, removes it after confirming, and the indexer takes it out.

Real parts: a served dashboard process, moto's server behind boto3, the gallery indexer
fed from the queue as the Lambda's event source mapping would. Screenshots go to
tests/artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from oneeye.cloud.backoffice import Backoffice
from tests.amber_support import IndexerPump
from tests.dashboard_helpers import serve_dashboard
from tests.desk_support import WIDTHS, deliver, desk_page, screenshot
from tests.learning_support import encode, sighting

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PARIS = "Europe/Paris"


def test_confirm_makes_a_template_on_the_persons_page_and_it_can_be_removed(
        tmp_path: Path, port: int, cloud_env: dict[str, str], browser: Any, examples: Path,
        photos: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv("LEARN_WATCHLISTS", "customers")
    office = Backoffice(cloud_env["ONEEYE_BUCKET"], cloud_env["CASES_TABLE"],
                        cloud_env["INDEXER_QUEUE_URL"])
    pump = IndexerPump(cloud_env["INDEXER_QUEUE_URL"])
    try:
        office.add_customer_photo("C-1042", (examples / "obama.jpg").read_bytes(), "jpg")
        pump.wait_for(lambda r: r.get("status") == "accepted")
        look = encode(examples / "knn_examples" / "test" / "obama1.jpg")
        event = sighting("C-1042", look.tolist(),
                         snapshot_url=f"{photos}/knn_examples/test/obama1.jpg")
        for url, signer in serve_dashboard(tmp_path, port, cloud={
                "bucket": cloud_env["ONEEYE_BUCKET"], "cases_table": cloud_env["CASES_TABLE"],
                "indexer_queue_url": cloud_env["INDEXER_QUEUE_URL"]}):
            teller = desk_page(browser, url, "alice", "desktop", timezone=PARIS)
            deliver(url, signer, event)
            card = teller.locator(".card[data-person='C-1042']")
            card.locator("button.fb.confirmed").click()
            expect(card).to_contain_text("Confirmed · alice")
            learnt = pump.wait_for(lambda r: r.get("status") == "learnt")
            assert learnt["kind"] == "sighting"
            (template,) = [t for t in office.templates("customers", "C-1042")
                           if t["kind"] == "sighting"]
            paris = datetime.fromisoformat(template["at"]).astimezone(ZoneInfo(PARIS))

            pages = {w: desk_page(browser, url, "ada", w, timezone=PARIS,
                                  path="/manage/customers") for w in WIDTHS}
            for width, page in pages.items():
                page.locator("a.customer-link").first.click()
                row = page.locator("tr[data-kind='sighting']")
                expect(row).to_contain_text(event.event_id)
                expect(row).to_contain_text("alice · " + paris.strftime("%Y-%m-%d %H:%M"))
                expect(row.locator("img")).to_have_attribute("src", event.snapshot_url or "")
                photo = page.locator("tr[data-kind='photo'] img")
                expect(photo).to_have_js_property("complete", True)
                assert photo.evaluate("i => i.naturalWidth") > 0   # the upload, served
                screenshot(page, f"templates-person-{width}.png")

            admin = pages["desktop"]
            admin.locator("tr[data-kind='sighting'] button.remove").click()
            expect(admin.locator("h1")).to_contain_text("Remove this sighting template")
            screenshot(admin, "templates-confirm-desktop.png")
            admin.locator("form.confirm button.danger").click()
            expect(admin.locator(".flash")).to_contain_text("sighting template removed")
            pump.wait_for(lambda r: r.get("status") == "removed")
            admin.reload()
            expect(admin.locator("tr[data-kind='sighting']")).to_have_count(0)
            expect(admin.locator("tr[data-kind='photo']")).to_have_count(1)
            screenshot(admin, "templates-removed-desktop.png")
            assert [t["kind"] for t in office.templates("customers", "C-1042")] == ["photo"]
            assert all(p.errors == [] for p in [teller, *pages.values()])
    finally:
        pump.close()
