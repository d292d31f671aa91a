"""device_health: an edge's ``oneeye.health/1`` in, a ``device_status`` desk event out.

The health report is validated, its sender checked against the thing that published
it (:func:`oneeye.cloud.common.sender_rejection`), and forwarded once per
``event_id`` on the desk topic. The handler builds the deps once per container from
:class:`~oneeye.cloud.settings.HealthSettings` with :func:`health_deps`.
"""

from __future__ import annotations

from typing import Any

from oneeye import events
from oneeye.cloud.common import (
    DeviceMessageDeps,
    Result,
    clip,
    event_id_of,
    rejected,
    run_once,
    sender_rejection,
)
from oneeye.cloud.dal import store
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.devices import registry
from oneeye.cloud.settings import HealthSettings
from oneeye.errors import EventError


def device_health(message: Any, deps: DeviceMessageDeps) -> Result:
    """Validate one ``oneeye.health/1`` and forward it as a ``device_status`` desk event."""
    try:
        health = events.parse(message, expect=events.HEALTH)
    except EventError as exc:
        return rejected("device_health", str(exc), event_id=event_id_of(message))
    assert isinstance(health, events.HealthEvent)
    forged = sender_rejection(message, health, deps.registry, "device_health")
    if forged is not None:
        return forged

    def work() -> Result:
        desk = events.DeskEvent(
            event_id=health.event_id, kind="device_status", site_id=health.site_id,
            observed_at=health.sent_at, device_id=health.device_id, health=health,
            message=clip(f"{health.device_id}: camera {health.camera_state}, "
                         f"{health.fps:.1f} fps"),
        )
        message_id = store.publish(deps.desk_topic_arn, desk.to_json(), site_id=health.site_id)
        return {"status": "published", "event_id": health.event_id, "message_id": message_id}

    return run_once(deps.idempotency, health.event_id, work, handler="device_health")


def health_deps(settings: HealthSettings) -> DeviceMessageDeps:
    return DeviceMessageDeps(idempotency=Idempotency(settings.idempotency_table),
                             desk_topic_arn=settings.desk_topic_arn,
                             registry=registry(settings))


def health_from_env() -> DeviceMessageDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return health_deps(HealthSettings.from_env(root="device_health"))
