"""Device clocks are checked, not trusted (issue 24 kind 2; field case ``device-clock-skew``).

A branch device 20 min slow must not put 19:27 in an SMS written at 19:47, nor split one
customer visit into two desk cards. The cloud compares the device's clock with its receive
time; the edge reports what it can tell itself (NTP sync, clock jumps).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboard import alerts
from oneeye.cloud import devices
from oneeye.cloud.dal import store
from oneeye.cloud.functions import amber_alert, device_health, enrich_match
from oneeye.cloud.skew import CLOCK_TOLERANCE_S, trusted_health, trusted_match
from oneeye.edge.clock import ClockWatch
from oneeye.edge.comms.health import Vitals
from oneeye.edge.comms.publishers import NullPublisher
from oneeye.edge.comms.uplink import Uplink, with_sent_at
from oneeye.edge.settings import EdgeSettings
from oneeye.events import CameraHealth, DeskEvent, HealthEvent, MatchEvent, StorageHealth
from oneeye.types import format_time, parse_time
from tests import dashboard_helpers as dh
from tests.cloud_support import health, match, observe, sighting
from tests.dashboard_helpers import Signer
from tests.wait import ManualClock

pytestmark = pytest.mark.timeout(60)


def ago(minutes: float) -> str:
    return format_time(datetime.now(UTC) - timedelta(minutes=minutes))


# --- the cloud's check -----------------------------------------------------------------------

def test_a_clock_within_the_tolerance_is_trusted_as_it_is() -> None:
    m = MatchEvent.model_validate(match(observed_at=ago(1)))
    assert trusted_match(m) is m and CLOCK_TOLERANCE_S == 120


@pytest.mark.parametrize(("offset_min", "note"), [
    (-20, "device clock 20 min slow"),        # RTC drift, NTP blocked by the firewall
    (+180, "device clock 3 h fast"),           # a time far in the future
    (-60 * 24 * 400, "device clock 400 days slow"),  # a board booting at its build date
])
def test_a_skewed_clock_is_replaced_by_the_receipt_time_and_kept(offset_min: float,
                                                                 note: str) -> None:
    received = datetime.now(UTC)
    said = format_time(received + timedelta(minutes=offset_min))
    m = trusted_match(MatchEvent.model_validate(match(observed_at=said)), received)
    assert m.observed_at == format_time(received) and m.device_observed_at == said
    assert m.clock_skew_s == pytest.approx(offset_min * 60, abs=1)
    text = amber_alert.sms_text(m, "Skew Test")
    assert f"{m.observed_at[11:16]}Z ({note})" in text and text.endswith("Details by email.")


def test_a_backlog_from_a_right_clock_keeps_its_real_age() -> None:
    # Sent now (sent_at, the device clock at publish) about a sighting an hour old: a late
    # delivery, not a wrong clock.
    m = MatchEvent.model_validate(match(observed_at=ago(60), sent_at=ago(0)))
    assert trusted_match(m) is m
    # The same backlog from a device 20 min slow: shifted by the clock error only.
    slow = MatchEvent.model_validate(match(observed_at=ago(80), sent_at=ago(20)))
    fixed = trusted_match(slow)
    age = datetime.now(UTC) - parse_time(fixed.observed_at)
    assert timedelta(minutes=59) < age < timedelta(minutes=61)


def test_the_uplink_stamps_its_clock_on_each_send() -> None:
    raw = MatchEvent.model_validate(match()).to_json().encode()
    sent = json.loads(with_sent_at(raw))
    assert abs((parse_time(sent["sent_at"]) - datetime.now(UTC)).total_seconds()) < 5
    assert with_sent_at(b"not json") == b"not json"


@pytest.mark.usefixtures("mall_devices")
def test_missing_person_email_and_banner_use_the_receipt_time_and_say_so(
        cloud_env: dict[str, str]) -> None:
    store.Cases(cloud_env["CASES_TABLE"]).upsert("MP-2026-0042", {"name": "Skew Test",
                                                                   "status": "open"})
    alerts_q, desk_q = observe(cloud_env["ALERTS_TOPIC_ARN"]), observe(cloud_env["DESK_TOPIC_ARN"])
    said = ago(20)
    now_hhmm = format_time(datetime.now(UTC))[11:16]
    assert amber_alert.amber_alert(sighting(observed_at=said),
                                   amber_alert.amber_from_env())["status"] \
        == "alerted"
    [sent] = alerts_q.drain(wait_s=2)
    email = sent["Message"]
    time_line = next(line for line in email.splitlines() if line.startswith("Time:"))
    assert f"{now_hhmm} UTC (time of receipt; device clock 20 min slow: it said " \
           f"{said[11:16]} UTC)" in time_line, time_line
    banner = DeskEvent.model_validate(desk_q.messages()[0])
    assert banner.observed_at[11:16] == now_hhmm
    assert banner.match and banner.match.device_observed_at == said


def test_one_visit_past_a_right_and_a_slow_camera_stays_one_card(
        cloud_env: dict[str, str], moto_server: str) -> None:
    devices.register("field-cam-4", "branch-12", ["door"])
    devices.register("field-cam-5", "branch-12", ["lobby"])
    desk_q = observe(cloud_env["DESK_TOPIC_ARN"])
    deps = enrich_match.enrich_from_env()
    enrich_match.enrich_match(match(device_id="field-cam-4", iot_thing="field-cam-4"), deps)
    enrich_match.enrich_match(match(device_id="field-cam-5", iot_thing="field-cam-5",
                            camera_id="lobby", observed_at=ago(19)), deps)
    cards = [DeskEvent.model_validate(m) for m in desk_q.messages()]
    assert len(cards) == 2
    records: list[dict[str, Any]] = [
        {"observed_at": c.observed_at, "seq": i, "event": c.to_dict(), "event_id": c.event_id,
         "site_id": c.site_id} for i, c in enumerate(cards)]
    visits = alerts.group_visits(records)
    assert len(visits) == 1 and sorted(visits[0]["cameras"]) == ["door", "lobby"]
    lobby = next(c for c in cards if c.match and c.match.camera_id == "lobby")
    assert "(time of receipt: device clock 19 min slow)" in lobby.message


@pytest.mark.usefixtures("desk_device")
def test_a_device_whose_health_is_hours_ahead_is_flagged_skewed(
        cloud_env: dict[str, str]) -> None:
    desk_q = observe(cloud_env["DESK_TOPIC_ARN"])
    ahead = format_time(datetime.now(UTC) + timedelta(hours=3))
    device_health.device_health(health(sent_at=ahead), device_health.health_from_env())
    card = DeskEvent.model_validate(desk_q.messages()[0])
    assert card.health and card.health.clock and card.health.clock.state == "skewed"
    assert card.health.clock.skew_s == pytest.approx(3 * 3600, abs=5)
    assert "device clock 3 h fast" in card.message
    right = HealthEvent.model_validate(health())
    assert trusted_health(right) is right


def test_the_desk_camera_panel_says_which_device_clock_is_off_and_which_store_fails(
        app: Flask, signer: Signer) -> None:
    sick = trusted_health(HealthEvent(
        device_id="edge-7", site_id="branch-1", camera_id="door", uptime_s=5, fps=14.0,
        sent_at=ago(20), storage={"outbox": StorageHealth(state="full", path="/var/o")},
        client_id_conflict="dropped right after connecting 3 times"))
    event = dh.desk_event(kind="device_status", device_id="edge-7", health=sick)
    assert dh.post_sns(app.test_client(), signer.notification(event.to_json())).status_code \
        == 200
    teller = app.test_client()
    assert dh.login(teller, "alice").status_code == 302
    [dev] = teller.get("/api/devices").get_json()["devices"]
    assert dev["notes"] == ["device clock 20 min slow", "outbox storage full",
                            "client id may be shared with another device"]


# --- the edge's own view ---------------------------------------------------------------------

def test_edge_reports_a_wall_clock_jump_once_and_then_its_sync_state() -> None:
    # The wall clock is moved by the test; the monotonic one is real time, which the wall
    # clock follows between moves.
    wall = ManualClock()
    watch = ClockWatch(wall=wall, mono=time.time)
    assert watch.health().state in ("ok", "unsynced", "unknown")   # no jump: NTP's word
    wall.advance(-1200)                                            # NTP steps back 20 min
    jumped = watch.health()
    assert jumped.state == "jumped" and jumped.jumps == 1
    assert jumped.last_jump_s == pytest.approx(-1200, abs=1)
    wall.advance(3 * 3600)                                         # and forward 3 h
    assert watch.health().jumps == 2 and watch.last_jump_s == pytest.approx(10800, abs=1)
    after = watch.health()                                         # no move since: not jumped
    assert after.state != "jumped" and after.jumps == 2


def test_edge_health_carries_its_clock_state(tmp_path: Path) -> None:
    settings = EdgeSettings.model_validate({"outbox": {"path": str(tmp_path / "o.sqlite3")}})
    uplink = Uplink(settings, lambda: Vitals({"cam-1": CameraHealth(state="ok")}),
                    publisher=NullPublisher())
    try:
        clock = uplink.health().clock
    finally:
        uplink.close(timeout=0.1)
    assert clock is not None and clock.state in ("ok", "unsynced", "unknown")
