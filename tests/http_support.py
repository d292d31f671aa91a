"""Real HTTP on 127.0.0.1 for test stand-ins: customer API, API Gateway harness, SNS
subscribers, a file server."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from oneeye.types import utc_now

if TYPE_CHECKING:
    from oneeye.local.sns_delivery import SnsDelivery


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers with one call and keeps test output clean."""

    def send(self, code: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, code: int, body: Any) -> None:
        self.send(code, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """A threading HTTP server on a free loopback port, served from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FileServer(LoopbackServer):
    """The files under ``root`` over loopback HTTP (a photo server's stand-in)."""

    def __init__(self, root: Path) -> None:
        class Files(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(Files)


class SnsSink(LoopbackServer):
    """An SNS-style HTTP subscriber of the desk topic: confirms, then records notifications."""

    def __init__(self) -> None:
        import requests

        self.messages: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        outer = self

        class H(QuietHandler):
            def do_POST(self) -> None:
                msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if msg.get("Type") == "SubscriptionConfirmation":
                    requests.get(msg["SubscribeURL"], timeout=10).raise_for_status()
                outer.messages.append(msg)
                outer.received_at.append(time.time())
                self.send(200, b"", {})

        super().__init__(H)
        self.url += "/sns"

    def desk_events(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, json.loads(m["Message"])) for t, m in
                zip(list(self.received_at), list(self.messages), strict=False)
                if m.get("Type") == "Notification"]


#: The desk topic the local stack's SNS delivers (``Endpoint`` tests, ``envelope``).
TOPIC = "arn:aws:sns:us-east-1:123456789012:oneeye-desk"


class Endpoint:
    """An SNS subscriber: records every POST, confirms by visiting SubscribeURL via ``delivery``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.got = threading.Condition()
        self.server: ThreadingHTTPServer | None = None
        self.confirm_with: SnsDelivery | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sns"

    def start(self) -> None:
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                msg = json.loads(body)
                with outer.got:
                    outer.received.append((dict(self.headers), msg))
                    outer.got.notify_all()
                if msg["Type"] == "SubscriptionConfirmation" and outer.confirm_with:
                    q = parse_qs(urlsplit(msg["SubscribeURL"]).query)
                    outer.confirm_with.confirm(q["TopicArn"][0], q["Token"][0])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def wait_for(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The messages received once there are at least ``n`` (AssertionError on timeout)."""
        with self.got:
            if not self.got.wait_for(lambda: len(self.received) >= n, timeout):
                raise AssertionError(f"{len(self.received)} of {n} SNS messages in {timeout} s")
            return [m for _, m in self.received]


def envelope(message: str, site: str = "site-1", mid: str = "m-1") -> dict[str, Any]:
    """A notification on :data:`TOPIC` carrying ``site`` as its ``site_id`` attribute."""
    return {"Type": "Notification", "MessageId": mid, "TopicArn": TOPIC, "Message": message,
            "Timestamp": utc_now(),
            "MessageAttributes": {"site_id": {"Type": "String", "Value": site}}}
