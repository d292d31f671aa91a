"""How the edge reaches the cloud: one :class:`Publisher` interface, three transports.

- :class:`IpcPublisher` — under Greengrass v2: ``GreengrassCoreIPCClientV2``
  ``publish_to_iot_core`` (QoS 1). The client is passed in by the entry point,
  never constructed here, so tests drive it with a stand-in of the same signatures.
- :class:`MqttPublisher` — direct MQTT 3.1.1 with ``awscrt``: ``mqtts://endpoint:8883``
  with mTLS (device cert, key, CA — AWS IoT Core) or plain ``mqtt://host:port``
  (the local stack's broker, Mosquitto).
- :class:`NullPublisher` — ``none``: events stay in the JSONL sink / outbox only.

Contract: :meth:`Publisher.publish` returns only once the message is acknowledged
(PUBACK, or IPC success) and raises :class:`PublishError` otherwise — quickly when
the connection is down, so the outbox keeps the event and the sender backs off.
awscrt would otherwise queue QoS 1 publishes in memory while offline, which is
exactly the loss-on-restart the durable outbox replaces.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from oneeye.edge.comms.conflict import QuickDrops
from oneeye.edge.device.greengrass import close_streams
from oneeye.edge.settings import EdgeSettings, PublishSettings
from oneeye.errors import ConfigError, PublishError, PublishRejected

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes], None]


class Publisher(ABC):
    """Publish with acknowledgement, subscribe, and say whether we are connected."""

    name = "publisher"

    def __init__(self) -> None:
        self._connected = threading.Event()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    @property
    def client_id_conflict(self) -> str | None:
        """Why another device may be using this connection's client id (None: no sign)."""
        return None

    @abstractmethod
    def connect(self, timeout: float = 10.0) -> None:
        """Connect (idempotent); raise :class:`PublishError` when that fails."""

    @abstractmethod
    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        """Return when acknowledged; raise :class:`PublishError` (retry) or
        :class:`PublishRejected` (never acceptable)."""

    @abstractmethod
    def subscribe(self, topic: str, callback: MessageCallback) -> None:
        """Deliver messages on ``topic`` to ``callback(topic, payload)`` (kept across reconnects).

        Callbacks run on the transport's thread: they must return quickly."""

    @abstractmethod
    def close(self) -> None:
        """Disconnect and release resources (idempotent)."""


class NullPublisher(Publisher):
    """``--publish none``: every publish is 'acknowledged' at once and goes nowhere."""

    name = "none"

    def __init__(self) -> None:
        super().__init__()
        self._connected.set()

    def connect(self, timeout: float = 10.0) -> None:
        self._connected.set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        log.debug("publish none: %s (%d bytes) not sent", topic, len(payload))

    def subscribe(self, topic: str, callback: MessageCallback) -> None:
        log.info("publish none: not subscribing to %s (gallery sync falls back to polling)", topic)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- Greengrass IPC


class IpcPublisher(Publisher):
    """Greengrass v2 IPC (``aws.greengrass.ipc.mqttproxy``) through a
    ``GreengrassCoreIPCClientV2`` made by the entry point.

    The Nucleus owns the connection to IoT Core; IPC success is our acknowledgement.
    An ``UnauthorizedError`` means the recipe's accessControl does not allow the
    topic — no retry will change that, so it is raised as :class:`PublishRejected`.
    """

    name = "ipc"

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self._operations: list[Any] = []
        self._connected.set()  # the IPC socket is open once the client exists

    def connect(self, timeout: float = 10.0) -> None:
        self._connected.set()

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        from awsiot.greengrasscoreipc.model import QOS  # lazy: native library

        try:
            future = self.client.publish_to_iot_core_async(
                topic_name=topic, qos=QOS.AT_LEAST_ONCE if qos else QOS.AT_MOST_ONCE,
                payload=payload)
            future.result(timeout)
        except FutureTimeout as exc:
            raise PublishError(f"IPC publish to {topic} not confirmed within {timeout} s") from exc
        except Exception as exc:
            kind = type(exc).__name__
            if kind in ("UnauthorizedError", "InvalidArgumentsError"):
                raise PublishRejected(f"Greengrass refused publish to {topic}: {kind}: {exc}") \
                    from exc
            raise PublishError(f"IPC publish to {topic} failed: {kind}: {exc}") from exc

    def subscribe(self, topic: str, callback: MessageCallback) -> None:
        from awsiot.greengrasscoreipc.model import QOS  # lazy: native library

        def on_event(event: Any) -> None:
            msg = getattr(event, "message", None)
            if msg is None:
                return
            payload = msg.payload if isinstance(msg.payload, bytes) else bytes(msg.payload or b"")
            callback(msg.topic_name or topic, payload)

        def on_error(exc: Exception) -> bool:
            log.error("IPC subscription to %s failed: %s", topic, exc)
            return False  # keep the stream open

        try:
            _, operation = self.client.subscribe_to_iot_core(
                topic_name=topic, qos=QOS.AT_LEAST_ONCE, on_stream_event=on_event,
                on_stream_error=on_error, on_stream_closed=lambda: log.warning(
                    "IPC subscription to %s closed", topic))
        except Exception as exc:
            raise PublishError(f"IPC subscribe to {topic} failed: {type(exc).__name__}: {exc}") \
                from exc
        self._operations.append(operation)

    def close(self) -> None:
        close_streams(self._operations)


