"""POST /sns through the real Flask app: what is accepted, stored, pushed, and refused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from dashboard import socketio_of
from dashboard.services import install, services_of
from oneeye import sns
from oneeye.types import utc_now
from tests.dashboard_helpers import (
    TOPIC,
    Signer,
    app_for,
    desk_event,
    login,
    post_sns,
)

AWS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"


def stored(app: Flask) -> list[dict[str, Any]]:
    return services_of(app).store.events.find(["branch-1", "branch-2"])


def aws_signed(app: Flask, version: str) -> tuple[dict[str, Any], list[str]]:
    """A message signed as if by AWS: the cert is 'fetched' from an SNS host (injected fetch)."""
    key, cert = sns.generate_signing_cert("sns.amazonaws.com")
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return cert
    install(app, replace(services_of(app), verifier=sns.Verifier([TOPIC], fetch=fetch)))
    msg = {"Type": "Notification", "MessageId": "x", "TopicArn": TOPIC,
           "Message": desk_event().to_json(), "Timestamp": utc_now()}
    return sns.sign(msg, key, AWS_CERT_URL, version), fetched


@pytest.mark.parametrize("version", ["1", "2"])
def test_valid_notification_is_stored_and_pushed_to_its_site(app: Flask, signer: Signer,
                                                             version: str) -> None:
    client = app.test_client()
    login(client, "alice")
    sock = socketio_of(app).test_client(app, flask_test_client=client)
    assert sock.is_connected()
    sock.get_received()
    event = desk_event()
    resp = post_sns(app.test_client(), signer.notification(event.to_json(), version=version,
                                                           site_attr="branch-1"))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["result"] == "stored"
    assert [r["event_id"] for r in stored(app)] == [event.event_id]
    pushed = [m for m in sock.get_received() if m["name"] == "desk_event"]
    assert len(pushed) == 1
    assert pushed[0]["args"][0]["event"]["customer"]["name"] == "Ada Lovelace"


@pytest.mark.parametrize("version", ["1", "2"])
def test_aws_style_cert_url_is_fetched_once_and_verified(app: Flask, version: str) -> None:
    msg, fetched = aws_signed(app, version)
    client = app.test_client()
    assert post_sns(client, msg).status_code == 200
    msg2 = {**msg}
    assert post_sns(client, msg2).get_json()["result"] == "duplicate"
    assert fetched == [AWS_CERT_URL]


def test_bad_signature_refused_and_nothing_stored(app: Flask, signer: Signer) -> None:
    msg = signer.notification(desk_event().to_json())
    msg["Message"] = desk_event(name="Mallory").to_json()
    resp = post_sns(app.test_client(), msg)
    assert resp.status_code == 403
    assert "does not verify" in resp.get_json()["reason"]
    assert stored(app) == []


def test_signature_by_a_stranger_refused(app: Flask) -> None:
    stranger = Signer()  # same pinned URL, different key
    resp = post_sns(app.test_client(), stranger.notification(desk_event().to_json()))
    assert resp.status_code == 403
    assert stored(app) == []


@pytest.mark.parametrize("cert_url", [
    "https://sns.eu-west-1.amazonaws.com.attacker.io/cert.pem",   # wrong host
    "https://attacker.io/SimpleNotificationService.pem",
    "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService.pem",  # http
])
def test_untrusted_cert_urls_refused(app: Flask, signer: Signer, cert_url: str) -> None:
    resp = post_sns(app.test_client(), signer.notification(desk_event().to_json(),
                                                           cert_url=cert_url))
    assert resp.status_code == 403
    assert "not an https SNS" in resp.get_json()["reason"]
    assert stored(app) == []


def test_unknown_topic_refused(app: Flask, signer: Signer) -> None:
    other = "arn:aws:sns:eu-west-1:123456789012:someone-elses-topic"
    resp = post_sns(app.test_client(), signer.notification(desk_event().to_json(), topic=other))
    assert resp.status_code == 403
    assert "not allowed" in resp.get_json()["reason"]


@pytest.fixture
def confirm_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<ConfirmSubscriptionResponse/>")

        def log_message(self, *args: Any) -> None:
            pass
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", hits
    server.shutdown()
    server.server_close()


def test_confirmation_for_allowed_topic_visits_subscribe_url(
        tmp_path: Path, signer: Signer, confirm_server: tuple[str, list[str]]) -> None:
    host, hits = confirm_server
    app = app_for(tmp_path, signer, confirm_hosts=[host])
    url = f"http://{host}/?Action=ConfirmSubscription&Token=tok-123"
    resp = post_sns(app.test_client(), signer.confirmation(url))
    assert resp.status_code == 200
    assert resp.get_json()["result"] == "confirmed"
    assert hits == ["/?Action=ConfirmSubscription&Token=tok-123"]


def test_confirmation_for_unknown_topic_is_not_visited(
        tmp_path: Path, signer: Signer, confirm_server: tuple[str, list[str]]) -> None:
    host, hits = confirm_server
    app = app_for(tmp_path, signer, confirm_hosts=[host])
    msg = signer.confirmation(f"http://{host}/?Action=ConfirmSubscription",
                              topic="arn:aws:sns:eu-west-1:123456789012:not-ours")
    resp = post_sns(app.test_client(), msg)
    assert resp.status_code == 403
    assert hits == []


def test_confirmation_with_non_sns_subscribe_url_is_not_visited(
        app: Flask, signer: Signer, confirm_server: tuple[str, list[str]]) -> None:
    host, hits = confirm_server  # a real server, but not listed in confirm_hosts
    resp = post_sns(app.test_client(), signer.confirmation(f"http://{host}/steal"))
    assert resp.status_code == 400
    assert hits == []


def test_confirmation_whose_endpoint_fails_is_4xx(tmp_path: Path, signer: Signer) -> None:
    app = app_for(tmp_path, signer, confirm_hosts=["127.0.0.1:9"])  # discard port: refused
    resp = post_sns(app.test_client(), signer.confirmation("http://127.0.0.1:9/?x=1"))
    assert resp.status_code == 424


def test_duplicate_event_stored_once_and_pushed_once(app: Flask, signer: Signer) -> None:
    client = app.test_client()
    login(client, "alice")
    sock = socketio_of(app).test_client(app, flask_test_client=client)
    sock.get_received()
    event = desk_event()
    first = post_sns(app.test_client(), signer.notification(event.to_json()))
    again = post_sns(app.test_client(), signer.notification(event.to_json()))  # SNS retry
    assert first.get_json()["result"] == "stored"
    assert again.status_code == 200 and again.get_json()["result"] == "duplicate"
    assert len(stored(app)) == 1
    assert len([m for m in sock.get_received() if m["name"] == "desk_event"]) == 1


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "rejected"),
])
def test_garbage_bodies_are_4xx(app: Flask, body: bytes, reason: str) -> None:
    resp = app.test_client().post("/sns", data=body)
    assert 400 <= resp.status_code < 500
    assert resp.get_json()["result"] == reason


def test_oversized_body_is_413(app: Flask) -> None:
    resp = app.test_client().post("/sns", data=b"x" * (600 * 1024))
    assert resp.status_code == 413


def test_type_header_must_match_body(app: Flask, signer: Signer) -> None:
    msg = signer.notification(desk_event().to_json())
    resp = app.test_client().post("/sns", data=json.dumps(msg),
                                  headers={"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert resp.status_code == 400


@pytest.mark.parametrize("message", [
    "not json at all",
    json.dumps({"schema": "oneeye.desk/2", "event_id": "0190aaaa-bbbb"}),
    json.dumps({"schema": "oneeye.match/1"}),
    json.dumps({"schema": "oneeye.desk/1", "kind": "customer_arrived"}),  # no site_id
])
def test_signed_but_invalid_desk_events_are_400(app: Flask, signer: Signer,
                                                message: str) -> None:
    resp = post_sns(app.test_client(), signer.notification(message))
    assert resp.status_code == 400
    assert resp.get_json()["result"] == "invalid event"
    assert stored(app) == []


def test_site_attribute_must_match_event(app: Flask, signer: Signer) -> None:
    msg = signer.notification(desk_event(site_id="branch-1").to_json(), site_attr="branch-2")
    assert post_sns(app.test_client(), msg).status_code == 400
    assert stored(app) == []


def test_unsubscribe_confirmation_is_noted(app: Flask, signer: Signer) -> None:
    msg = signer.confirmation("https://sns.eu-west-1.amazonaws.com/?Action=x")
    msg["Type"] = sns.UNSUBSCRIBE_CONFIRMATION
    msg = sns.sign(msg, signer.key_pem, signer.cert_url)
    resp = post_sns(app.test_client(), msg)
    assert resp.status_code == 200 and resp.get_json()["result"] == "noted"


def test_no_allowed_topics_rejects_everything(tmp_path: Path, signer: Signer) -> None:
    app = app_for(tmp_path, signer, allowed_topics=[])
    resp = post_sns(app.test_client(), signer.notification(desk_event().to_json()))
    assert resp.status_code == 403


@pytest.mark.parametrize("timestamp", ["2019-03-01T10:00:00.000Z", "FUTURE"])
def test_validly_signed_but_stale_or_future_message_is_refused(
        app: Flask, signer: Signer, caplog: pytest.LogCaptureFixture, timestamp: str) -> None:
    """Issue 13: a genuine message with a 2019 Timestamp must not become a banner today."""
    from datetime import UTC, datetime, timedelta

    from oneeye.types import format_time

    if timestamp == "FUTURE":
        timestamp = format_time(datetime.now(UTC) + timedelta(hours=2))
    msg = signer.notification(desk_event().to_json(), timestamp=timestamp)
    with caplog.at_level("WARNING", logger="dashboard.sns_endpoint"):
        resp = post_sns(app.test_client(), msg)
    assert resp.status_code == 403
    assert "stale" in resp.get_json()["reason"] or "future" in resp.get_json()["reason"]
    assert len([r for r in caplog.records if "rejected" in r.getMessage()]) == 1
    assert stored(app) == []


def test_replay_after_the_retention_purge_is_still_a_duplicate(app: Flask,
                                                              signer: Signer) -> None:
    event = desk_event()
    msg = signer.notification(event.to_json())
    assert post_sns(app.test_client(), msg).get_json()["result"] == "stored"
    store = services_of(app).store
    assert store.purge(0, ids_older_than_days=400) == 1 and stored(app) == []
    again = post_sns(app.test_client(), msg)
    assert again.status_code == 200 and again.get_json()["result"] == "duplicate"
    assert stored(app) == []
