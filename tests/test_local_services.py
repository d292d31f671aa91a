"""Local stand-ins against a moto server: HTTP API (format 2.0, S3 proxy, SNS confirm,
static page), customer API, alerts outbox with the SMTP sink, port conflicts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from oneeye import aws
from oneeye.local import template as tpl
from oneeye.local.alert_outbox import AlertOutbox, SmtpSink, read, texts_of
from oneeye.local.customer_api import CustomerApi, demo_customers, enrol_photos
from oneeye.local.httpapi import HttpApi, apigw_event, apigw_response
from oneeye.local.lambdas import Lambdas
from oneeye.local.moto_server import tap_structured_messages
from tests.net_support import free_port
from tests.paths import REPO


def test_apigw_v2_event_and_response_rules() -> None:
    req = Request(EnvironBuilder(method="POST", path="/api/cases/MP-1/close",
                                 query_string="a=1&a=2&b=x", json={"x": 1},
                                 headers={"Authorization": "Bearer t",
                                          "Cookie": "s=1"}).get_environ())
    ev = apigw_event(req, tpl.HttpRoute("POST", "/api/cases/{case_id}/close", "F"),
                     {"case_id": "MP-1"})
    assert ev["version"] == "2.0" and ev["routeKey"] == "POST /api/cases/{case_id}/close"
    assert ev["pathParameters"] == {"case_id": "MP-1"}
    assert ev["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert ev["headers"]["authorization"] == "Bearer t" and "cookie" not in ev["headers"]
    assert ev["cookies"] == ["s=1"]
    assert json.loads(ev["body"]) == {"x": 1} and ev["isBase64Encoded"] is False
    assert ev["requestContext"]["http"]["method"] == "POST"
    binary = Request(EnvironBuilder(method="POST", path="/x", data=b"\xff\x00",
                                    content_type="image/jpeg").get_environ())
    assert apigw_event(binary, tpl.HttpRoute("POST", "/x", "F"), {})["isBase64Encoded"]
    assert apigw_response({"statusCode": 201, "headers": {"a": "b"}, "body": "hi"}) == (
        201, {"a": "b"}, b"hi")
    assert apigw_response({"ok": True}) == (200, {"content-type": "application/json"},
                                            b'{"ok": true}')
    assert apigw_response({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True})[2] == b"hi"


@pytest.fixture
def http_api(cloud_env: dict[str, str], moto_server: str) -> Iterator[str]:
    template = tpl.load(REPO / "cloud" / "template.yaml")
    confirmed: list[tuple[str, str]] = []

    def confirm(arn: str, token: str) -> str | None:
        confirmed.append((arn, token))
        return f"{arn}:sub" if token == "good" else None

    api = HttpApi(template.routes, Lambdas(template.functions), static_dir=REPO / "mobile_upload",
                  moto_url=moto_server, upload_bucket=cloud_env["ONEEYE_BUCKET"],
                  confirm=confirm, unsubscribe=lambda arn: arn == "known")
    port = free_port()
    api.serve("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


def test_http_api_routes_proxy_and_edges(http_api: str, cloud_env: dict[str, str],
                                         examples: Path) -> None:
    from oneeye.cloud.agencies import Agencies

    assert requests.get(f"{http_api}/healthz", timeout=5).json() == {"ok": True}
    page = requests.get(f"{http_api}/", timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert requests.get(f"{http_api}/../pyproject.toml", timeout=5).status_code == 404
    assert requests.get(f"{http_api}/%2e%2e/pyproject.toml", timeout=5).status_code == 404
    assert requests.get(f"{http_api}/api/nope", timeout=5).status_code == 404
    # no token → the handler's own 401, through the stand-in unchanged
    assert requests.post(f"{http_api}/api/uploads", json={"name": "X"}, timeout=10
                         ).status_code == 401
    token = Agencies(cloud_env["AGENCIES_TABLE"]).add("Test Agency")[0]
    grant = requests.post(f"{http_api}/api/uploads", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"name": "Test Person", "content_type": "image/jpeg",
                                "contact": "+44 20 7946 0958"}).json()
    assert grant["url"].startswith(f"{http_api}/s3-upload/"), grant
    photo = (examples / "obama_small.jpg").read_bytes()
    up = requests.post(grant["url"], data=grant["fields"], timeout=30,
                       files={"file": ("p.jpg", photo, "image/jpeg")})
    assert up.status_code in (200, 201, 204), up.text
    key = grant["fields"]["key"]
    got = aws.client("s3").get_object(Bucket=cloud_env["ONEEYE_BUCKET"], Key=key)
    assert got["Body"].read() == photo
    # the proxy only forwards presigned POSTs
    assert requests.get(f"{http_api}/s3-upload/x", timeout=5).status_code == 404
    # SNS SubscribeURL / UnsubscribeURL actions
    ok = requests.get(f"{http_api}/sns/confirm", timeout=5, params={
        "Action": "ConfirmSubscription", "TopicArn": "arn:t", "Token": "good"})
    assert ok.status_code == 200 and "<SubscriptionArn>arn:t:sub<" in ok.text
    assert requests.get(f"{http_api}/sns/confirm", timeout=5, params={
        "Action": "ConfirmSubscription", "TopicArn": "arn:t", "Token": "bad"}).status_code == 400
    assert requests.get(f"{http_api}/sns/confirm", timeout=5, params={
        "Action": "Unsubscribe", "SubscriptionArn": "known"}).status_code == 200
    assert requests.get(f"{http_api}/sns/confirm", timeout=5,
                        params={"Action": "Publish"}).status_code == 400


def test_customer_api_and_enrolment_keys(tmp_path: Path, data_dir: Path) -> None:
    customers = demo_customers(data_dir, 14)
    assert [c.id for c in customers[:2]] == ["C-1001", "C-1002"]
    assert len({c.id for c in customers}) == 14 and all(c.photos for c in customers)
    keys = [k for k, _ in enrol_photos(customers)]
    assert keys[0] == "uploads/customers/C-1001/1.jpg" and len(keys) == len(set(keys))
    port = free_port()
    now = [time.time()]
    api = CustomerApi(tmp_path / "c.sqlite3", api_key="k3y",
                      public_url=f"http://127.0.0.1:{port}", clock=lambda: now[0])
    api.seed(customers)
    api.serve("127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert requests.get(f"{base}/customers/C-1001", timeout=5).status_code == 401
        assert requests.get(f"{base}/customers/C-1001", headers={"x-api-key": "nope"},
                            timeout=5).status_code == 401
        assert requests.get(f"{base}/customers/C-9999", headers={"x-api-key": "k3y"},
                            timeout=5).status_code == 404
        rec = requests.get(f"{base}/customers/C-1001", headers={"x-api-key": "k3y"},
                           timeout=5).json()
        assert rec["id"] == "C-1001" and rec["name"] == customers[0].name
        photo = requests.get(rec["photo_url"], timeout=5)
        assert photo.status_code == 200 and photo.content == customers[0].photos[0].read_bytes()
        assert requests.get(f"{base}/photos/C-9999.jpg", headers={"x-api-key": "k3y"},
                            timeout=5).status_code == 404
        # Photos are personal data: no key and no valid signed link → 401.
        bare = rec["photo_url"].split("?")[0]
        assert requests.get(bare, timeout=5).status_code == 401
        assert requests.get(rec["photo_url"].replace("signature=", "signature=0"),
                            timeout=5).status_code == 401
        assert requests.get(bare, headers={"x-api-key": "k3y"}, timeout=5).status_code == 200
        now[0] += 8 * 86400  # the signed link lasts a week
        assert requests.get(rec["photo_url"], timeout=5).status_code == 401
        assert requests.post(f"{base}/customers/C-1001", timeout=5).status_code == 405
    finally:
        api.stop()


def test_alerts_reach_the_outbox_with_email_via_smtp_and_sms(
        tmp_path: Path, cloud_env: dict[str, str]) -> None:
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = cloud_env["ALERTS_TOPIC_ARN"]
    url = sqs.create_queue(QueueName=f"tap-{tmp_path.name[-20:]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    tap_structured_messages(arn)
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="duty@example.org")
    sns.subscribe(TopicArn=topic, Protocol="sms", Endpoint="+15555550100")
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="other-site@example.org",
                  Attributes={"FilterPolicy": json.dumps({"site_id": ["site-9"]})})
    structure = {"default": "long email text", "email": "long email text",
                 "sms": "ALERT MP-1: Jo seen site-1/cam-1 10:00Z. Details by email."}
    sns.publish(TopicArn=topic, Message=json.dumps(structure), MessageStructure="json",
                Subject="OneEye alert: Jo", MessageAttributes={
                    "site_id": {"DataType": "String", "StringValue": "site-1"}})
    body = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]["Body"]
    envelope: dict[str, Any] = json.loads(body)
    assert texts_of(envelope) == {"email": "long email text", "sms": structure["sms"]}
    port = free_port()
    sink = SmtpSink("127.0.0.1", port, tmp_path / "mail").start()
    try:
        outbox = AlertOutbox(tmp_path / "outbox.jsonl", topic_arn=topic, smtp_host="127.0.0.1",
                        smtp_port=port)
        assert outbox.handle_envelope(envelope) == 2
        assert outbox.handle_envelope(envelope) == 0  # a redelivered SQS message: no repeats
    finally:
        sink.stop()
    entries = read(tmp_path / "outbox.jsonl")
    assert sorted((e["kind"], e["to"]) for e in entries) == [
        ("email", "duty@example.org"), ("sms", "+15555550100")]
    sms = next(e for e in entries if e["kind"] == "sms")
    assert sms["body"] == structure["sms"] and sms["event_id"] == envelope["MessageId"]
    assert {e["site_id"] for e in entries} == {"site-1"}  # for the per-site outbox page
    mails = list((tmp_path / "mail").glob("*.eml"))
    assert len(mails) == 1 and b"long email text" in mails[0].read_bytes()
    assert b"Subject: OneEye alert: Jo" in mails[0].read_bytes()
    # a plain (non-structured) alert and a torn outbox line are handled too
    # (a plain text is cut to one GSM-7 segment: 157 characters and "...")
    assert texts_of({"Message": "x" * 200}) == {"email": "x" * 200, "sms": "x" * 157 + "..."}
    with (tmp_path / "outbox.jsonl").open("a") as f:
        f.write('{"kind": "sms", "to"')
    assert len(read(tmp_path / "outbox.jsonl")) == 2


def test_alert_with_smtp_down_raises_so_sqs_retries(tmp_path: Path,
                                                     cloud_env: dict[str, str]) -> None:
    topic = cloud_env["ALERTS_TOPIC_ARN"]
    aws.client("sns").subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.org")
    outbox = AlertOutbox(tmp_path / "o.jsonl", topic_arn=topic, smtp_host="127.0.0.1",
                    smtp_port=free_port())
    with pytest.raises(OSError):
        outbox.handle_envelope({"MessageId": "m1", "Message": "hi", "TopicArn": topic})
    assert read(tmp_path / "o.jsonl") == []


def test_a_taken_port_fails_clearly_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "oneeye.cli", "up", "--var-dir",
                              str(tmp_path / "var"), "--http-port", str(port), "--duration", "1",
                              "--moto-port", str(free_port()), "--mqtt-port", str(free_port()),
                              "--dashboard-port", str(free_port()), "--smtp-port",
                              str(free_port()), "--customer-api-port", str(free_port())],
                             capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 2, res.stderr
    assert f"port {port} (already in use) is needed for ports.http_api" in res.stderr
    assert "--http-port" in res.stderr and "ONEEYE_LOCAL__PORTS__HTTP_API" in res.stderr
    assert not (tmp_path / "var").exists()  # nothing was started or written


def test_every_generated_key_file_is_private(tmp_path: Path) -> None:
    """Keys the local stack and the dashboard generate under var/ are mode 0600."""
    import stat

    from dashboard.settings import DashboardSettings
    from oneeye import signing
    from oneeye.local.sns_delivery import Signer
    from oneeye.local.state import secret_file

    Signer(tmp_path / "sns", "us-east-1")
    secret_file(tmp_path / "customer_api_key")
    signing.ensure_key_file(tmp_path / "gallery-signing.key")
    DashboardSettings(var_dir=tmp_path / "dashboard").resolved_secret_key()
    keys = [tmp_path / "sns" / "signing-key.pem", tmp_path / "customer_api_key",
            tmp_path / "gallery-signing.key", tmp_path / "dashboard" / "secret_key"]
    assert {str(k.relative_to(tmp_path)): oct(stat.S_IMODE(k.stat().st_mode)) for k in keys} \
        == {str(k.relative_to(tmp_path)): "0o600" for k in keys}