# --------------------------------------------------------------------------- direct MQTT


@dataclass(frozen=True)
class BrokerAddress:
    tls: bool
    host: str
    port: int


def parse_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(
            f"publish.url: expected mqtt://host:port or mqtts://host:port, got {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"publish.url: bad port in {url!r}") from exc
    return BrokerAddress(tls=tls, host=parts.hostname, port=port)


class MqttPublisher(Publisher):
    """awscrt MQTT 3.1.1 client, persistent session, awscrt's own reconnect with backoff.

    Two devices with one client id knock each other off at every reconnect, and each only
    sees "connection lost": :class:`~oneeye.edge.comms.conflict.QuickDrops` watches the
    connection's ups and downs and :attr:`client_id_conflict` says when that is the cause.
    """

    name = "mqtt"

    def __init__(self, settings: PublishSettings, client_id: str) -> None:
        super().__init__()
        self.address = parse_url(settings.url)
        self.settings = settings
        self.client_id = client_id
        self._subs: dict[str, MessageCallback] = {}
        #: Topics the broker has acknowledged a subscription to (SUBACK), for health and tests.
        self.subscribed: set[str] = set()
        self._lock = threading.Lock()
        self._conn: Any = None
        self._closed = False
        self.connects = 0
        self.drops = QuickDrops(client_id, f"{self.address.host}:{self.address.port}")

    @property
    def client_id_conflict(self) -> str | None:
        return self.drops.conflict()

    def _tls(self) -> Any:
        from awscrt import io  # lazy: native AWS CRT, device transport only

        s = self.settings
        if not (s.cert_file and s.key_file):
            raise ConfigError("publish: mqtts needs publish.cert_file and publish.key_file (mTLS)")
        for key, path in (("cert_file", s.cert_file), ("key_file", s.key_file),
                          ("ca_file", s.ca_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"publish.{key}: {path} does not exist")
        opts = io.TlsContextOptions.create_client_with_mtls_from_path(str(s.cert_file),
                                                                      str(s.key_file))
        if s.ca_file:
            opts.override_default_trust_store_from_path(None, str(s.ca_file))
        if self.address.port == 443:
            opts.alpn_list = ["x-amzn-mqtt-ca"]  # IoT Core serves MQTT on 443 only with this ALPN
        return io.ClientTlsContext(opts)

    def _make_connection(self) -> Any:
        from awscrt import io, mqtt  # lazy: native AWS CRT, device transport only

        tls = self._tls() if self.address.tls else None
        client = mqtt.Client(io.ClientBootstrap.get_or_create_static_default(), tls)
        return mqtt.Connection(
            client=client, host_name=self.address.host, port=self.address.port,
            client_id=self.client_id, clean_session=False,
            keep_alive_secs=self.settings.keepalive_s,
            reconnect_min_timeout_secs=self.settings.reconnect_min_s,
            reconnect_max_timeout_secs=self.settings.reconnect_max_s,
            on_connection_interrupted=self._on_interrupted,
            on_connection_resumed=self._on_resumed,
            on_connection_closed=lambda connection, callback_data: self._connected.clear(),
        )

    def _on_interrupted(self, connection: Any, error: Exception, **kwargs: Any) -> None:
        self._connected.clear()
        self.drops.down()
        log.warning("MQTT connection to %s:%d lost: %s", self.address.host, self.address.port,
                    error)

    def _on_resumed(self, connection: Any, return_code: Any, session_present: bool,
                    **kwargs: Any) -> None:
        log.info("MQTT connection to %s:%d resumed (session present: %s)", self.address.host,
                 self.address.port, session_present)
        if not session_present:  # a restarted broker forgot our subscriptions
            self._resubscribe()
        self.drops.up()
        self._connected.set()

    def connect(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._closed:
                raise PublishError("publisher is closed")
            if self._connected.is_set():
                return
            if self._conn is not None and self.connects:
                # Once connected, awscrt reconnects by itself (backoff reconnect_min_s …
                # reconnect_max_s); a second connect() would only fail with INVALID_STATE.
                if self._connected.wait(timeout):
                    return
                raise PublishError(f"MQTT {self.address.host}:{self.address.port} unreachable; "
                                   "reconnecting")
            if self._conn is None:
                self._conn = self._make_connection()
            try:
                self._conn.connect().result(timeout)
            except FutureTimeout as exc:
                raise PublishError(f"MQTT connect to {self.address.host}:{self.address.port} "
                                   f"timed out after {timeout} s") from exc
            except Exception as exc:
                raise PublishError(f"MQTT connect to {self.address.host}:{self.address.port} "
                                   f"failed: {exc}") from exc
            self.connects += 1
            self.drops.up()
            self._connected.set()
        log.info("MQTT connected to %s:%d as %s", self.address.host, self.address.port,
                 self.client_id)
        self._resubscribe()

    def _resubscribe(self) -> None:
        for topic, cb in list(self._subs.items()):
            try:
                self._subscribe_now(topic, cb)
            except PublishError as exc:
                log.warning("%s", exc)

    def _subscribe_now(self, topic: str, callback: MessageCallback) -> None:
        from awscrt import mqtt  # lazy: native AWS CRT, device transport only

        def on_message(topic: str, payload: bytes, **kwargs: Any) -> None:
            callback(topic, bytes(payload))

        future, _ = self._conn.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE, on_message)
        try:
            result = future.result(10.0)
        except Exception as exc:
            raise PublishError(f"MQTT subscribe to {topic} failed: {exc}") from exc
        if result.get("qos") is None:
            raise PublishError(f"broker refused subscription to {topic}")
        self.subscribed.add(topic)

    def subscribe(self, topic: str, callback: MessageCallback) -> None:
        self._subs[topic] = callback
        if self._connected.is_set():
            self._subscribe_now(topic, callback)

    def publish(self, topic: str, payload: bytes, qos: int = 1, timeout: float = 10.0) -> None:
        from awscrt import mqtt  # lazy: native AWS CRT, device transport only

        if not self._connected.is_set() or self._conn is None:
            raise PublishError("not connected")
        future: Future[Any]
        future, _ = self._conn.publish(topic, payload,
                                       mqtt.QoS.AT_LEAST_ONCE if qos else mqtt.QoS.AT_MOST_ONCE)
        deadline = time.monotonic() + timeout
        # Poll so a connection lost mid-flight fails now instead of at the timeout; awscrt
        # may still deliver that copy after reconnect — consumers dedupe on event_id.
        while True:
            try:
                future.result(0.05)
                return
            except FutureTimeout:
                if not self._connected.is_set():
                    raise PublishError("connection lost before PUBACK") from None
                if time.monotonic() > deadline:
                    raise PublishError(f"no PUBACK within {timeout} s") from None
            except Exception as exc:
                raise PublishError(f"publish to {topic} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None and self._connected.is_set():
            try:
                conn.disconnect().result(5.0)
            except Exception:  # closing: a dead connection cannot be disconnected politely
                log.debug("MQTT disconnect failed", exc_info=True)
        self._connected.clear()


def make_publisher(settings: EdgeSettings, *, ipc_client: Any = None) -> Publisher:
    """The publisher ``settings.publish.url`` asks for.

    For ``ipc`` the caller (an entry point) should pass its ``GreengrassCoreIPCClientV2``;
    without one, it is created here — the only place outside ``edge/main.py`` that does.
    """
    url = settings.publish.url
    if url == "none":
        return NullPublisher()
    if url == "ipc":
        if ipc_client is None:
            # lazy: awscrt-based Greengrass IPC, device only
            from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

            try:
                ipc_client = GreengrassCoreIPCClientV2()
            except Exception as exc:
                raise ConfigError("publish.url is ipc but no Greengrass IPC socket is available "
                                  f"(run inside a Greengrass component): {exc}") from exc
        return IpcPublisher(ipc_client)
    return MqttPublisher(settings.publish, settings.publish.client_id or settings.device_id)
