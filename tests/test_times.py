"""Times with offsets other than Z, at each entry point, come out as the same UTC instant.

One sighting at 10:07:59.123456789 in India (+05:30) is 04:37:59.123Z: the desk stores it
so, history search finds it by any offset, and the email and SMS print the same minute.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from oneeye.cloud.dal import store
from oneeye.cloud.functions import amber_alert
from oneeye.events import DeskEvent, MatchEvent
from tests.cloud_support import CustomerApiStub, health, load_handler, match, observe, sighting
from tests.dashboard_helpers import Signer, desk_event, login, post_sns

LOCAL = "2026-03-01T10:07:59.123456789+05:30"
UTC = "2026-03-01T04:37:59.123Z"


@pytest.fixture
def desk(app: Flask, signer: Signer) -> Flask:
    """The conftest dashboard (alice at branch-1) holding one sighting sent at +05:30."""
    body = json.loads(desk_event().to_json())
    body["observed_at"] = LOCAL  # a producer with another zone and nanoseconds
    assert post_sns(app.test_client(), signer.notification(json.dumps(body))).status_code < 300
    return app


def _found(app: Flask, query: str) -> int:
    client = app.test_client()
    login(client, "alice")
    resp = client.get(f"/api/events?{query}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return len(resp.get_json()["events"])


def test_desk_stores_an_offset_time_as_utc(desk: Flask) -> None:
    client = desk.test_client()
    login(client, "alice")
    (row,) = client.get("/api/events").get_json()["events"]
    assert row["observed_at"] == UTC and row["event"]["observed_at"] == UTC


@pytest.mark.parametrize(("since", "until", "found"), [
    ("2026-03-01T04:37:59Z", "2026-03-01T04:38:00Z", 1),
    ("2026-03-01T10:07:59.1+05:30", "2026-03-01T10:08:00+05:30", 1),   # 1 fractional digit
    ("2026-02-28T20:37:59.123-08:00", "2026-02-28T20:37:59.123-08:00", 1),
    ("2026-03-01T04:37:59.123000000+0000", "2026-03-01T04:37:59.123000000+0000", 1),
    ("2026-03-01T10:07:59.124+05:30", "2026-03-01T11:00:00+05:30", 0),  # 1 ms later
    ("2026-02-28T20:00:00-08:00", "2026-02-28T20:37:59.12-08:00", 0),   # 3 ms earlier
    ("2026-03-01T04:37", "2026-03-01T04:38:00", 1),                    # datetime-local = UTC
])
def test_history_search_compares_instants_whatever_the_offset(
        desk: Flask, since: str, until: str, found: int) -> None:
    assert _found(desk, f"since={quote(since)}&until={quote(until)}") == found


def test_a_zoneless_browser_time_is_in_the_viewers_zone(desk: Flask) -> None:
    window = "since=2026-03-01T10:07&until=2026-03-01T10:08:00"
    assert _found(desk, window + "&tz=Asia/Kolkata") == 1  # 10:07 in India = 04:37Z
    assert _found(desk, window) == 0                         # no zone known: UTC


def test_an_unencoded_plus_in_the_query_still_means_an_offset(desk: Flask) -> None:
    # "+05:30" typed into a URL arrives as " 05:30"
    assert _found(desk, "since=2026-03-01T10:07:59+05:30&until=2026-03-01T10:08:00+05:30") == 1


@pytest.mark.parametrize("bad", ["yesterday", "2026-03-01", "2026-03-01T10:07:59+5",
                                 "2026-13-01T00:00:00Z", "2026-03-01T10:07:59.1234567890Z"])
def test_history_search_refuses_times_it_cannot_place(desk: Flask, bad: str) -> None:
    client = desk.test_client()
    login(client, "alice")
    resp = client.get(f"/api/events?since={quote(bad)}")
    assert resp.status_code == 400
    assert client.get(f"/history?since={quote('2026-03-01T10:07:59+05:30')}").status_code == 200


@pytest.mark.usefixtures("mall_devices")
def test_email_sms_and_desk_banner_agree_on_the_utc_time(cloud_env: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A fixed instant months ago: the device clock check (tests/test_device_clocks.py) would
    # show the receipt time instead, so this test trusts every clock.
    monkeypatch.setenv("ONEEYE_CLOCK_TOLERANCE_S", "1e10")
    store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {
        "name": "Jane Doe", "agency": "Met Police", "status": "open"})
    alerts, deskq = observe(cloud_env["ALERTS_TOPIC_ARN"]), observe(cloud_env["DESK_TOPIC_ARN"])
    out = amber_alert.amber_alert(sighting(observed_at=LOCAL), amber_alert.amber_from_env())
    assert out["status"] == "alerted"
    (sent,) = alerts.drain(wait_s=2)
    assert "Time:    2026-03-01 04:37 UTC" in sent["Message"]
    texts: dict[str, Any] = amber_alert.alert_texts(
        MatchEvent.model_validate(sighting(observed_at=LOCAL)), {"name": "J"}, None)
    assert "04:37Z" in texts["sms"]
    (banner,) = [DeskEvent.model_validate(m) for m in deskq.messages()]
    assert banner.observed_at == UTC and banner.match and banner.match.observed_at == UTC


def test_log_lines_print_utc() -> None:
    import logging

    from oneeye.logs import JsonFormatter

    record = logging.LogRecord("oneeye", logging.INFO, __file__, 1, "hello", None, None)
    record.created = 1772339879.123  # 2026-03-01T04:37:59.123Z
    assert json.loads(JsonFormatter().format(record))["ts"] == UTC


@pytest.mark.parametrize(("handler", "body"), [
    ("enrich_match", lambda: match(observed_at="2026-02-28T20:37:59.123-08:00")),
    ("device_health", lambda: health(sent_at="2026-03-01T04:37:59.1230+0000")),
])
@pytest.mark.usefixtures("desk_device")
def test_cloud_handlers_turn_offset_times_into_utc_desk_events(
        cloud_env: dict[str, str], customer_api: CustomerApiStub, handler: str,
        body: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEEYE_CLOCK_TOLERANCE_S", "1e10")   # fixed instants: see above
    customer_api.customers["C-1042"] = {"id": "C-1042", "name": "Ada Lovelace"}
    deskq = observe(cloud_env["DESK_TOPIC_ARN"])
    assert load_handler(handler)(body(), None)["status"] == "published"
    (card,) = [DeskEvent.model_validate(m) for m in deskq.messages()]
    assert card.observed_at == UTC
