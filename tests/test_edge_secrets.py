"""A camera URL's user:password never reaches a log line, a health message or a page.

Every RTSP camera needs ``rtsp://user:password@host/…``; logs are shared for support and
forwarded to CloudWatch (field case ``rtsp-credentials-in-logs``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oneeye.types import redact_url
from tests.mqtt_support import Subscriber, make_broker, stop_broker
from tests.net_support import free_port

ONEEYE = [sys.executable, "-m", "oneeye.cli"]
SECRET = "S3cretPass"


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:S3cretPass@10.0.0.5:554/stream1", "rtsp://***@10.0.0.5:554/stream1"),
    ("rtsp://admin@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),            # user only
    ("rtsp://:pw@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),              # password only
    ("http://u:p%40ss@cam.local/mjpg?x=1", "http://***@cam.local/mjpg?x=1"),  # escaped @
    ("rtsp://10.0.0.5/s?user=a", "rtsp://10.0.0.5/s?user=a"),        # nothing to mask
    ("clip.mp4", "clip.mp4"), ("0", "0"), ("ipc", "ipc"),
    ("source rtsp://a:b@h/1 and mqtt://c:d@h:1883 down",             # a whole log line
     "source rtsp://***@h/1 and mqtt://***@h:1883 down"),
    ("mailto-like a@b.c stays", "mailto-like a@b.c stays"),          # no scheme, no URL
])
def test_redact_url_masks_user_info_and_nothing_else(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("log_json", [False, True], ids=["plain-log", "json-log"])
def test_edge_with_a_password_in_its_source_url_never_logs_or_reports_it(
        miranda_gallery: Path, tmp_path: Path, log_json: bool) -> None:
    broker = make_broker("amqtt", tmp_path)
    broker.start()
    health = Subscriber(broker.port, "oneeye/devices/+/health")
    dead_port = free_port()   # nothing listens: the edge logs its start and every retry
    env = {**os.environ, "ONEEYE_EDGE__HEALTH__INTERVAL_S": "1",
           "ONEEYE_EDGE__OUTBOX__PATH": str(tmp_path / "outbox.sqlite3")}
    try:
        proc = subprocess.run(
            [*ONEEYE, *(["--log-json"] if log_json else []), "edge",
             "--source", f"door=rtsp://admin:{SECRET}@127.0.0.1:{dead_port}/x",
             "--gallery", str(miranda_gallery), "--duration", "6",
             "--publish", f"mqtt://127.0.0.1:{broker.port}"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
        health.payloads(1, timeout=30)
    finally:
        health.close()
        stop_broker(broker)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert f"source rtsp://***@127.0.0.1:{dead_port}/x (live)" in log       # the start line
    assert f"rtsp://***@127.0.0.1:{dead_port}/x: reconnecting" in log       # a retry warning
    if log_json:
        assert log.lstrip().startswith("{")
    assert SECRET not in log and "admin:" not in log
    reports = [p.decode() for _, p in health.messages]
    assert reports and all(SECRET not in r for r in reports)
