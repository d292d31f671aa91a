"""enrich_match and device_health against a moto server and a real HTTP customer API."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from oneeye.cloud.customers import CustomerApi
from oneeye.cloud.functions import enrich_match
from oneeye.errors import CustomerApiUnavailable, CustomerNotFound
from oneeye.events import DeskEvent
from tests.cloud_support import CustomerApiStub, health, load_handler, match, observe

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("desk_device")]


def test_same_event_twice_publishes_one_desk_message(cloud_env: dict[str, str],
                                                     customer_api: CustomerApiStub) -> None:
    customer_api.customers["C-1042"] = {"id": "C-1042", "name": "Ada Lovelace",
                                        "segment": "private", "photo_url": "/p/C-1042.jpg"}
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    run = load_handler("enrich_match")
    event = match()
    first = run(event, None)
    second = run(json.loads(json.dumps(event)), None)
    assert first["status"] == "published" and first["degraded"] is False
    assert second["status"] == "duplicate"
    envelopes = obs.drain(wait_s=2)
    assert len(envelopes) == 1
    assert envelopes[0]["MessageAttributes"]["site_id"]["Value"] == "branch-12"
    card = DeskEvent.model_validate_json(envelopes[0]["Message"])
    assert card.kind == "customer_arrived" and card.event_id == event["event_id"]
    assert card.customer and card.customer["name"] == "Ada Lovelace"
    assert card.match and card.match.person_id == "C-1042"
    assert customer_api.requests == [("/customers/C-1042", customer_api.api_key)]


def test_customer_api_down_gives_degraded_event_after_retries(
        cloud_env: dict[str, str], customer_api: CustomerApiStub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    customer_api.mode = "down"
    monkeypatch.setenv("CUSTOMER_API_ATTEMPTS", "3")
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    out = enrich_match.enrich_match(match(), enrich_match.enrich_from_env())
    assert out["status"] == "published" and out["degraded"] is True
    assert len(customer_api.requests) == 3  # retried with backoff, then gave up
    card = DeskEvent.model_validate(obs.messages()[0])
    assert card.degraded and card.customer is None
    assert card.message == "customer C-1042 arrived, details unavailable"


def test_customer_api_unreachable_gives_degraded_event(cloud_env: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.net_support import free_port

    monkeypatch.setenv("CUSTOMER_API_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("CUSTOMER_API_ATTEMPTS", "2")
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    assert enrich_match.enrich_match(match(), enrich_match.enrich_from_env())["degraded"] is True
    assert "details unavailable" in obs.messages()[0]["message"]


def test_customer_api_404_is_reported_not_retried(cloud_env: dict[str, str],
                                                   customer_api: CustomerApiStub) -> None:
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    out = enrich_match.enrich_match(match(person_id="C-9999"), enrich_match.enrich_from_env())
    assert out["degraded"] is True
    assert len(customer_api.requests) == 1
    assert "not found" in obs.messages()[0]["message"]


def test_customer_api_client_errors(customer_api: CustomerApiStub) -> None:
    customer_api.customers["C-1"] = {"name": "X"}
    api = CustomerApi(customer_api.url, api_key=customer_api.api_key, backoff_s=0.01)
    assert api.get("C-1") == {"name": "X"}
    with pytest.raises(CustomerNotFound):
        api.get("C-2")
    wrong_key = CustomerApi(customer_api.url, api_key="wrong", backoff_s=0.01)
    with pytest.raises(CustomerApiUnavailable, match="HTTP 401"):
        wrong_key.get("C-1")
    assert len(customer_api.requests) == 3  # a 401 is not retried


@pytest.mark.parametrize("bad, reason", [
    ("not json{", "not JSON"),
    ([1, 2], "not a JSON object"),
    ({"schema": "oneeye.match/2", "event_id": "0190aaaa-0000-7000-8000-000000000000"},
     "unknown schema"),
    ({"schema": "oneeye.health/1"}, "expected schema"),
    ("MISSING_FIELDS", "invalid oneeye.match/1"),
    ("WRONG_WATCHLIST", "is not 'customers'"),
])
def test_malformed_or_unknown_events_are_logged_and_rejected(
        cloud_env: dict[str, str], customer_api: CustomerApiStub,
        caplog: pytest.LogCaptureFixture, bad: Any, reason: str) -> None:
    if bad == "MISSING_FIELDS":
        bad = {k: v for k, v in match().items() if k != "site_id"}
    elif bad == "WRONG_WATCHLIST":
        bad = match(watchlist="missing")
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    with caplog.at_level(logging.WARNING, logger="oneeye.cloud"):
        out = load_handler("enrich_match")(bad, None)
    assert out["status"] == "rejected" and reason in out["reason"]
    assert any("rejected" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert obs.drain() == []
    assert customer_api.requests == []


def test_failed_publish_releases_claim_so_retry_delivers(
        cloud_env: dict[str, str], customer_api: CustomerApiStub) -> None:
    customer_api.customers["C-1042"] = {"name": "Ada"}
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    deps = enrich_match.enrich_from_env()
    event = match()
    broken = enrich_match.EnrichDeps(idempotency=deps.idempotency,
                           desk_topic_arn=cloud_env["DESK_TOPIC_ARN"] + "-gone")
    with pytest.raises(Exception, match=r"(?i)not.?found|does not exist"):
        enrich_match.enrich_match(event, broken)
    assert enrich_match.enrich_match(event, deps)["status"] == "published"
    assert len(obs.drain(wait_s=2)) == 1


def test_device_health_becomes_device_status(cloud_env: dict[str, str]) -> None:
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    run = load_handler("device_health")
    event = health(camera_state="reconnecting", fps=0.0)
    assert run(event, None)["status"] == "published"
    # the same report again only refreshes the cloud's device state: no second desk event
    # (device_status goes out at most once per DEVICE_STATUS_EVERY_S)
    assert run(event, None)["status"] == "recorded"
    assert run({"schema": "oneeye.health/1", "device_id": "x"}, None)["status"] == "rejected"
    envelopes = obs.drain(wait_s=2)
    assert len(envelopes) == 1
    card = DeskEvent.model_validate_json(envelopes[0]["Message"])
    assert card.kind == "device_status" and card.health is not None
    assert card.health.camera_state == "reconnecting" and card.device_id == "cam-dev-1"
    assert envelopes[0]["MessageAttributes"]["site_id"]["Value"] == "branch-12"


def test_oversized_customer_record_still_makes_a_card(cloud_env: dict[str, str],
                                                      customer_api: CustomerApiStub) -> None:
    customer_api.customers["C-1042"] = {"name": "N" * 2000, "notes": "x" * 300_000,
                                        "segment": "gold"}
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    out = enrich_match.enrich_match(match(), enrich_match.enrich_from_env())
    assert out["status"] == "published"
    card = DeskEvent.model_validate(obs.messages()[0])
    assert card.message == "N" * 199 + "… arrived" and card.customer is not None
    assert card.customer == {"id": "C-1042", "name": "N" * 199 + "…", "segment": "gold",
                             "notes": "x" * 999 + "…"}


@pytest.mark.parametrize(("record", "card"), [
    ({"name": {"first": "Ada"}, "segment": 5, "notes": ["vip"], "since": True,
      "photo_url": "javascript:alert(1)", "id": "C-9", "evil": "<script>x</script>"},
     {"id": "C-1042", "segment": "5", "since": "true"}),
    ({"name": "Ada", "photo_url": "https://bank.example/p/1.jpg\" onerror=\"x"},
     {"id": "C-1042", "name": "Ada"}),
    ({"name": None, "photo_url": "https://bank.example/p/1.jpg", "notes": 1.5},
     {"id": "C-1042", "photo_url": "https://bank.example/p/1.jpg", "notes": "1.5"}),
])
def test_customer_record_reaches_the_desk_only_in_the_typed_shape(
        cloud_env: dict[str, str], customer_api: CustomerApiStub, record: dict[str, Any],
        card: dict[str, Any]) -> None:
    """Issue 13: one odd record must not reach (and break) every teller's desk script."""
    customer_api.customers["C-1042"] = record
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    assert enrich_match.enrich_match(match(), enrich_match.enrich_from_env())["degraded"] is False
    assert DeskEvent.model_validate(obs.messages()[0]).customer == card


