"""Camera health at the desk: state as an upsert, only transitions become events.

A fleet sends a health report every 30 s per device; storing each one as a desk event
would be ~29 M rows a day at 10,000 devices (cloud/README.md). So a ``device_status``
report only updates the device's row (:meth:`dashboard.store.devices.Devices.seen`) and
is pushed to open desks as ``device`` (the camera panel); a *change* is recorded as an event:

- ``device_offline``: no report for ``offline_after_s`` (the sweep notices, whichever
  process gets there first records it once), or the cloud says so (AWS IoT lifecycle
  ``disconnected``). It raises a banner until acknowledged.
- ``device_online``: the first report from a device that was offline. Its open outage
  banner is closed by the system (acknowledged as ``system (back online)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from dashboard.store import Store
from oneeye.cloud.backoffice import notify_it
from oneeye.events import DeskEvent
from oneeye.ids import new_id
from oneeye.types import format_time

log = logging.getLogger(__name__)

#: Who closes an outage banner when the camera comes back.
BACK_ONLINE = "system (back online)"
Publish = Callable[[str, dict[str, Any]], None]
#: Tells people outside the desk about a recorded transition (branch IT by email).
Notify = Callable[[DeskEvent], None]


def it_email(topic_arn: str) -> Notify | None:
    """A :data:`Notify` that publishes outages to ``topic_arn`` (branch IT's email
    subscription, filterable by the ``site_id`` attribute); None without a topic.

    A failed publish is logged and dropped: the banner and the stored event are the
    record, and an email retried minutes later would arrive after the camera is back.
    """
    if not topic_arn:
        return None

    def send(event: DeskEvent) -> None:
        state = "OFFLINE" if event.kind == "device_offline" else "back online"
        try:
            notify_it(topic_arn, f"Camera {event.device_id} at {event.site_id} is {state} "
                      f"({event.observed_at}). {event.message}".strip(),
                      site_id=event.site_id,
                      subject=f"OneEye: camera {event.device_id} {state}")
        except Exception:  # the banner and the stored event stay the record; see above
            log.exception("could not email branch IT about %s %s", event.device_id, event.kind)

    return send


def health(store: Store, publish: Publish, event: DeskEvent,
           notify: Notify | None = None) -> dict[str, Any] | None:
    """A ``device_status`` event: update the device; record ``device_online`` if it was
    offline. Returns the stored ``device_online`` record, if any."""
    before = store.devices.seen(event)
    publish("device", {"device_id": event.device_id, "site_id": event.site_id})
    if before != "offline":
        return None
    return transition(store, publish, event.model_copy(update={
        "kind": "device_online", "event_id": new_id(),
        "message": f"{event.device_id} is back online", "health": None}), notify)


def transition(store: Store, publish: Publish, event: DeskEvent,
               notify: Notify | None = None) -> dict[str, Any] | None:
    """Store and push a ``device_offline`` / ``device_online`` event (once per event id),
    and ``notify`` branch IT of it."""
    if event.kind == "device_offline" and event.device_id:
        store.devices.mark_offline(event.device_id)
    record = store.events.add(event)
    if record is None:
        return None
    publish("desk_event", record)
    if notify is not None:
        notify(event)
    if event.kind == "device_online" and event.device_id:
        acked = store.alerts.acknowledge_group([event.site_id], "device_offline", event.device_id,
                                        int(record["seq"]), BACK_ONLINE)
        if acked:
            publish("alert_ack", {"kind": "device_offline", "subject": event.device_id,
                                  "site_id": event.site_id, "upto_seq": record["seq"],
                                  "by": BACK_ONLINE, "at": acked[0]["at"],
                                  "event_ids": [a["event_id"] for a in acked]})
    log.info("device %s: %s", event.device_id, event.kind)
    return record


def sweep(store: Store, publish: Publish, offline_after_s: float, now: datetime,
          notify: Notify | None = None) -> int:
    """Record ``device_offline`` for every device silent for ``offline_after_s`` at
    ``now`` (an aware datetime; injected so tests need not wait). Returns how many."""
    cutoff = format_time(now - timedelta(seconds=offline_after_s))
    count = 0
    for row in store.devices.stale(cutoff):
        if not store.devices.mark_offline(row["device_id"], stale_before=cutoff):
            continue  # another process (or a fresh report) got there first
        silent = (f"{offline_after_s / 60:.0f} min" if offline_after_s >= 120
                  else f"{offline_after_s:.0f} s")
        event = DeskEvent(kind="device_offline", site_id=row["site_id"],
                          observed_at=format_time(now), device_id=row["device_id"],
                          message=f"no health report for over {silent}")
        record = store.events.add(event)
        if record is not None:
            publish("desk_event", record)
            if notify is not None:
                notify(event)
            count += 1
            log.warning("device %s offline: last health %s", row["device_id"],
                        row["last_seen"])
    return count

