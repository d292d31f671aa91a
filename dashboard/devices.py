"""Camera health at the desk: the cloud decides, the dashboard applies what it is sent.

Whether a device is online is cloud state (``device:{thing}`` in the state table,
:mod:`oneeye.cloud.functions.device_presence`): AWS IoT lifecycle events and a sweep
every minute mark it offline, a report or a reconnection marks it online, and each
change arrives here once as a ``device_offline`` / ``device_online`` desk event (branch
IT's email is sent by the cloud too). The dashboard runs no timer of its own:

- ``device_status`` (fps and camera figures, at most one per device per
  ``DEVICE_STATUS_EVERY_S``): updates the device's row only and is pushed to open desks
  as ``device`` (the camera panel); never an event, never a state change.
- ``device_offline``: stored as an event, the row marked offline. It raises a banner
  until acknowledged.
- ``device_online``: stored as an event, the row marked online, and the device's open
  outage banner closed by the system (acknowledged as ``system (back online)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dashboard.store import Store
from oneeye.events import DeskEvent

log = logging.getLogger(__name__)

#: Who closes an outage banner when the camera comes back.
BACK_ONLINE = "system (back online)"
#: Who closes the banner of a ``device_offline`` that arrived after a newer transition.
SUPERSEDED = "system (arrived late; a newer state applies)"
Publish = Callable[[str, dict[str, Any]], None]


def health(store: Store, publish: Publish, event: DeskEvent) -> None:
    """A ``device_status`` event: update the device's figures (not its state) and tell the
    open desks' camera panels."""
    store.devices.seen(event)
    publish("device", {"device_id": event.device_id, "site_id": event.site_id})


def transition(store: Store, publish: Publish, event: DeskEvent) -> dict[str, Any] | None:
    """Apply and store a ``device_offline`` / ``device_online`` event from the cloud (once
    per event id); returns the stored record, None for a duplicate.

    A transition older than the device's current state (SNS delivered it late) is kept in
    the history but changes nothing: no state, no banner (a late ``device_offline`` is
    closed at once as :data:`SUPERSEDED`), nothing pushed to the desks."""
    applied = True
    if event.device_id:
        applied = store.devices.set_state(event, "offline" if event.kind == "device_offline"
                                          else "online")
    record = store.events.add(event)
    if record is None:
        return None
    if not applied:
        if event.kind == "device_offline" and event.device_id:
            store.alerts.acknowledge_group([event.site_id], "device_offline", event.device_id,
                                           int(record["seq"]), SUPERSEDED,
                                           event_ids=[event.event_id])
        log.info("device %s: late %s (at %s) ignored: a newer state is applied",
                 event.device_id, event.kind, event.observed_at)
        return record
    publish("desk_event", record)
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
