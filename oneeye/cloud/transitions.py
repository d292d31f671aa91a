"""Device transitions, announced once: what ``device_health`` and ``device_presence`` share.

A transition (``device_offline`` / ``device_online``) is made by one conditional write
of the device's item (:class:`oneeye.cloud.dal.device_state.DeviceStates`); the
invocation that made it calls :func:`announce`, which publishes exactly one desk event
and one message to branch IT's topic (``IT_ALERT_TOPIC_ARN``, subject "OneEye: camera
cam-7 OFFLINE"). The event id is derived from the transition (:func:`transition_id`), so
a retried announcement is deduplicated downstream; if publishing fails the state is put
back and the error raised, and the platform's retry announces it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from oneeye import events
from oneeye.cloud.common import DeviceMessageDeps, Result, clip
from oneeye.cloud.dal import store
from oneeye.cloud.dal.device_state import DeviceRecord, DeviceStates
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.devices import registry
from oneeye.cloud.settings import DeviceStateSettings
from oneeye.types import format_time

log = logging.getLogger(__name__)

Change = Literal["device_offline", "device_online"]
_IDS = uuid.UUID("6f1d3c52-5a0e-4f4b-9a59-0ddca11ed0e1")  # uuid5 namespace of transition ids


@dataclass(frozen=True, kw_only=True)
class DeviceStateDeps(DeviceMessageDeps):
    """What the device-state functions hold (built once per container)."""

    devices: DeviceStates
    offline_after_s: float = 90.0
    status_every_s: float = 300.0
    #: Branch IT's topic; None: transitions reach the desk only.
    it_topic_arn: str | None = None


def transition_id(thing: str, change: Change, before: DeviceRecord) -> str:
    """The desk event id of one transition: the same on a retry, new for the next one."""
    return str(uuid.uuid5(_IDS, f"{thing}|{change}|{before.last_seen}|{before.presence_at}"))


def announce(deps: DeviceStateDeps, thing: str, change: Change, before: DeviceRecord, *,
             site_id: str, why: str) -> Result:
    """Publish one transition (desk event + branch IT); on failure put ``before`` back and
    raise, so the platform's retry finds the change still to do."""
    now = format_time(datetime.fromtimestamp(deps.devices.clock(), UTC))
    word = "OFFLINE" if change == "device_offline" else "back online"
    desk = events.DeskEvent(event_id=transition_id(thing, change, before), kind=change,
                            site_id=site_id, observed_at=now, device_id=thing,
                            message=clip(why))
    try:
        desk_id = store.publish(deps.desk_topic_arn, desk.to_json(), site_id=site_id)
        it_id = None
        if deps.it_topic_arn:
            it_id = store.publish(
                deps.it_topic_arn, f"Camera {thing} at {site_id} is {word} ({now}). {why}",
                site_id=site_id, subject=f"OneEye: camera {thing} {word}"[:99])
    except BaseException:
        deps.devices.undo(thing, before)
        raise
    log.warning("device %s at %s: %s (%s)", thing, site_id, change, why)
    return {"status": change, "device_id": thing, "event_id": desk.event_id,
            "message_id": desk_id, "it_message_id": it_id}


def state_deps(settings: DeviceStateSettings) -> DeviceStateDeps:
    return DeviceStateDeps(idempotency=Idempotency(settings.idempotency_table),
                           desk_topic_arn=settings.desk_topic_arn, registry=registry(settings),
                           devices=DeviceStates(settings.idempotency_table),
                           offline_after_s=settings.offline_after_s,
                           status_every_s=settings.device_status_every_s,
                           it_topic_arn=settings.it_alert_topic_arn)
