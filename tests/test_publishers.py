"""Publishers against real brokers (amqtt, Mosquitto, Mosquitto with mTLS) and the IPC
publisher against a stand-in with GreengrassCoreIPCClientV2's exact method signatures."""

from __future__ import annotations

import inspect
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from oneeye.edge.comms.publishers import (
    IpcPublisher,
    MqttPublisher,
    NullPublisher,
    make_publisher,
    parse_url,
)
from oneeye.edge.settings import EdgeSettings, PublishSettings
from oneeye.errors import ConfigError, PublishError, PublishRejected
from oneeye.local.broker import EmbeddedBroker, MosquittoBroker
from tests.mqtt_support import (
    BROKERS,
    Subscriber,
    free_port,
    make_broker,
    make_pki,
    stop_broker,
    tls_mosquitto,
)
from tests.wait import wait_until


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=[*BROKERS, "mosquitto-1883"])
def broker_port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    if request.param == "mosquitto-1883":
        # The machine's own Mosquitto. .ci/run starts it when it is not running, so in CI it
        # must be there; elsewhere `make test` works without it (the "mosquitto" param runs
        # the same broker on a free port).
        try:
            socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
        except OSError as exc:
            if not os.environ.get("CI"):
                pytest.skip(f"no Mosquitto on 127.0.0.1:1883 ({exc}); run .ci/run to start one")
            # In CI it was started by .ci/run; the machine's Mosquitto was once seen to crash
            # mid-run (a segfault while saving its persistence file), so start it again as
            # .ci/run does and fail only if it still does not answer.
            subprocess.run(["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"],
                           check=False, timeout=10)
            try:
                wait_until(lambda: _answers(1883), 10, "the machine's Mosquitto on 1883")
            except AssertionError:
                pytest.fail(f"Mosquitto is expected on 127.0.0.1:1883 (.ci/run starts it): {exc}")
        yield 1883
        return
    b = make_broker(request.param, tmp_path).start()
    yield b.port
    stop_broker(b)


def mqtt(port: int, client_id: str | None = None, **kw: Any) -> MqttPublisher:
    s = PublishSettings(url=f"mqtt://127.0.0.1:{port}", **kw)
    return MqttPublisher(s, client_id or f"edge-{time.monotonic_ns()}")


def test_publish_is_acknowledged_and_delivered(broker_port: int) -> None:
    topic = f"oneeye/devices/t{time.monotonic_ns()}/matches"
    sub = Subscriber(broker_port, topic)
    pub = mqtt(broker_port)
    pub.connect()
    assert pub.connected
    pub.publish(topic, b'{"n": 1}')
    assert sub.wait_for(lambda s: s.messages, 10)
    assert sub.messages == [(topic, b'{"n": 1}')]
    pub.close()
    sub.close()
    assert not pub.connected


def test_subscribe_receives_messages(broker_port: int) -> None:
    got: list[tuple[str, bytes]] = []
    topic = f"oneeye/gallery/updated-{time.monotonic_ns()}"
    pub = mqtt(broker_port)
    pub.subscribe(topic, lambda t, p: got.append((t, p)))  # before connect: kept for later
    pub.connect()
    other = mqtt(broker_port)
    other.connect()
    other.publish(topic, b"hello")
    wait_until(lambda: got, 30, f"a message on {topic}")
    assert got == [(topic, b"hello")]
    pub.close()
    other.close()


def test_publish_without_connection_fails_fast() -> None:
    pub = mqtt(free_port())
    with pytest.raises(PublishError, match="not connected"):
        pub.publish("oneeye/devices/x/matches", b"{}")


def test_connect_to_nothing_is_a_clear_error() -> None:
    port = free_port()
    pub = mqtt(port)
    with pytest.raises(PublishError, match=f"127.0.0.1:{port} failed"):
        pub.connect(timeout=5)
    pub.close()


