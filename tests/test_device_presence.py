"""Device health is cloud state: lifecycle events and the sweep decide online/offline, and
only transitions reach SNS and the desk (issue 19 §6).

The functions run in-process against the moto server, the way the Lambdas run them; the
desk and branch IT topics are observed through subscribed SQS queues (what SNS really
delivered), and the sweep's clock is moved by the test, never slept on.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from oneeye.cloud.dal.device_state import DeviceStates
from oneeye.cloud.functions import device_health, device_presence
from oneeye.cloud.transitions import DeviceStateDeps
from oneeye.events import DeskEvent
from oneeye.local.broker import EmbeddedBroker
from oneeye.local.rules import compile_rules
from oneeye.local.template import load
from tests.cloud_support import SnsObserver, health, observe
from tests.net_support import free_port
from tests.paths import REPO
from tests.wait import ManualClock, wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("desk_device")]
THING = "cam-dev-1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def deps(cloud_env: dict[str, str], clock: ManualClock) -> DeviceStateDeps:
    built = device_presence.presence_from_env()
    return dataclasses.replace(built, devices=DeviceStates(cloud_env["IDEMPOTENCY_TABLE"],
                                                           clock=clock))


def topics(cloud_env: dict[str, str]) -> tuple[SnsObserver, SnsObserver]:
    return observe(cloud_env["DESK_TOPIC_ARN"]), observe(cloud_env["IT_ALERT_TOPIC_ARN"])


def kinds(obs: SnsObserver) -> list[str]:
    return [DeskEvent.model_validate_json(e["Message"]).kind for e in obs.drain()]


def lifecycle(event_type: str, stamp_ms: int, thing: str = THING,
              **extra: Any) -> dict[str, Any]:
    """A lifecycle event as the DevicePresenceRule hands it over (topic(5) AS iot_thing)."""
    body = {"clientId": thing, "timestamp": stamp_ms, "eventType": event_type,
            "sessionIdentifier": "s-1", "principalIdentifier": "p-1", "versionNumber": 0,
            "iot_thing": thing}
    if event_type == "disconnected":
        body |= {"clientInitiatedDisconnect": False, "disconnectReason": "CONNECTION_LOST"}
    return body | extra


def test_a_device_that_stops_sending_goes_offline_once_and_heartbeats_send_nothing(
        cloud_env: dict[str, str], deps: DeviceStateDeps, clock: ManualClock) -> None:
    desk, it = topics(cloud_env)
    for _ in range(10):                                     # 5 minutes of 30 s heartbeats
        assert device_health.device_health(health(), deps)["status"] in ("published",
                                                                        "recorded")
        clock.advance(30)
    assert kinds(desk) == ["device_status"]     # one status per 300 s, none per heartbeat
    assert it.drain() == []
    assert device_presence.sweep(deps)["offline"] == []     # last report 30 s ago
    clock.advance(61)                                        # silent for 91 s > 90 s
    assert device_presence.sweep(deps)["offline"] == [THING]
    assert device_presence.sweep(deps)["offline"] == []      # the next sweep: already offline
    clock.advance(600)
    assert device_presence.sweep(deps)["offline"] == []
    wait_until(lambda: len(desk.drain()) == 2 and len(it.drain()) == 1, 10,
               "the offline transition on both topics")
    assert kinds(desk) == ["device_status", "device_offline"]
    offline = DeskEvent.model_validate_json(desk.drain()[1]["Message"])
    assert offline.device_id == THING and offline.site_id == "branch-12"
    assert offline.message == "no health report for over 90 s"
    [email] = it.drain()
    assert email["Subject"] == f"OneEye: camera {THING} OFFLINE"
    assert email["MessageAttributes"]["site_id"]["Value"] == "branch-12"
    # it reports again: one device_online, one email, and the report's figures (cadence due)
    out = device_health.device_health(health(), deps)
    assert out["transition"]["status"] == "device_online"
    device_health.device_health(health(), deps)              # the next heartbeat: nothing
    wait_until(lambda: len(it.drain()) == 2, 10, "the back-online email")
    assert kinds(desk) == ["device_status", "device_offline", "device_online", "device_status"]
    assert it.drain()[1]["Subject"] == f"OneEye: camera {THING} back online"
    record = deps.devices.get(THING)
    assert record is not None and record.state == "online" and record.fps == 14.2


def test_disconnect_marks_offline_and_connect_marks_online_once_each(
        cloud_env: dict[str, str], deps: DeviceStateDeps) -> None:
    desk, it = topics(cloud_env)
    assert device_presence.device_presence(lifecycle("connected", 1000), deps)["status"] \
        == "unchanged"                                      # a first connection: no event
    out = device_presence.device_presence(lifecycle("disconnected", 2000), deps)
    assert out["status"] == "device_offline"
    assert device_presence.device_presence(lifecycle("disconnected", 2000), deps)["status"] \
        == "unchanged"                                      # AWS may deliver it twice
    assert device_presence.device_presence(lifecycle("connected", 3000), deps)["status"] \
        == "device_online"
    wait_until(lambda: len(it.drain()) == 2, 10, "two emails")
    assert kinds(desk) == ["device_offline", "device_online"]
    first = DeskEvent.model_validate_json(desk.drain()[0]["Message"])
    assert first.message == "disconnected from the cloud (CONNECTION_LOST)"


def test_an_older_lifecycle_event_arriving_late_changes_nothing(
        cloud_env: dict[str, str], deps: DeviceStateDeps) -> None:
    desk, _ = topics(cloud_env)
    device_presence.device_presence(lifecycle("connected", 1000), deps)
    device_presence.device_presence(lifecycle("disconnected", 5000), deps)
    # the connect of the session that just ended, delivered after its disconnect
    assert device_presence.device_presence(lifecycle("connected", 4000), deps)["status"] \
        == "unchanged"
    record = deps.devices.get(THING)
    assert record is not None and record.state == "offline"
    assert kinds(desk) == ["device_offline"]


@pytest.mark.parametrize(("event", "status"), [
    (lifecycle("connected", 1, thing="oneeye-router-1"), "ignored"),   # no registered thing
    (lifecycle("connected", 1, clientId="cam-other"), "rejected"),    # body ≠ topic
    (lifecycle("subscribed", 1), "rejected"),
    (lifecycle("connected", "yesterday"), "rejected"),
    (["not", "an", "object"], "rejected"),
])
def test_lifecycle_events_of_strangers_or_bad_shape_change_nothing(
        cloud_env: dict[str, str], deps: DeviceStateDeps, event: Any, status: str) -> None:
    desk, _ = topics(cloud_env)
    assert device_presence.device_presence(event, deps)["status"] == status
    assert deps.devices.get(THING) is None and desk.drain() == []


def test_a_failed_announcement_puts_the_state_back_so_the_retry_announces_it(
        cloud_env: dict[str, str], deps: DeviceStateDeps) -> None:
    desk, _ = topics(cloud_env)
    device_presence.device_presence(lifecycle("connected", 1000), deps)
    broken = dataclasses.replace(deps, desk_topic_arn="arn:aws:sns:us-east-1:123456789012:gone")
    with pytest.raises(Exception, match=r"(?i)not ?found|does not exist"):
        device_presence.device_presence(lifecycle("disconnected", 2000), broken)
    record = deps.devices.get(THING)
    assert record is not None and record.state == "online"          # put back
    assert device_presence.device_presence(lifecycle("disconnected", 2000), deps)["status"] \
        == "device_offline"                                          # the platform's retry
    assert kinds(desk) == ["device_offline"]


def test_the_local_broker_s_lifecycle_events_reach_device_presence_through_the_rules(
        cloud_env: dict[str, str], deps: DeviceStateDeps) -> None:
    """The embedded broker publishes $aws/events/presence/… like IoT Core, and the
    template's DevicePresenceRule (as the local rules router compiles it) hands them to
    device_presence: a device that drops its connection is offline, without a sweep."""
    [rule] = [r for r in compile_rules(load(REPO / "cloud" / "template.yaml").rules)
              if r.rule.function_id == "DevicePresenceFunction"]
    desk, _ = topics(cloud_env)
    results: list[dict[str, Any]] = []
    port = free_port()
    with EmbeddedBroker(port):
        router = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rules-router")

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            out = rule.query.apply(msg.topic, json.loads(msg.payload))
            if out is not None:
                results.append(device_presence.device_presence(out, deps))

        router.on_message = on_message
        subscribed = [False]
        router.on_subscribe = lambda *a: subscribed.__setitem__(0, True)
        router.connect("127.0.0.1", port)
        router.loop_start()
        router.subscribe(rule.query.topic_filter, qos=1)
        wait_until(lambda: subscribed[0], 10, "the router's subscription")
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=THING)
        device.connect("127.0.0.1", port)
        device.loop_start()
        wait_until(lambda: any(r.get("device_id") == THING for r in results), 10,
                   "the connected event handled")
        device.loop_stop()
        device.socket().close()                              # the connection is lost
        wait_until(lambda: any(r["status"] == "device_offline" for r in results), 15,
                   "the disconnected event handled")
        # the device comes back, then shuts down cleanly (MQTT DISCONNECT): a stop, told
        # apart from a lost connection as AWS IoT does (clientInitiatedDisconnect)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=THING)
        device.connect("127.0.0.1", port)
        device.loop_start()
        wait_until(lambda: any(r["status"] == "device_online" for r in results), 10,
                   "the second connected event handled")
        device.disconnect()
        device.loop_stop()
        wait_until(lambda: [r["status"] for r in results].count("device_offline") == 2, 15,
                   "the clean disconnect handled")
        router.loop_stop()
        router.disconnect()
    messages = [DeskEvent.model_validate_json(e["Message"]) for e in desk.drain()]
    assert [(m.kind, m.message) for m in messages] == [
        ("device_offline", "disconnected from the cloud (CONNECTION_LOST)"),
        ("device_online", "connected again"),
        ("device_offline", "stopped: it closed its connection (CLIENT_INITIATED_DISCONNECT)")]
    record = deps.devices.get(THING)
    assert record is not None and record.state == "offline"
