"""device_health: an edge's ``oneeye.health/1`` in, the device's cloud state updated.

The health report is validated and its sender checked against the thing that published
it (:func:`oneeye.cloud.common.sender_rejection`). Then, per report:

- the device's ``device:{thing}`` item records it (online, last seen now in cloud time,
  fps, camera state; :class:`oneeye.cloud.dal.device_state.DeviceStates`);
- a device that was *offline* is announced back online, once
  (:func:`oneeye.cloud.transitions.announce`: a ``device_online`` desk event
  and one message to branch IT);
- a ``device_status`` desk event (fps and camera figures for the camera panel) goes out
  at most once per device per ``DEVICE_STATUS_EVERY_S`` (300 s by default): a report
  inside that window reaches no desk. At 10,000 devices reporting every 30 s that is
  33 desk messages/s instead of 333 (cloud/README.md "Device health at fleet scale").

No idempotency claim: recording a report twice changes nothing, and the two things
announced (a transition, a cadence slot) are each claimed by a conditional write.
The handler builds the deps once per container with :func:`health_from_env`.
"""

from __future__ import annotations

from typing import Any

from oneeye import events
from oneeye.alerting import skew_note
from oneeye.cloud.common import Result, clip, event_id_of, rejected, sender_rejection
from oneeye.cloud.dal import store
from oneeye.cloud.settings import DeviceHealthSettings
from oneeye.cloud.skew import trusted_health
from oneeye.cloud.transitions import DeviceStateDeps, announce, state_deps
from oneeye.errors import EventError


def device_health(message: Any, deps: DeviceStateDeps) -> Result:
    """Record one ``oneeye.health/1``; announce a return; a ``device_status`` on the cadence."""
    try:
        health = events.parse(message, expect=events.HEALTH)
    except EventError as exc:
        return rejected("device_health", str(exc), event_id=event_id_of(message))
    assert isinstance(health, events.HealthEvent)
    health = trusted_health(health)   # a device clock off by more than the tolerance: flagged
    forged = sender_rejection(message, health, deps.registry, "device_health")
    if forged is not None:
        return forged
    before = deps.devices.heard(health.device_id, health.site_id, fps=health.fps,
                                camera_state=health.camera_state,
                                health_json=health.to_json())
    out: Result = {"status": "recorded", "event_id": health.event_id}
    if before is not None and before.state == "offline":
        out["transition"] = announce(deps, health.device_id, "device_online", before,
                                     site_id=health.site_id, why="health reports again")
    if deps.devices.status_due(health.device_id, deps.status_every_s):
        desk = events.DeskEvent(
            event_id=health.event_id, kind="device_status", site_id=health.site_id,
            observed_at=health.sent_at, device_id=health.device_id, health=health,
            message=clip(f"{health.device_id}: camera {health.camera_state}, "
                         f"{health.fps:.1f} fps" + (
                             f", {skew_note(health.clock.skew_s)}"
                             if health.clock and health.clock.skew_s is not None else "")),
        )
        out["message_id"] = store.publish(deps.desk_topic_arn, desk.to_json(),
                                          site_id=health.site_id)
        out["status"] = "published"
    return out


def health_deps(settings: DeviceHealthSettings) -> DeviceStateDeps:
    return state_deps(settings)


def health_from_env() -> DeviceStateDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return health_deps(DeviceHealthSettings.from_env(root="device_health"))
