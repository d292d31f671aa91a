"""amber_alert against a moto server: case lookup, snapshot link, texts, cooldown."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from typing import Any

import pytest

from oneeye.cloud.dal import store
from oneeye.cloud.dal.state import Cooldowns
from oneeye.cloud.functions import amber_alert
from oneeye.events import DeskEvent, MatchEvent
from oneeye.sms import segments
from tests.cloud_support import JPEG, observe, sighting

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("mall_devices")]



@pytest.fixture
def case(cloud_env: dict[str, str]) -> dict[str, Any]:
    return store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {
        "name": "Jane Doe", "age": 14, "description": "red jacket", "agency": "Met Police",
        "contact": "+44 20 7230 1212", "status": "open"})


def test_sighting_alerts_once_per_cooldown_and_banners_every_time(
        cloud_env: dict[str, str], case: dict[str, Any]) -> None:
    alerts, deskq = observe(cloud_env["ALERTS_TOPIC_ARN"]), observe(cloud_env["DESK_TOPIC_ARN"])
    deps = amber_alert.amber_from_env()
    first = amber_alert.amber_alert(sighting(), deps)
    again = amber_alert.amber_alert(sighting(camera_id="food-court"), deps)
    other_site = amber_alert.amber_alert(sighting(site_id="mall-4", device_id="mall4-cam",
                                                  iot_thing="mall4-cam"), deps)
    assert [first["status"], again["status"], other_site["status"]] == \
        ["alerted", "cooldown", "alerted"]
    sent = alerts.drain(wait_s=2)
    assert len(sent) == 2
    assert sent[0]["Subject"] == "OneEye alert: Jane Doe (MP-2026-0042) seen at mall-3"
    # The SQS subscriber receives the "default" text of the structured message.
    assert "entrance-north" in sent[0]["Message"] and "Jane Doe" in sent[0]["Message"]
    banners = [DeskEvent.model_validate(m) for m in deskq.messages()]
    assert [b.kind for b in banners] == ["missing_person_sighted"] * 3
    assert banners[0].case and banners[0].case["agency"] == "Met Police"
    assert banners[0].match and banners[0].match.snapshot_jpeg is None


def test_cooldown_expires(cloud_env: dict[str, str], case: dict[str, Any],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERT_COOLDOWN_S", "60")
    now = [1_800_000_000.0]
    deps = amber_alert.amber_from_env()
    # the window is compared with the clock, not left to TTL deletion: move the clock
    clocked = Cooldowns(deps.cooldowns.table, clock=lambda: now[0])
    deps = replace(deps, cooldowns=clocked)
    assert amber_alert.amber_alert(sighting(), deps)["status"] == "alerted"
    now[0] += 59
    assert amber_alert.amber_alert(sighting(), deps)["status"] == "cooldown"
    now[0] += 2
    assert amber_alert.amber_alert(sighting(), deps)["status"] == "alerted"


def test_snapshot_is_stored_and_linked(cloud_env: dict[str, str], case: dict[str, Any]) -> None:
    event = sighting()
    out = amber_alert.amber_alert(event, amber_alert.amber_from_env())
    url = out["snapshot_url"]
    assert url and f"snapshots/{event['event_id']}.jpg" in url and "Expires=" in url
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read() == JPEG


def test_banner_links_the_cases_accepted_photo(cloud_env: dict[str, str],
                                               case: dict[str, Any]) -> None:
    key = "uploads/missing/MP-2026-0042/ref.jpg"
    store.Bucket(cloud_env["ONEEYE_BUCKET"]).put(key, JPEG, content_type="image/jpeg")
    store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {"photo_key": key})
    deskq = observe(cloud_env["DESK_TOPIC_ARN"])
    amber_alert.amber_alert(sighting(), amber_alert.amber_from_env())
    banner = DeskEvent.model_validate(deskq.messages()[0])
    url = (banner.case or {}).get("photo_url")
    assert url and key in url and "Expires=" in url
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.read() == JPEG


def test_bad_snapshot_still_alerts_without_link(cloud_env: dict[str, str],
                                                case: dict[str, Any]) -> None:
    alerts = observe(cloud_env["ALERTS_TOPIC_ARN"])
    out = amber_alert.amber_alert(sighting(snapshot_jpeg="!!notbase64"),
                                  amber_alert.amber_from_env())
    assert out["status"] == "alerted" and out["snapshot_url"] is None
    assert "No snapshot" in alerts.drain(wait_s=2)[0]["Message"]


def test_structured_message_and_sms_is_one_segment(case: dict[str, Any]) -> None:
    long = "Maria-Fernanda Gutiérrez de la Concepción y Villaseñor-Montenegro " * 3
    ev = MatchEvent.model_validate(sighting(site_id="site-" + "x" * 40,
                                            camera_id="camera-" + "y" * 40))
    texts = amber_alert.alert_texts(ev, {**case, "name": long}, "https://example.invalid/s.jpg")
    sms = texts["structure"]["sms"]
    assert segments(sms).count == 1 and sms.startswith("ALERT MP-2026-0042: ")
    assert set(texts["structure"]) == {"default", "email", "sms"}
    assert "https://example.invalid/s.jpg" in texts["structure"]["email"]
    assert texts["subject"].isascii() and len(texts["subject"]) < 100
    normal = amber_alert.alert_texts(MatchEvent.model_validate(sighting()), case, None)
    sms = normal["structure"]["sms"]
    assert segments(sms).count == 1
    assert "Jane Doe" in sms and "mall-3/entrance-north" in sms


def test_published_message_structure_is_json_with_sms(cloud_env: dict[str, str],
                                                      case: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = store.publish

    def spy(topic: str, message: str, **kw: Any) -> str:
        seen.append({"topic": topic, "message": message, **kw})
        return real(topic, message, **kw)

    monkeypatch.setattr(store, "publish", spy)
    amber_alert.amber_alert(sighting(), amber_alert.amber_from_env())
    alert = next(s for s in seen if s["topic"] == cloud_env["ALERTS_TOPIC_ARN"])
    assert alert["structured"] is True
    body = json.loads(alert["message"])
    assert segments(body["sms"]).count == 1 and body["default"] == body["email"]


@pytest.mark.parametrize("status", ["closed", None])
def test_closed_or_unknown_case_sends_nothing(cloud_env: dict[str, str], status: str | None,
                                              caplog: pytest.LogCaptureFixture) -> None:
    if status:
        store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {"name": "J",
                                                                      "status": status})
    alerts, deskq = observe(cloud_env["ALERTS_TOPIC_ARN"]), observe(cloud_env["DESK_TOPIC_ARN"])
    out = amber_alert.amber_alert(sighting(), amber_alert.amber_from_env())
    assert out["status"] == "no_alert"
    assert out["reason"] == ("case is closed" if status else "unknown case")
    assert "no alert for MP-2026-0042" in caplog.text
    assert alerts.drain() == [] and deskq.drain() == []


def test_duplicate_and_malformed(cloud_env: dict[str, str], case: dict[str, Any]) -> None:
    deps = amber_alert.amber_from_env()
    ev = sighting()
    assert amber_alert.amber_alert(ev, deps)["status"] == "alerted"
    assert amber_alert.amber_alert(ev, deps)["status"] == "duplicate"
    assert amber_alert.amber_alert(sighting(watchlist="customers"), deps)["status"] == "rejected"
    assert amber_alert.amber_alert({"schema": "oneeye.match/9"}, deps)["status"] == "rejected"
    assert amber_alert.amber_alert(b"\x00\xff", deps)["status"] == "rejected"