@pytest.mark.parametrize("kind", BROKERS)
def test_broker_restart_interrupts_then_resumes(kind: str, tmp_path: Path) -> None:
    b = make_broker(kind, tmp_path).start()
    pub = mqtt(b.port)
    pub.connect()
    b.stop()
    wait_until(lambda: not pub.connected, 30, "the publisher to notice the broker is gone")
    with pytest.raises(PublishError):
        pub.publish("oneeye/devices/x/matches", b"{}", timeout=2)
    b.start()
    assert pub.wait_connected(30), "awscrt did not reconnect after the broker came back"
    sub = Subscriber(b.port, "oneeye/devices/x/matches")
    pub.publish("oneeye/devices/x/matches", b"after")
    assert sub.wait_for(lambda s: s.messages, 10)
    pub.close()
    sub.close()
    stop_broker(b)


def test_mtls_to_mosquitto(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with tls_mosquitto(tmp_path, pki) as b:
        settings = PublishSettings(url=f"mqtts://127.0.0.1:{b.port}", ca_file=pki["ca_crt"],
                                   cert_file=pki["client_crt"], key_file=pki["client_key"])
        pub = MqttPublisher(settings, "edge-test")
        pub.connect()
        got: list[bytes] = []
        pub.subscribe("oneeye/devices/edge-test/matches", lambda t, p: got.append(p))
        pub.publish("oneeye/devices/edge-test/matches", b"over tls")
        wait_until(lambda: got, 30, "the message back over TLS")
        assert got == [b"over tls"]
        pub.close()

        rogue = MqttPublisher(settings.model_copy(update={
            "cert_file": pki["rogue_crt"], "key_file": pki["rogue_key"]}), "intruder")
        with pytest.raises(PublishError):  # a certificate the broker's CA did not sign
            rogue.connect(timeout=5)
        rogue.close()


def test_mqtts_needs_cert_and_key(tmp_path: Path) -> None:
    pub = MqttPublisher(PublishSettings(url="mqtts://example.invalid:8883"), "x")
    with pytest.raises(ConfigError, match="cert_file"):
        pub.connect()
    missing = PublishSettings(url="mqtts://example.invalid:8883", cert_file=tmp_path / "no.crt",
                              key_file=tmp_path / "no.key")
    with pytest.raises(ConfigError, match="does not exist"):
        MqttPublisher(missing, "x").connect()


@pytest.mark.parametrize("url", ["mqtt://", "http://host:1883", "mqtt://host:notaport"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ConfigError, match=r"publish\.url"):
        parse_url(url)


def test_parse_url_defaults() -> None:
    assert parse_url("mqtt://broker").port == 1883
    a = parse_url("mqtts://abc-ats.iot.eu-west-1.amazonaws.com")
    assert a.tls and a.port == 8883


def test_make_publisher_kinds() -> None:
    assert isinstance(make_publisher(EdgeSettings()), NullPublisher)
    s = EdgeSettings.model_validate({"device_id": "cam-7", "publish": {"url": "mqtt://h:1"}})
    p = make_publisher(s)
    assert isinstance(p, MqttPublisher) and p.client_id == "cam-7"
    standin = StandInIPC()
    ipc = make_publisher(EdgeSettings.model_validate({"publish": {"url": "ipc"}}),
                         ipc_client=standin)
    assert isinstance(ipc, IpcPublisher) and ipc.client is standin


def test_null_publisher() -> None:
    p = NullPublisher()
    p.publish("a/b", b"x")
    p.subscribe("a/b", lambda t, b: None)
    assert p.connected


# --------------------------------------------------------------------------- IPC stand-in


class StandInIPC:
    """The GreengrassCoreIPCClientV2 methods the edge uses, with the same signatures
    (checked below), backed by an in-memory 'IoT Core'. The Nucleus cannot run here."""

    def __init__(self) -> None:
        self.published: list[tuple[str | None, str | None, bytes]] = []
        self.fail_with: Exception | None = None
        self.subscriptions: dict[str, Any] = {}

    def publish_to_iot_core_async(self, *, topic_name=None, qos=None, payload=None,  # type: ignore[no-untyped-def]
                                  retain=None, user_properties=None,
                                  message_expiry_interval_seconds=None, correlation_data=None,
                                  response_topic=None, payload_format=None, content_type=None):
        fut: Future[model.PublishToIoTCoreResponse] = Future()
        if self.fail_with is not None:
            fut.set_exception(self.fail_with)
        else:
            self.published.append((topic_name, qos, payload if isinstance(payload, bytes)
                                   else str(payload).encode()))
            fut.set_result(model.PublishToIoTCoreResponse())
        return fut

    def subscribe_to_iot_core(self, *, topic_name=None, qos=None, stream_handler=None,  # type: ignore[no-untyped-def]
                              on_stream_event=None, on_stream_error=None,
                              on_stream_closed=None):
        self.subscriptions[topic_name] = on_stream_event

        class Op:
            closed = False

            def close(self) -> None:
                Op.closed = True

        return model.SubscribeToIoTCoreResponse(), Op()

    def deliver(self, topic: str, payload: bytes) -> None:
        self.subscriptions[topic](model.IoTCoreMessage(
            message=model.MQTTMessage(topic_name=topic, payload=payload)))


@pytest.mark.parametrize("method", ["publish_to_iot_core_async", "subscribe_to_iot_core"])
def test_standin_matches_real_client_signature(method: str) -> None:
    real = inspect.signature(getattr(GreengrassCoreIPCClientV2, method))
    ours = inspect.signature(getattr(StandInIPC, method))
    assert list(real.parameters) == list(ours.parameters)
    for name, p in real.parameters.items():
        assert ours.parameters[name].kind == p.kind, name
        assert ours.parameters[name].default == p.default, name


def test_ipc_publish_uses_qos1_and_waits_for_success() -> None:
    client = StandInIPC()
    pub = IpcPublisher(client)
    pub.publish("oneeye/devices/gg-1/matches", b'{"a":1}')
    assert client.published == [("oneeye/devices/gg-1/matches", model.QOS.AT_LEAST_ONCE,
                                 b'{"a":1}')]


def test_ipc_unauthorised_is_rejected_for_good() -> None:
    client = StandInIPC()
    client.fail_with = model.UnauthorizedError(message="not allowed on oneeye/other")
    with pytest.raises(PublishRejected, match="UnauthorizedError"):
        IpcPublisher(client).publish("oneeye/other", b"x")


def test_ipc_service_error_is_retryable() -> None:
    client = StandInIPC()
    client.fail_with = model.ServiceError(message="spooler full")
    with pytest.raises(PublishError) as info:
        IpcPublisher(client).publish("oneeye/devices/gg-1/matches", b"x")
    assert not isinstance(info.value, PublishRejected)


def test_ipc_publish_timeout() -> None:
    class Hanging(StandInIPC):
        def publish_to_iot_core_async(self, **kw: Any) -> Future[Any]:  # type: ignore[override]
            return Future()  # never completes

    with pytest.raises(PublishError, match="not confirmed"):
        IpcPublisher(Hanging()).publish("t", b"x", timeout=0.2)


def test_ipc_subscribe_delivers_payload_and_closes() -> None:
    client = StandInIPC()
    pub = IpcPublisher(client)
    got: list[tuple[str, bytes]] = []
    pub.subscribe("oneeye/gallery/updated", lambda t, p: got.append((t, p)))
    client.deliver("oneeye/gallery/updated", b'{"v":2}')
    assert got == [("oneeye/gallery/updated", b'{"v":2}')]
    pub.close()


def test_embedded_broker_port_taken_is_a_clear_error() -> None:
    from oneeye.errors import BrokerError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BrokerError, match=f"{port} is already in use"):
            EmbeddedBroker(port).start()
        with pytest.raises(BrokerError, match="already in use"):
            MosquittoBroker(port).start()
