"""A small stand-in for the HTTP API + indexer, for the amber-alert tests.

:class:`AmberHarness` serves ``mobile_upload/`` at ``/`` and maps the four
agency routes to the real handlers in ``cloud/lambdas/*/app.py`` with API
Gateway payload-2.0 events (real HTTP on 127.0.0.1); :class:`IndexerPump`
long-polls the indexer queue of the moto server and runs the real
gallery_indexer handler logic on each message, deleting it only on success —
what SQS → Lambda does. Used where the local stack is not needed in full.
"""

from __future__ import annotations

import json
import mimetypes
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from oneeye import aws
from oneeye.cloud.functions import gallery_indexer
from oneeye.local.alert_outbox import ALERT_OUTBOX_FILE
from tests.cloud_support import load_handler
from tests.http_support import LoopbackServer, QuietHandler, SnsSink
from tests.net_support import free_port
from tests.paths import REPO
from tests.wait import wait_until

PAGE = REPO / "mobile_upload"

ROUTES = [
    ("POST", "/api/uploads", "upload_url"),
    ("GET", "/api/uploads/{upload_id}", "upload_status"),
    ("GET", "/api/cases", "cases"),
    ("POST", "/api/cases/{case_id}/close", "cases"),
]


def _compile(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def make_event(method: str, path: str, *, route: str = "$default", headers: dict[str, str]
               | None = None, body: bytes = b"", params: dict[str, str] | None = None,
               query: str = "") -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event."""
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    return {
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": query,
        "headers": hdrs,
        "queryStringParameters": dict(parse_qsl(query)) or None,
        "pathParameters": params or None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": hdrs.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": route, "stage": "$default",
            "timeEpoch": int(time.time() * 1000)},
        "body": body.decode() if body else None, "isBase64Encoded": False,
    }


class AmberHarness(LoopbackServer):
    def __init__(self) -> None:
        handlers = {n: load_handler(n) for n in {r[2] for r in ROUTES}}
        routes = [(m, p, _compile(p), handlers[n]) for m, p, n in ROUTES]
        self.calls: list[tuple[str, str, int]] = []
        harness = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                for m, template, rx, fn in routes:
                    match = rx.match(parts.path)
                    if m == method and match:
                        event = make_event(method, parts.path, route=f"{m} {template}",
                                           headers=dict(self.headers.items()), body=body,
                                           params=match.groupdict(), query=parts.query)
                        out = fn(event, None)
                        harness.calls.append((method, parts.path, out["statusCode"]))
                        return self.send(out["statusCode"], out["body"].encode(),
                                          out.get("headers", {}))
                if method == "GET" and not parts.path.startswith("/api/"):
                    return self._static(parts.path)
                return self.send(404, b'{"error":"no_route"}',
                                  {"Content-Type": "application/json"})

            def _static(self, path: str) -> None:
                rel = path.lstrip("/") or "index.html"
                file = (PAGE / rel).resolve()
                if PAGE.resolve() not in file.parents or not file.is_file():
                    return self.send(404, b"not found", {"Content-Type": "text/plain"})
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                return self.send(200, file.read_bytes(), {"Content-Type": ctype})

        super().__init__(Handler)


class IndexerPump:
    """SQS → gallery_indexer, like the Lambda event source mapping (batch size 1)."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.deps = gallery_indexer.indexer_from_env()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="indexer-pump")
        self._thread.start()

    def _run(self) -> None:
        sqs = aws.client("sqs")
        while not self._stop.is_set():
            try:
                resp = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                           WaitTimeSeconds=0)
            except Exception as exc:  # the moto server is going away at teardown
                self.errors.append(repr(exc))
                self._stop.wait(0.2)
                continue
            if not resp.get("Messages"):
                self._stop.wait(0.1)
            for msg in resp.get("Messages", []):
                event = {"Records": [{"eventSource": "aws:sqs", "body": msg["Body"],
                                      "messageId": msg["MessageId"]}]}
                try:
                    self.results.extend(gallery_indexer.handle(event, self.deps))
                except Exception as exc:
                    self.errors.append(repr(exc))
                    continue
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
        """The first indexer result for which ``predicate`` holds (waiting up to ``timeout`` s)."""
        found: dict[str, Any] = wait_until(
            lambda: next((r for r in list(self.results) if predicate(r)), None), timeout,
            "a matching indexer result",
            context=lambda: f"results={self.results} errors={self.errors}")
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the whole local stack (`oneeye up` as a subprocess), for the e2e test and bench/amber.py --

class MatchWatcher:
    """Records every match event the edge publishes (paho on the stack's broker)."""

    def __init__(self, mqtt_url: str) -> None:
        from oneeye.local.mqtt import Subscriber

        self.matches: list[tuple[float, dict[str, Any]]] = []
        self.gallery_updates: list[tuple[float, dict[str, Any]]] = []
        self._sub = Subscriber(mqtt_url, ["oneeye/devices/+/matches", "oneeye/gallery/updated"],
                               self._on, name="amber-watch").start()

    def _on(self, topic: str, payload: bytes) -> None:
        data = json.loads(payload)
        (self.gallery_updates if topic.startswith("oneeye/gallery") else self.matches).append(
            (time.time(), data))

    def close(self) -> None:
        self._sub.stop()


