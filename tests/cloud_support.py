"""Fixtures of the cloud tests: a moto *server*, fresh resources, SNS observers, a customer API,
an MQTT broker.

A pytest plugin registered in ``tests/conftest.py``: its fixtures (``moto_server``,
``cloud_env``, ``customer_api``, ``mqtt_broker``) reach every test by name; tests import the
classes they use (``observe``, ``CustomerApiStub``) explicitly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oneeye import aws
from oneeye.cloud.resources import ensure_resources
from oneeye.ids import new_id
from oneeye.local.broker import EmbeddedBroker
from tests.http_support import LoopbackServer, QuietHandler
from tests.net_support import free_port
from tests.wait import wait_until


def load_app(name: str) -> Any:
    """A fresh import of ``cloud/lambdas/<name>/app.py``: a new container's cold start
    (settings validated, ``DEPS`` built anew)."""
    path = Path(__file__).resolve().parents[1] / "cloud" / "lambdas" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{name}_{uuid.uuid4().hex}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handler(name: str) -> Any:
    """The ``handler`` of a fresh import of ``cloud/lambdas/<name>/app.py``."""
    return load_app(name).handler


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
        """Every envelope delivered so far; with ``wait_s`` > 0, wait that long for the first.

        Raises AssertionError when ``wait_s`` > 0 and nothing was delivered in time.
        """
        self._receive()
        if wait_s > 0:
            wait_until(lambda: self._receive() or self.seen, wait_s,
                       f"an SNS delivery to {self.url}")
        return self.seen

    def _receive(self) -> int:
        """Move every message waiting in the queue into :attr:`seen`; how many there were."""
        sqs = aws.client("sqs")
        got = 0
        while msgs := sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=0).get("Messages", []):
            for m in msgs:
                self.seen.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
            got += len(msgs)
        return got

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
    """The local stack's embedded amqtt broker on a free port: ``mqtt://127.0.0.1:P``."""
    with EmbeddedBroker(free_port()) as broker:
        yield broker.url
