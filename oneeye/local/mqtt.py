"""A small paho-mqtt (2.x API) subscriber for the stack's own consumers.

Reconnects by itself (paho's loop), re-subscribes on every connect, and calls
``on_message(topic, payload)`` on paho's network thread — callers hand work to
their own pool so the network loop never blocks. paho acknowledges a QoS 1
message only after ``on_message`` returns, so a callback that stores the message
durably (``oneeye.local.inbox``) acks nothing it could still lose. With
``persistent`` the client id is fixed (``name``) and the session is kept, so a
broker that keeps sessions queues messages for it while it is away.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlparse

from oneeye.errors import ConfigError

log = logging.getLogger(__name__)


def parse_url(url: str) -> tuple[str, int]:
    u = urlparse(url)
    if u.scheme != "mqtt" or not u.hostname:
        raise ConfigError(f"MQTT URL must look like mqtt://host:port, got {url!r}")
    return u.hostname, u.port or 1883


class Subscriber:
    def __init__(self, url: str, filters: list[str],
                 on_message: Callable[[str, bytes], object], *, name: str = "oneeye-local",
                 persistent: bool = False) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.host, self.port = parse_url(url)
        self._filters = filters
        self._on_message = on_message
        self.connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=name if persistent else
                                   f"{name}-{uuid.uuid4().hex[:8]}",
                                   clean_session=not persistent)
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        self._client.on_connect = self._connected
        self._client.on_disconnect = self._disconnected
        self._client.on_message = self._message

    def start(self, timeout: float = 10.0) -> Subscriber:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self.connected.wait(timeout):
            self.stop()
            raise ConfigError(f"cannot connect to the MQTT broker at {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _connected(self, client: object, userdata: object, flags: object, reason: object,
                   props: object = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect refused: %s", reason)
            return
        for f in self._filters:
            self._client.subscribe(f, qos=1)
        log.info("subscribed on %s:%d to %s", self.host, self.port, ", ".join(self._filters))
        self.connected.set()

    def _disconnected(self, client: object, userdata: object, flags: object, reason: object,
                      props: object = None) -> None:
        self.connected.clear()
        log.info("MQTT subscriber disconnected (%s); paho reconnects", reason)

    def _message(self, client: object, userdata: object, msg: object) -> None:
        try:
            self._on_message(msg.topic, msg.payload)  # type: ignore[attr-defined]
        except Exception:  # one bad message must not kill paho's network thread
            log.exception("MQTT message handler failed")
