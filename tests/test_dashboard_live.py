"""Live delivery: reconnect catch-up, device offline, Redis fan-out across two real processes."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
import yaml
from flask import Flask
from websockets.sync.client import connect as ws_connect

from dashboard import socketio_of
from dashboard.services import services_of
from dashboard.store import open_store
from oneeye.events import HealthEvent, utc_now
from tests.dashboard_helpers import (
    Signer,
    csrf_from,
    desk_event,
    login,
    make_settings,
    post_sns,
    start_dashboard,
    wait_dashboard_ready,
)
from tests.net_support import free_port
from tests.wait import ManualClock


def test_reconnect_catch_up(app: Flask, signer: Signer) -> None:
    client = app.test_client()
    login(client, "alice")
    sio = socketio_of(app)
    sock = sio.test_client(app, flask_test_client=client)
    sock.get_received()
    seen = desk_event(name="Seen live")
    post_sns(app.test_client(), signer.notification(seen.to_json()))
    [live] = [m["args"][0] for m in sock.get_received() if m["name"] == "desk_event"]
    sock.disconnect()
    missed = [desk_event(name=f"Missed {i}") for i in range(3)]
    for event in missed:
        post_sns(app.test_client(), signer.notification(event.to_json()))
    sock = sio.test_client(app, flask_test_client=client)
    assert sock.is_connected()
    assert [m for m in sock.get_received() if m["name"] == "desk_event"] == []
    caught = client.get(f"/api/events?after={live['event_id']}").get_json()["events"]
    assert [r["event_id"] for r in caught] == [e.event_id for e in missed]


def test_a_silent_device_stays_as_the_cloud_last_said(app: Flask, signer: Signer,
                                                       clock: ManualClock) -> None:
    health = HealthEvent(device_id="cam-1", site_id="branch-1", camera_id="cam-1",
                         sent_at=utc_now(), uptime_s=3, fps=12.0)
    post_sns(app.test_client(), signer.notification(
        desk_event(kind="device_status", device_id="cam-1", health=health).to_json()))
    client = app.test_client()
    login(client, "alice")
    [dev] = client.get("/api/devices").get_json()["devices"]
    assert dev["online"] and dev["fps"] == 12.0
    clock.advance(services_of(app).settings.offline_after_s + 1)
    [dev] = client.get("/api/devices").get_json()["devices"]
    # no timer here: device_status comes every few minutes, offline is the cloud's call
    assert dev["online"] and dev["state"] == "online" and dev["age_s"] > 90


# --- two real processes sharing broadcasts through Redis -------------------------------------

@pytest.fixture
def two_dashboards(tmp_path: Path, signer: Signer) -> Iterator[tuple[str, str]]:
    channel = "oneeye-test-" + secrets.token_hex(4)  # Redis pub/sub ignores db numbers
    settings = make_settings(tmp_path, signer, message_queue="redis://127.0.0.1:6379/0",
                             message_queue_channel=channel)
    config = tmp_path / "dashboard.yaml"
    config.write_text(yaml.safe_dump(json.loads(settings.model_dump_json())))
    store = open_store(settings.resolved_database_url())
    from dashboard.auth import hash_password
    store.users.create("alice", hash_password("correct horse battery"), ["branch-1"])
    store.close()
    settings.resolved_secret_key()  # both processes share one session key, like a fleet
    procs, urls = [], []
    # A runs the default threading server, B the gevent one: both paths serve real clients
    for name, mode in (("a", "threading"), ("b", "gevent")):
        port = free_port()
        log = tmp_path / f"dashboard-{name}.log"
        procs.append((start_dashboard(config, port, log, mode), log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (proc, log), url in zip(procs, urls, strict=True):
            wait_dashboard_ready(url, proc, log)
        modes = [requests.get(u + "/healthz", timeout=5).json()["async_mode"] for u in urls]
        assert modes == ["threading", "gevent"]
        yield urls[0], urls[1]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(timeout=10)


def _http_login(url: str) -> requests.Session:
    session = requests.Session()
    token = csrf_from(session.get(url + "/login", timeout=5).text)
    resp = session.post(url + "/login", data={"username": "alice", "csrf_token": token,
                                              "password": "correct horse battery"}, timeout=5)
    assert resp.status_code == 200 and "Arrivals" in resp.text
    return session


def test_redis_fan_out_across_two_processes(two_dashboards: tuple[str, str],
                                            signer: Signer) -> None:
    url_a, url_b = two_dashboards
    for url in (url_a, url_b):  # both servers decline per-client deflate (a CPU choice)
        ws_url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        with ws_connect(ws_url, compression="deflate") as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            assert ws.recv(timeout=5).startswith("0")
    session = _http_login(url_b)
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    received: list[dict[str, Any]] = []
    got = threading.Event()
    client = socketio.Client(reconnection=False)

    @client.on("desk_event")
    def on_event(record: dict[str, Any]) -> None:
        received.append(record)
        got.set()

    client.connect(url_b, headers={"Cookie": cookie}, transports=["websocket"],
                   wait_timeout=10)
    try:
        # refused without the cookie, on either process
        anonymous = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            anonymous.connect(url_a, transports=["websocket"], wait_timeout=5)
        event = desk_event(name="Fan Out")
        msg = signer.notification(event.to_json())
        resp = requests.post(url_a + "/sns", data=json.dumps(msg), timeout=10,
                             headers={"x-amz-sns-message-type": "Notification"})
        assert resp.status_code == 200, resp.text
        assert got.wait(20), "process B never delivered the event posted to process A"
        assert [r["event_id"] for r in received] == [event.event_id]
        other_site = desk_event(site_id="branch-2")
        requests.post(url_a + "/sns", timeout=10,
                      data=json.dumps(signer.notification(other_site.to_json())))
        follow = desk_event(name="Second")
        got.clear()
        requests.post(url_a + "/sns", data=json.dumps(signer.notification(follow.to_json())),
                      timeout=10)
        assert got.wait(20)
        assert [r["event_id"] for r in received] == [event.event_id, follow.event_id]
    finally:
        client.disconnect()


def test_closing_the_store_stops_the_apps_background_checks(tmp_path: Path,
                                                            signer: Signer) -> None:
    """The socket login check runs every 2 s on the app's store; once the store is closed
    (its database may be gone: a test's PostgreSQL schema, a shut-down process) the loop
    ends instead of logging a failed query every 2 s for the rest of the process."""
    from tests.dashboard_helpers import app_for
    from tests.wait import wait_until

    def checks() -> set[threading.Thread]:
        return {t for t in threading.enumerate()
                if "_socket_check_loop" in t.name and t.is_alive()}

    before = checks()
    app = app_for(tmp_path, signer)
    [mine] = wait_until(lambda: list(checks() - before) or None, 10, "the app's check loop")
    services_of(app).store.close()
    wait_until(lambda: not mine.is_alive(), 15, "the check loop to end after close")
