"""End to end through the local stack: edge video → MQTT → rules → enrich_match → SNS →
signed HTTP delivery → dashboard → a logged-in Socket.IO desk; plus a clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from oneeye import sns
from oneeye.local.demo import lfw_customers, make_demo_video
from oneeye.local.probe import DeskClient, wait_http
from tests.http_support import SnsSink
from tests.net_support import free_port
from tests.wait import wait_until

PASSWORD = "e2e-demo-password"  # generated test secret, not a real credential
DEMO_CUSTOMERS = 3


@pytest.fixture
def stack(tmp_path: Path, data_dir: Path) -> Iterator[dict[str, Any]]:
    video = make_demo_video(tmp_path / "entrance.mp4", data_dir=data_dir, customers=1,
                            strangers=1, demo_customer_count=DEMO_CUSTOMERS)
    truth = json.loads(video.with_suffix(".truth.json").read_text())
    visitor = next(v["person"] for v in truth["visits"] if v["enrolled"])
    customer = lfw_customers(data_dir, DEMO_CUSTOMERS)[visitor]
    sink = SnsSink()
    ports = {name: free_port() for name in
             ("mqtt", "moto", "http", "dashboard", "customer-api", "smtp")}
    argv = [sys.executable, "-m", "oneeye.cli", "up", "--var-dir", str(tmp_path / "var"),
            "--edge-source", str(video), "--duration", "400", "--sns-endpoint", sink.url]
    for name, port in ports.items():
        argv += [f"--{name}-port", str(port)]
    env = {**os.environ, "ONEEYE_LOCAL__DEMO_PASSWORD": PASSWORD,
           "ONEEYE_LOCAL__DEMO_CUSTOMERS": str(DEMO_CUSTOMERS), "ONEEYE_DATA": str(data_dir),
           "ONEEYE_LOCAL__DATA_DIR": str(data_dir), "ONEEYE_EDGE__COOLDOWN_S": "5"}
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield {"proc": proc, "ports": ports, "customer": customer, "sink": sink,
               "var": tmp_path / "var", "log": tmp_path / "up.log"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
        sink.close()


@pytest.mark.slow
def test_enrolled_customer_on_video_reaches_the_desk(stack: dict[str, Any]) -> None:
    proc, ports = stack["proc"], stack["ports"]
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"

    def tail() -> str:
        return str(stack["log"].read_text()[-4000:])

    assert wait_http(f"{dashboard}/healthz", 240, alive=lambda: proc.poll() is None), tail()
    for port in (ports["http"], ports["customer-api"]):
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    desk = DeskClient(dashboard, "demo", PASSWORD).connect()
    customer = stack["customer"]
    try:
        record = desk.wait_for(lambda r: r["kind"] == "customer_arrived"
                               and (r["event"].get("customer") or {}).get("id") == customer.id,
                               timeout_s=300)
    finally:
        desk.close()
    assert record is not None, f"no desk card for {customer.id}:\n{tail()}"
    event = record["event"]
    assert event["customer"]["name"] == customer.name and not event["degraded"]
    assert f"/photos/{customer.id}.jpg?expires=" in event["customer"]["photo_url"]
    assert event["match"]["watchlist"] == "customers" and event["site_id"] == "site-1"

    # The same event reached the SNS-style endpoint: confirmation first, then signed
    # notifications that verify against the stack's pinned certificate, attributes kept.
    sink = stack["sink"]

    def delivered() -> list[dict[str, Any]]:
        return [m for m in list(sink.messages) if m["Type"] == "Notification"
                and json.loads(m["Message"])["event_id"] == record["event_id"]]

    wait_until(delivered, 60, "the event at the SNS-style endpoint", context=tail)
    msgs = list(sink.messages)
    assert msgs[0]["Type"] == "SubscriptionConfirmation"
    cert = (stack["var"] / "sns" / "signing-cert.pem").read_bytes()
    verifier = sns.Verifier({msgs[0]["TopicArn"]}, pinned_certs={msgs[0]["SigningCertURL"]: cert})
    for m in msgs:
        verifier.verify(m)
    same = delivered()
    assert same and same[0]["MessageAttributes"]["site_id"]["Value"] == "site-1"

    # SIGTERM stops the whole tree cleanly.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, tail()
    assert "local stack stopped" in tail()
