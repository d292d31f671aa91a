"""A device speaks only for itself: the topic's thing name and the registry decide its site.

Against a moto server (IoT thing attributes, SNS, DynamoDB) and through the local rules
router running the template's own SQL, so the rule that adds ``topic(3) AS iot_thing``
is the one AWS runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from oneeye.cloud import devices
from oneeye.cloud.dal import store
from oneeye.cloud.functions import amber_alert, device_health, enrich_match
from oneeye.events import DeskEvent, utc_now
from oneeye.ids import new_id
from oneeye.local import template as tpl
from oneeye.local.lambdas import Lambdas
from oneeye.local.rules import RulesRouter, compile_rules
from tests.cloud_support import CustomerApiStub, observe
from tests.paths import REPO
from tests.wait import wait_until

pytestmark = pytest.mark.timeout(90)


def match(**over: Any) -> dict[str, Any]:
    base = {"schema": "oneeye.match/1", "event_id": new_id(), "device_id": "rogue-cam",
            "site_id": "site-1", "camera_id": "door", "observed_at": utc_now(),
            "person_id": "C-1042", "watchlist": "customers", "distance": 0.31, "margin": 0.12,
            "bbox": [10, 110, 110, 10], "track_id": 3, "frames_seen": 4, "gallery_version": 7}
    base.update(over)
    return base


def health(**over: Any) -> dict[str, Any]:
    base = {"schema": "oneeye.health/1", "event_id": new_id(), "device_id": "rogue-cam",
            "site_id": "site-1", "camera_id": "door", "sent_at": utc_now(), "uptime_s": 1.0,
            "fps": 10.0, "camera_state": "ok"}
    base.update(over)
    return base


@pytest.fixture(autouse=True)
def rogue_and_site2_devices(moto_server: str) -> None:
    devices.register("rogue-cam", "site-1", ["door"])
    devices.register("edge-site2-cam", "site-2", ["lobby"])


@pytest.mark.parametrize(("over", "reason"), [
    ({"device_id": "edge-site2-cam", "site_id": "site-2", "camera_id": "lobby"},
     "is not the publishing thing 'rogue-cam'"),
    ({"site_id": "site-2"}, "is not thing 'rogue-cam''s registered site 'site-1'"),
    ({"camera_id": "vault"}, "is not one of thing 'rogue-cam''s registered cameras"),
    ({"iot_thing": "unknown-cam", "device_id": "unknown-cam"}, "not in the device registry"),
    ({"iot_thing": None}, "must arrive through the IoT rules"),
    ({"iot_thing": "a/b"}, "no valid thing name"),
])
def test_forged_or_unregistered_sender_is_rejected_by_every_handler(
        cloud_env: dict[str, str], customer_api: CustomerApiStub,
        caplog: pytest.LogCaptureFixture, over: dict[str, Any], reason: str) -> None:
    desk_obs, alerts_obs = observe(cloud_env["DESK_TOPIC_ARN"]), \
        observe(cloud_env["ALERTS_TOPIC_ARN"])
    store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0001", {"name": "J", "status": "open"})
    over = {"iot_thing": "rogue-cam", **over}
    with caplog.at_level(logging.WARNING, logger="oneeye.cloud"):
        outs = [
            enrich_match.enrich_match(match(**over), enrich_match.enrich_from_env()),
            amber_alert.amber_alert(match(**over, watchlist="missing", person_id="MP-2026-0001"),
                              amber_alert.amber_from_env()),
            device_health.device_health(health(**over), device_health.health_from_env()),
        ]
    for out in outs:
        assert out["status"] == "rejected" and reason in out["reason"], out
    assert sum("forged or misrouted sender" in r.getMessage() for r in caplog.records) == 3
    assert desk_obs.drain() == [] and alerts_obs.drain() == []
    assert customer_api.requests == []


def test_registry_answers_are_cached_for_the_ttl() -> None:
    calls: list[str] = []
    now = [100.0]

    def describe(thing: str) -> dict[str, Any] | None:
        calls.append(thing)
        return {"site_id": "site-1", "cameras": "door, till"}

    reg = devices.Registry(ttl_s=60, describe=describe, clock=lambda: now[0])
    first = reg.lookup("cam-a")
    assert first == devices.Device("cam-a", "site-1", frozenset({"door", "till"}))
    now[0] += 59
    assert reg.lookup("cam-a") == first and calls == ["cam-a"]
    now[0] += 2
    reg.lookup("cam-a")
    assert calls == ["cam-a", "cam-a"]


def test_template_rules_pass_the_thing_and_reject_forged_match_and_health(
        cloud_env: dict[str, str], customer_api: CustomerApiStub, tmp_path: Path) -> None:
    """The attack of issue 13: a camera on its own topic claiming another device and site."""
    customer_api.customers["C-1042"] = {"id": "C-1042", "name": "Ada"}
    store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0003", {"name": "J", "status": "open"})
    template = tpl.load(REPO / "cloud" / "template.yaml")
    for rule in template.rules:   # the thing name comes from the topic, never the body
        at = "topic(5)" if "$aws/events/presence" in rule.sql else "topic(3)"
        assert f"{at} AS iot_thing" in rule.sql, rule.sql
    desk_obs, alerts_obs = observe(cloud_env["DESK_TOPIC_ARN"]), \
        observe(cloud_env["ALERTS_TOPIC_ARN"])
    # One worker: events are handled in the order they were routed.
    router = RulesRouter(compile_rules(template.rules), Lambdas(template.functions),
                         dead_letters=tmp_path / "dl.jsonl", workers=1)
    forged = [
        ("matches", match(device_id="edge-site2-cam", site_id="site-2", camera_id="lobby",
                          iot_thing="edge-site2-cam")),   # the payload cannot pick the thing
        ("matches", match(site_id="site-3", watchlist="missing", person_id="MP-2026-0003")),
        ("health", health(device_id="edge-site2-cam", site_id="site-2", camera_id="lobby",
                          camera_state="failed")),
    ]
    genuine = health()
    try:
        for kind, event in forged:
            assert router.route(f"oneeye/devices/rogue-cam/{kind}",
                                json.dumps(event).encode()) == 1
        router.route("oneeye/devices/rogue-cam/health", json.dumps(genuine).encode())
        cards = wait_until(lambda: [DeskEvent.model_validate_json(e["Message"])
                                    for e in desk_obs.drain()], 30, "the genuine health card")
    finally:
        router.close()
    assert [(c.event_id, c.device_id, c.site_id) for c in cards] == \
        [(genuine["event_id"], "rogue-cam", "site-1")]
    assert alerts_obs.drain() == [] and not (tmp_path / "dl.jsonl").exists()
