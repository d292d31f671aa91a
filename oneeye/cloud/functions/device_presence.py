"""device_presence: whether a device is online, decided in the cloud and announced once.

Three things change a device's state (its ``device:{thing}`` item,
:mod:`oneeye.cloud.dal.device_state`), and only a *change* is announced:

- AWS IoT lifecycle events, through the ``DevicePresenceRule`` topic rule
  (``SELECT * FROM '$aws/events/presence/+/+'``)::

      $aws/events/presence/connected/{clientId}
      $aws/events/presence/disconnected/{clientId}
      {"clientId": "cam-7", "timestamp": 1573002230757, "eventType": "disconnected",
       "clientInitiatedDisconnect": false, "disconnectReason": "CONNECTION_LOST",
       "sessionIdentifier": "…", "principalIdentifier": "…", "versionNumber": 0}

  The IoT policy lets a device connect only with its thing name as client id, so the
  topic's client id (``topic(5) AS iot_thing``; the body's ``clientId`` must agree) names
  the thing; a client that is no registered thing (a dashboard, a
  test tool) is ignored. AWS may deliver lifecycle events late, twice or out of order:
  each item keeps the ``timestamp`` (ms) of the last one applied and older ones change
  nothing.
- the scheduled sweep (``{"action": "sweep"}`` from an EventBridge schedule, every
  minute; the local stack runs it on a timer): every device still online whose last
  health report is older than ``OFFLINE_AFTER_S`` goes offline. This catches a device
  whose connection stays half-open, which no lifecycle event reports in time.
- a health report from a device marked offline (:mod:`oneeye.cloud.functions.device_health`).

Each transition is one conditional write, announced once by the invocation that made
it (:func:`oneeye.cloud.transitions.announce`: one desk event, one message to branch IT).
"""

from __future__ import annotations

import logging
from typing import Any

from oneeye.cloud.common import Result, rejected
from oneeye.cloud.devices import THING_FIELD
from oneeye.cloud.settings import PresenceSettings
from oneeye.cloud.transitions import DeviceStateDeps, announce, state_deps
from oneeye.types import is_id

log = logging.getLogger(__name__)

#: The lifecycle topics' root (AWS IoT Core; the local broker publishes the same).
PRESENCE_TOPIC = "$aws/events/presence"


def device_presence(message: Any, deps: DeviceStateDeps) -> Result:
    """One IoT lifecycle event, or ``{"action": "sweep"}`` from the schedule."""
    if isinstance(message, dict) and message.get("action") == "sweep":
        return sweep(deps)
    if not isinstance(message, dict):
        return rejected("device_presence", "not a JSON object")
    # The client id from the topic (``topic(5) AS iot_thing``, set by AWS IoT), not the body.
    thing, kind, stamp = message.get(THING_FIELD), message.get("eventType"), \
        message.get("timestamp")
    if kind not in ("connected", "disconnected") or not isinstance(stamp, int):
        return rejected("device_presence", f"not a connect/disconnect lifecycle event: "
                        f"eventType {str(kind)[:40]!r}, timestamp {str(stamp)[:40]!r}")
    if message.get("clientId") != thing:
        return rejected("device_presence", f"clientId {str(message.get('clientId'))[:64]!r} "
                        f"is not the topic's {str(thing)[:64]!r}")
    device = deps.registry.lookup(thing) if isinstance(thing, str) and is_id(thing) else None
    if device is None or not device.site_id:
        # the stack's own clients (rules router, indexer, dashboard) connect too: routine
        log.debug("device_presence: %s of %r, no registered device: ignored", kind,
                  str(thing)[:64])
        return {"status": "ignored", "client_id": str(thing)[:64]}
    assert isinstance(thing, str)
    if kind == "connected":
        before = deps.devices.transition(thing, "online", site_id=device.site_id,
                                         presence_at=stamp, create=True)
        if before is None:   # already online, first connection, or an older event
            return {"status": "unchanged", "device_id": thing}
        return announce(deps, thing, "device_online", before, site_id=device.site_id,
                        why="connected again")
    before = deps.devices.transition(thing, "offline", site_id=device.site_id,
                                     presence_at=stamp)
    if before is None:
        return {"status": "unchanged", "device_id": thing}
    reason = str(message.get("disconnectReason") or "disconnected")[:60]
    why = (f"stopped: it closed its connection ({reason})"
           if reason == "CLIENT_INITIATED_DISCONNECT"   # a shutdown, not a fault
           else f"disconnected from the cloud ({reason})")
    return announce(deps, thing, "device_offline", before, site_id=device.site_id, why=why)


def sweep(deps: DeviceStateDeps) -> Result:
    """Mark offline every device silent for ``offline_after_s`` (cloud time); one
    announcement per device that this sweep changed."""
    cutoff = deps.devices.clock() - deps.offline_after_s
    silent = (f"{deps.offline_after_s / 60:.0f} min" if deps.offline_after_s >= 120
              else f"{deps.offline_after_s:.0f} s")
    changed: list[str] = []
    for record in deps.devices.stale(cutoff):
        before = deps.devices.transition(record.thing, "offline", site_id=record.site_id,
                                         stale_before=cutoff)
        if before is None:   # a report (or another sweep) got there first
            continue
        announce(deps, record.thing, "device_offline", before, site_id=record.site_id,
                 why=f"no health report for over {silent}")
        changed.append(record.thing)
    return {"status": "swept", "offline": changed}


def presence_from_env() -> DeviceStateDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return state_deps(PresenceSettings.from_env(root="device_presence"))
