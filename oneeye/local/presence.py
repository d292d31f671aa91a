"""The local broker's lifecycle events, shaped like AWS IoT Core's.

AWS IoT publishes, for every client that connects or disconnects::

    $aws/events/presence/connected/{clientId}
    $aws/events/presence/disconnected/{clientId}
    {"clientId": "cam-7", "timestamp": 1573002230757, "eventType": "connected",
     "sessionIdentifier": "…", "principalIdentifier": "…", "versionNumber": 0}
    (disconnected adds "clientInitiatedDisconnect" and "disconnectReason")

:class:`PresencePlugin` is an amqtt broker plugin that publishes the same JSON on the
same topics, so the template's ``DevicePresenceRule`` (``$aws/events/presence/+/+`` →
``device_presence``) runs locally unchanged through the rules router. MQTT forbids
clients to publish on ``$`` topics (amqtt closes such a connection), so only the
broker itself can speak here, as in AWS. ``timestamp`` is milliseconds since the epoch;
``versionNumber`` counts connections of one client id since the broker started.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import Counter
from typing import Any

from amqtt.broker import Broker, BrokerContext
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.plugins.base import BasePlugin

from oneeye.cloud.functions.device_presence import PRESENCE_TOPIC

log = logging.getLogger(__name__)


def lifecycle_event(client_id: str, event_type: str, *, version: int, session: str,
                    timestamp_ms: int, reason: str | None = None) -> tuple[str, bytes]:
    """``(topic, payload)`` of one AWS IoT lifecycle event (see the module docstring)."""
    body: dict[str, Any] = {"clientId": client_id, "timestamp": timestamp_ms,
                            "eventType": event_type, "sessionIdentifier": session,
                            "principalIdentifier": "local", "versionNumber": version}
    if event_type == "disconnected":
        body["clientInitiatedDisconnect"] = reason == "CLIENT_INITIATED_DISCONNECT"
        body["disconnectReason"] = reason or "CONNECTION_LOST"
    return f"{PRESENCE_TOPIC}/{event_type}/{client_id}", json.dumps(body).encode()


class PresencePlugin(BasePlugin[BrokerContext]):  # type: ignore[misc]  # amqtt: untyped
    """Publishes ``$aws/events/presence/…`` on every client connect and disconnect."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self._versions: Counter[str] = Counter()
        self._sessions = itertools.count(1)

    async def _publish(self, client_id: str, event_type: str, reason: str | None) -> None:
        if "#" in client_id or "+" in client_id:  # AWS sends none for such ids either
            return
        if event_type == "connected":
            self._versions[client_id] += 1
        topic, payload = lifecycle_event(
            client_id, event_type, version=self._versions[client_id],
            session=f"local-{next(self._sessions)}", timestamp_ms=time.time_ns() // 1_000_000,
            reason=reason)
        try:
            await self.context.broadcast_message(topic, payload, qos=1)
        except Exception:  # a lifecycle event lost is caught by the sweep; the broker goes on
            log.exception("could not publish %s", topic)

    async def on_broker_client_connected(self, *, client_id: str, client_session: Any) -> None:
        await self._publish(client_id, "connected", None)

    async def on_broker_client_disconnected(self, *, client_id: str,
                                            client_session: Any) -> None:
        # A client that sent DISCONNECT stopped on purpose (an edge shutting down); anything
        # else is a lost connection, as AWS IoT tells the two apart.
        clean = getattr(client_session, CLEAN_DISCONNECT_ATTR, False)
        await self._publish(client_id, "disconnected",
                            "CLIENT_INITIATED_DISCONNECT" if clean else "CONNECTION_LOST")


#: Set on an amqtt session by :class:`oneeye.local.broker`'s broker when the client's
#: connection ended with an MQTT DISCONNECT packet (amqtt tells its plugins only that the
#: client went away).
CLEAN_DISCONNECT_ATTR = "oneeye_clean_disconnect"


class LifecycleBroker(Broker):  # type: ignore[misc]  # amqtt: untyped
    """amqtt's broker, marking each session whose client disconnected cleanly
    (:data:`CLEAN_DISCONNECT_ATTR`) before its plugins hear of the disconnect."""

    async def _handle_disconnect(self, client_session: Any, handler: Any,
                                 disconnect_waiter: asyncio.Future[Any]) -> None:
        clean = (disconnect_waiter.done() and not disconnect_waiter.cancelled()
                 and disconnect_waiter.exception() is None
                 and isinstance(disconnect_waiter.result(), DisconnectPacket))
        setattr(client_session, CLEAN_DISCONNECT_ATTR, clean)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