class AmberStack:
    """``oneeye up`` (no dashboard, no customer enrolment) with the edge looping ``video``."""

    def __init__(self, var: Path, video: Path, data_dir: Path) -> None:
        import os
        import subprocess
        import sys

        self.var = var
        self.sink = SnsSink()
        self.ports = {n: free_port() for n in ("mqtt", "moto", "http", "customer-api", "smtp")}
        argv = [sys.executable, "-m", "oneeye.cli", "up", "--var-dir", str(var),
                "--edge-source", str(video), "--no-dashboard", "--duration", "900",
                "--sns-endpoint", self.sink.url]
        for name, p in self.ports.items():
            argv += [f"--{name}-port", str(p)]
        env = {**os.environ, "ONEEYE_LOCAL__ENROL_CUSTOMERS": "false",
               "ONEEYE_LOCAL__DEMO_CUSTOMERS": "1", "ONEEYE_LOCAL__DATA_DIR": str(data_dir),
               "ONEEYE_EDGE__COOLDOWN_S": "5", "PYTHONUNBUFFERED": "1"}
        for k in ("AWS_ENDPOINT_URL", "ONEEYE_STACK_FILE"):
            env.pop(k, None)
        self.log_path = var.parent / "up.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.api = f"http://127.0.0.1:{self.ports['http']}"
        self.mqtt = f"mqtt://127.0.0.1:{self.ports['mqtt']}"
        self.stack_file = var / "stack.json"

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def wait_ready(self, timeout_s: float = 240) -> None:
        import requests

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"oneeye up exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                return self.stack_file.is_file() and requests.get(
                    f"{self.api}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout_s, "the local stack to be ready", interval_s=0.3,
                   context=self.tail)

    def cli(self, *args: str) -> str:
        """Run ``oneeye ARGS --stack-file …`` against this stack; returns stdout."""
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        out = subprocess.run([sys.executable, "-m", "oneeye.cli", *args, "--stack-file",
                              str(self.stack_file)], env=env, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise AssertionError(f"oneeye {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def upload(self, token: str, photo: Path, **form: Any) -> dict[str, Any]:
        """What the phone does: ask for a presigned POST, send the photo. Returns the grant."""
        import requests

        data = photo.read_bytes()
        grant: dict[str, Any] = requests.post(
            f"{self.api}/api/uploads", headers=auth(token), timeout=60,
            json={"content_type": "image/jpeg", "size": len(data), "contact": "+44 20 7946 0958",
                  **form}).json()
        resp = requests.post(grant["url"], data=grant["fields"], timeout=60,
                             files={"file": (photo.name, data, "image/jpeg")})
        if resp.status_code != 204:
            raise AssertionError(f"presigned POST answered {resp.status_code}: {resp.text}")
        return grant

    def status(self, token: str, upload_id: str) -> dict[str, Any]:
        import requests

        body: dict[str, Any] = requests.get(f"{self.api}/api/uploads/{upload_id}",
                                            headers=auth(token), timeout=60).json()
        return body

    def outbox(self) -> list[dict[str, Any]]:
        """What the stack's alert outbox holds (the emails and SMS it "sent")."""
        path = self.var / ALERT_OUTBOX_FILE
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except Exception:
                self.proc.kill()
                self.proc.wait(30)
        self._log.close()
        self.sink.close()



class PhoneApi:
    """The local stack's HTTP API stand-in serving the phone page (oneeye/local/httpapi.py:
    routes from cloud/template.yaml, the real handlers, the same-origin /s3-upload proxy to
    moto, ``mobile_upload/``) and the real gallery indexer fed from the indexer queue.
    ``url`` is the phone page; close it when done."""

    def __init__(self, cloud_env: dict[str, str], moto_server: str) -> None:
        from oneeye.local import template as tpl
        from oneeye.local.httpapi import HttpApi
        from oneeye.local.lambdas import Lambdas

        template = tpl.load(REPO / "cloud" / "template.yaml")
        # The proxy must front the S3 endpoint the in-process Lambdas presign against: the
        # environment's (every in-process moto server shares one state, and earlier tests in
        # this process may have pointed the environment at another of them).
        s3_url = aws.endpoint_url("s3") or moto_server
        self.api = HttpApi(template.routes, Lambdas(template.functions), static_dir=PAGE,
                           moto_url=s3_url, upload_bucket=cloud_env["ONEEYE_BUCKET"],
                           confirm=lambda arn, token: None, unsubscribe=lambda arn: False)
        port = free_port()
        self.api.serve("127.0.0.1", port)
        self.url = f"http://127.0.0.1:{port}/"
        self.pump = IndexerPump(cloud_env["INDEXER_QUEUE_URL"])

    def close(self) -> None:
        self.pump.close()
        self.api.stop()
