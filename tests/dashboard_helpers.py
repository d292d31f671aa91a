"""Shared builders for the dashboard tests: signed SNS deliveries, desk events, apps, and
dashboard processes (``serve_dashboard``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard import DashboardSettings, create_app
from dashboard.auth import hash_password
from dashboard.services import services_of
from dashboard.store import open_store
from oneeye import sns
from oneeye.events import DeskEvent, MatchEvent, utc_now
from oneeye.ids import new_id
from oneeye.local.probe import wait_http
from oneeye.types import Clock
from tests.paths import REPO

TOPIC = "arn:aws:sns:eu-west-1:123456789012:oneeye-desk"
LOCAL_CERT_URL = "http://127.0.0.1:9/oneeye-local/signing-cert.pem"
PASSWORD = "correct horse battery"


class Signer:
    """The test's own SNS: a generated key + certificate, pinned by URL in the app."""

    def __init__(self, cert_url: str = LOCAL_CERT_URL, topic: str = TOPIC) -> None:
        self.key_pem, self.cert_pem = sns.generate_signing_cert("oneeye-local-sns")
        self.cert_url, self.topic = cert_url, topic

    def write_cert(self, directory: Path) -> Path:
        path = directory / "sns-cert.pem"
        path.write_bytes(self.cert_pem)
        return path

    def notification(self, message: str, *, version: str = "2", topic: str | None = None,
                     site_attr: str | None = None, cert_url: str | None = None,
                     timestamp: str | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "Type": "Notification", "MessageId": new_id(), "TopicArn": topic or self.topic,
            "Message": message, "Timestamp": timestamp or utc_now(),
        }
        if site_attr is not None:
            msg["MessageAttributes"] = {"site_id": {"Type": "String", "Value": site_attr}}
        return sns.sign(msg, self.key_pem, cert_url or self.cert_url, version)

    def confirmation(self, subscribe_url: str, *, topic: str | None = None) -> dict[str, Any]:
        msg = {"Type": "SubscriptionConfirmation", "MessageId": new_id(),
               "TopicArn": topic or self.topic, "Token": "tok-123",
               "Message": "You have chosen to subscribe to the topic.",
               "SubscribeURL": subscribe_url, "Timestamp": utc_now()}
        return sns.sign(msg, self.key_pem, self.cert_url)


def desk_event(site_id: str = "branch-1", kind: str = "customer_arrived", *,
               person_id: str = "C-1042", name: str | None = "Ada Lovelace",
               device_id: str = "cam-door-1", **extra: Any) -> DeskEvent:
    watchlist = "missing" if kind == "missing_person_sighted" else "customers"
    match = MatchEvent(device_id=device_id, site_id=site_id, camera_id=device_id,
                       observed_at=utc_now(), person_id=person_id, watchlist=watchlist,
                       distance=0.38, margin=0.2, bbox=(10, 110, 110, 10), track_id=1,
                       frames_seen=3, gallery_version=4)
    details: dict[str, Any] = {}
    if kind == "customer_arrived" and name:
        details["customer"] = {"id": person_id, "name": name, "segment": "Premier",
                               "notes": "Prefers English", "photo_url": None}
    if kind == "missing_person_sighted":
        details["case"] = {"id": person_id, "name": name, "agency": "County Police",
                           "contact": "+1 555 0100"}
    return DeskEvent(kind=kind, site_id=site_id, observed_at=utc_now(), device_id=device_id,
                     match=match if kind in ("customer_arrived", "missing_person_sighted")
                     else None, **details, **extra)


def post_sns(client: FlaskClient, msg: dict[str, Any]) -> Any:
    return client.post("/sns", data=json.dumps(msg), content_type="text/plain; charset=UTF-8",
                       headers={"x-amz-sns-message-type": str(msg.get("Type")),
                                "x-amz-sns-topic-arn": str(msg.get("TopicArn"))})


def client_of(app: Flask, name: str) -> tuple[FlaskClient, str]:
    """A test client of ``app`` logged in as ``name`` and its CSRF token."""
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client, csrf_from(client.get("/login").get_data(as_text=True))


def push(app: Flask, signer: Signer, event: DeskEvent) -> None:
    """``event`` delivered to ``app``'s /sns as SNS would (signed by ``signer``), stored."""
    resp = post_sns(app.test_client(), signer.notification(event.to_json()))
    assert resp.status_code == 200, resp.get_json()


def make_settings(tmp_path: Path, signer: Signer, **extra: Any) -> DashboardSettings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var", "allowed_topics": [signer.topic],
        "pinned_certs": {signer.cert_url: str(signer.write_cert(tmp_path))},
        "session_cookie_secure": False,
        # in-process apps under Flask's test client: no gevent monkey-patching here
        "async_mode": "threading",
    }
    values.update(extra)
    return DashboardSettings.model_validate(values)


def add_user(app: Flask, name: str, sites: list[str], password: str = PASSWORD) -> None:
    services_of(app).store.users.create(name, hash_password(password), sites)


def login(client: FlaskClient, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token})


def csrf_from(html: str) -> str:
    marker = 'name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def app_for(tmp_path: Path, signer: Signer, *, clock: Clock = time.time, **extra: Any) -> Flask:
    """A dashboard app on ``tmp_path`` trusting ``signer``; ``extra`` are settings."""
    return create_app(make_settings(tmp_path, signer, **extra), clock=clock)


def start_dashboard(config: Path, port: int, log: Path,
                    async_mode: str = "threading") -> subprocess.Popen[bytes]:
    """``oneeye dashboard run`` as a real process on 127.0.0.1:``port``, output to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "oneeye.cli", "dashboard", "run", "--port", str(port),
             "--config", str(config), "--async-mode", async_mode], cwd=REPO, env=env,
            stdout=out, stderr=subprocess.STDOUT)


def wait_dashboard_ready(url: str, proc: subprocess.Popen[bytes], log: Path,
                         timeout_s: float = 120.0) -> None:
    """Wait until ``url``/healthz answers 200; fail with the log's tail if the process exits."""
    if not wait_http(url + "/healthz", timeout_s, alive=lambda: proc.poll() is None):
        state = "exited" if proc.poll() is not None else f"not ready in {timeout_s:g} s"
        pytest.fail(f"dashboard {state}: {log.read_text(errors='replace')[-2000:]}")


def serve_dashboard(tmp_path: Path, port: int, **extra: Any) -> Iterator[tuple[str, Signer]]:
    """A dashboard process on ``port`` with users alice (teller, branch-1), ada (branch
    admin, branch-1) and olga (County Police officer); ``extra`` are settings."""
    signer = Signer()
    settings = make_settings(tmp_path, signer, **extra)
    config = tmp_path / "dashboard.json"
    config.write_text(settings.model_dump_json())
    store = open_store(settings.resolved_database_url())
    digest = hash_password(PASSWORD)
    store.users.create("alice", digest, ["branch-1"])
    store.users.create("ada", digest, ["branch-1"], role="branch_admin")
    store.users.create("olga", digest, [], role="agency_officer", agency="County Police")
    store.close()
    log = tmp_path / "dashboard.log"
    proc = start_dashboard(config, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_dashboard_ready(url, proc, log)
        yield url, signer
    finally:
        proc.terminate()
        proc.wait(timeout=10)
