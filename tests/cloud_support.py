"""Fixtures of the cloud tests: a moto *server*, fresh resources, SNS observers, a customer API,
an MQTT broker; the device messages and uploads the cloud tests send.

A pytest plugin registered in ``tests/conftest.py``: its fixtures (``moto_server``,
``cloud_env``, ``customer_api``, ``mqtt_broker``) reach every test by name; tests import the
classes and builders they use (``observe``, ``CustomerApiStub``, ``match``, ``put_upload`` …)
explicitly. The devices those messages speak for are registered by the conftest fixtures
``desk_device`` (``cam-dev-1``) and ``mall_devices`` (``mall3-cam``, ``mall4-cam``).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from oneeye import aws
from oneeye.cloud import grants
from oneeye.cloud.agencies import Agencies
from oneeye.cloud.dal import store
from oneeye.cloud.dal.agency_tokens import Agency
from oneeye.cloud.dal.resources import ensure_resources
from oneeye.events import utc_now
from oneeye.ids import new_id
from oneeye.local.broker import EmbeddedBroker
from tests.http_support import LoopbackServer, QuietHandler
from tests.net_support import free_port
from tests.paths import REPO
from tests.wait import wait_until


def load_app(name: str) -> Any:
    """A fresh import of ``cloud/lambdas/<name>/app.py``: a new container's cold start
    (settings validated, ``DEPS`` built anew)."""
    path = REPO / "cloud" / "lambdas" / name / "app.py"
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


# --- what devices and phones send ------------------------------------------------------------

#: A snapshot the sightings carry (a JPEG's markers around nothing).
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


def match(**over: Any) -> dict[str, Any]:
    """A customer match from ``cam-dev-1`` (registered by the ``desk_device`` fixture)."""
    base = {"schema": "oneeye.match/1", "event_id": new_id(), "device_id": "cam-dev-1",
            "site_id": "branch-12", "camera_id": "door", "observed_at": utc_now(),
            "person_id": "C-1042", "watchlist": "customers", "distance": 0.31, "margin": 0.12,
            "bbox": [10, 110, 110, 10], "track_id": 3, "frames_seen": 4, "gallery_version": 7,
            "iot_thing": "cam-dev-1"}
    base.update(over)
    return base


def health(**over: Any) -> dict[str, Any]:
    """A health report from ``cam-dev-1`` (registered by the ``desk_device`` fixture)."""
    base = {"schema": "oneeye.health/1", "event_id": new_id(), "device_id": "cam-dev-1",
            "site_id": "branch-12", "camera_id": "door", "sent_at": utc_now(),
            "uptime_s": 12.5, "fps": 14.2, "outbox_depth": 0,
            "gallery_versions": {"customers": 7}, "camera_state": "ok", "iot_thing": "cam-dev-1"}
    base.update(over)
    return base


def sighting(**over: Any) -> dict[str, Any]:
    """A missing-person match from ``mall3-cam`` (registered by the ``mall_devices`` fixture)."""
    base = {"schema": "oneeye.match/1", "event_id": new_id(), "device_id": "mall3-cam",
            "iot_thing": "mall3-cam", "site_id": "mall-3", "camera_id": "entrance-north",
            "observed_at": utc_now(),
            "person_id": "MP-2026-0042", "watchlist": "missing", "distance": 0.38,
            "margin": 0.09, "bbox": [10, 110, 110, 10], "track_id": 1, "frames_seen": 3,
            "gallery_version": 2, "snapshot_jpeg": base64.b64encode(JPEG).decode()}
    base.update(over)
    return base


def put_upload(env: dict[str, str], key: str, data: bytes, *, grant: bool = True,
               case_update: dict[str, Any] | None = None, **metadata: str) -> None:
    """Put an upload as its POST would; phone uploads get their grant first, as upload_url
    writes it (an agency token, ``status/{upload_id}.json``)."""
    if grant and key.startswith("uploads/missing/"):
        metadata.setdefault("agency", "met")
        add_grant(env, key, metadata["agency"], case_update=case_update)
    aws.client("s3").put_object(Bucket=env["ONEEYE_BUCKET"], Key=key, Body=data,
                                ContentType="image/jpeg", Metadata=metadata)


def add_grant(env: dict[str, str], key: str, agency: str, *, expires_in_s: int = 300,
              content_type: str = "image/jpeg",
              case_update: dict[str, Any] | None = None) -> Agency:
    """A fresh agency token and the grant upload_url would write for ``key``."""
    _, who = Agencies(env["AGENCIES_TABLE"]).add(agency)
    upload_id = grants.upload_id_of(key)
    assert upload_id, key
    store.Bucket(env["ONEEYE_BUCKET"]).put_json(f"status/{upload_id}.json", grants.record(
        upload_id=upload_id, case_id=key.split("/")[2], key=key, agency=who.name,
        token_sha256=who.token_sha256, content_type=content_type,
        expires_at=int(time.time()) + expires_in_s, updated_at=utc_now(),
        case_update=case_update))
    return who


def run_queue(env: dict[str, str]) -> list[dict[str, Any]]:
    """Deliver what S3 put on the indexer queue to the handler, Lambda-style."""
    run = load_handler("gallery_indexer")
    sqs = aws.client("sqs")
    results: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                                   MaxNumberOfMessages=1).get("Messages", [])
        if not msgs:
            return [r for r in results if r.get("status") != "ignored"]
        m = msgs[0]
        event = {"Records": [{"eventSource": "aws:sqs", "messageId": m["MessageId"],
                              "body": m["Body"], "receiptHandle": m["ReceiptHandle"]}]}
        results.extend(run(event, None)["results"])
        sqs.delete_message(QueueUrl=env["INDEXER_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
