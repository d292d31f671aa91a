"""Fixtures of the cloud tests: a moto *server*, fresh resources, SNS observers, a customer API.

Imported by ``tests/test_cloud_*.py`` (``from tests.cloud_support import *``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from oneeye import aws
from oneeye.cloud.resources import ensure_resources
from oneeye.ids import new_id
from tests.conftest import free_port
from tests.http_support import LoopbackServer, QuietHandler

__all__ = [
    "CustomerApiStub",
    "MqttListener",
    "SnsObserver",
    "cloud_env",
    "customer_api",
    "moto_server",
    "mqtt_broker",
    "observe",
]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.pop("AWS_SESSION_TOKEN", None)
    aws.clear_cache()
    try:
        yield url
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        aws.clear_cache()


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
            "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")


@pytest.fixture
def cloud_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh resources per test (unique names), exported as the Lambdas' environment."""
    env = ensure_resources(f"t{new_id()[-12:]}")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GALLERY_NOTIFY", "none")
    return env


class SnsObserver:
    """An SQS queue subscribed to a topic: what SNS delivered, envelope and all."""

    def __init__(self, topic_arn: str) -> None:
        sqs = aws.client("sqs")
        self.url = sqs.create_queue(QueueName=f"obs-{new_id()[-12:]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs",
                                    Endpoint=arn["Attributes"]["QueueArn"])
        self.seen: list[dict[str, Any]] = []

    def drain(self, *, wait_s: float = 0.0) -> list[dict[str, Any]]:
        """Every envelope delivered so far (waiting up to ``wait_s`` for the first)."""
        sqs = aws.client("sqs")
        deadline = time.monotonic() + wait_s
        while True:
            resp = sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0)
            msgs = resp.get("Messages", [])
            for m in msgs:
                self.seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            if not msgs and (self.seen or time.monotonic() >= deadline):
                return self.seen
            if not msgs:
                time.sleep(0.05)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(e["Message"]) for e in self.drain()]


def observe(topic_arn: str) -> SnsObserver:
    return SnsObserver(topic_arn)


class CustomerApiStub(LoopbackServer):
    """A real HTTP customer API on 127.0.0.1 with switchable behaviour."""

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.mode = "ok"            # ok | down (503)
        self.requests: list[tuple[str, str | None]] = []
        self.api_key = "test-key-" + new_id()[-8:]
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                stub.requests.append((self.path, self.headers.get("x-api-key")))
                if self.headers.get("x-api-key") != stub.api_key:
                    return self.send_json(401, {"error": "bad key"})
                if stub.mode == "down":
                    return self.send_json(503, {"error": "down"})
                cid = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
                if cid not in stub.customers:
                    return self.send_json(404, {"error": "not found"})
                return self.send_json(200, stub.customers[cid])

        super().__init__(Handler)


@pytest.fixture
def customer_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[CustomerApiStub]:
    stub = CustomerApiStub()
    monkeypatch.setenv("CUSTOMER_API_URL", stub.url)
    monkeypatch.setenv("CUSTOMER_API_KEY", stub.api_key)
    yield stub
    stub.close()


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[str]:
    """An embedded amqtt broker on a free port (no mosquitto needed): ``mqtt://127.0.0.1:P``."""
    import asyncio
    import logging

    from amqtt.broker import Broker

    logging.getLogger("amqtt").setLevel(logging.WARNING)
    port = free_port()
    loop = asyncio.new_event_loop()
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "sys_interval": 0, "auth": {"allow-anonymous": True},
              "topic-check": {"enabled": False}}
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["broker"] = Broker(config, loop=loop)
        loop.run_until_complete(holder["broker"].start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="amqtt")
    thread.start()
    assert started.wait(15), "embedded MQTT broker did not start"
    yield f"mqtt://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(holder["broker"].shutdown(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


class MqttListener:
    """Subscribes to one topic and collects payloads."""

    def __init__(self, url: str, topic: str) -> None:
        import urllib.parse

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parsed = urllib.parse.urlparse(url)
        self.received: list[bytes] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{new_id()[-10:]}")
        self.client.on_message = lambda c, u, m: self.received.append(m.payload)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()
        assert subscribed.wait(10), "could not subscribe"

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