def test_idempotency_lease_lets_a_retry_take_over_after_a_crash(cloud_env: dict[str, str]) -> None:
    from oneeye.cloud.dal.state import Idempotency

    idem = Idempotency(cloud_env["IDEMPOTENCY_TABLE"])
    t0 = 1_900_000_000.0
    assert idem.claim("E-1", lease_s=60, now=t0)            # worker A starts, then dies
    assert not idem.claim("E-1", lease_s=60, now=t0 + 30)   # a duplicate during the lease waits
    assert idem.claim("E-1", lease_s=60, now=t0 + 61)       # the retry after the lease works
    idem.complete("E-1", retention_s=3600, now=t0 + 62)
    assert not idem.claim("E-1", now=t0 + 3000)             # done: redeliveries are no-ops
    assert idem.claim("E-1", now=t0 + 3700)                 # forgotten after retention


def test_a_delivery_during_another_claim_is_retried_not_dropped(
        cloud_env: dict[str, str]) -> None:
    """An invocation that died holding the claim must not turn the event into a duplicate."""
    from oneeye.cloud.common import run_once
    from oneeye.cloud.dal.state import Idempotency
    from oneeye.errors import InProgress

    idem = Idempotency(cloud_env["IDEMPOTENCY_TABLE"])
    assert idem.claim("E-2", kind="enrich_match")  # the first invocation, killed mid-way
    with pytest.raises(InProgress):
        run_once(idem, "E-2", lambda: {"status": "published"}, handler="enrich_match")
    idem.release("E-2")  # (its lease passing has the same effect)
    assert run_once(idem, "E-2", lambda: {"status": "published"},
                    handler="enrich_match") == {"status": "published"}
    assert run_once(idem, "E-2", lambda: {"status": "published"},
                    handler="enrich_match")["status"] == "duplicate"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, logging.ERROR),                                            # not in Lambda: untouched
    ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, logging.INFO),
    ({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}, logging.DEBUG),
])
def test_lambda_logging_level_only_changes_inside_lambda(
        env: dict[str, str], expected: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from oneeye.cloud.common import configure_lambda_logging

    for key in ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_LOG_LEVEL", "LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.ERROR)
    try:
        configure_lambda_logging()
        assert root.level == expected
    finally:
        root.setLevel(before)


def test_a_customer_crop_from_an_opted_in_site_is_kept_and_linked_from_the_card(
        cloud_env: dict[str, str], customer_api: CustomerApiStub) -> None:
    import base64

    from oneeye.cloud.dal import store
    from tests.cloud_support import JPEG

    customer_api.customers["C-1042"] = {"name": "Ada Lovelace"}
    obs = observe(cloud_env["DESK_TOPIC_ARN"])
    deps = enrich_match.enrich_from_env()
    crop = match(snapshot_jpeg=base64.b64encode(JPEG).decode())
    enrich_match.enrich_match(crop, deps)
    enrich_match.enrich_match(match(), deps)                       # a site without crops
    with_crop, without = (DeskEvent.model_validate(m) for m in obs.messages())
    assert with_crop.snapshot_url and f"snapshots/{crop['event_id']}.jpg" in \
        with_crop.snapshot_url
    assert with_crop.match and with_crop.match.snapshot_jpeg is None   # never on SNS inline
    stored = store.Bucket(cloud_env["ONEEYE_BUCKET"]).get(f"snapshots/{crop['event_id']}.jpg")
    assert stored is not None and stored.data == JPEG
    assert without.snapshot_url is None
