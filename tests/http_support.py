"""Real HTTP on 127.0.0.1 for test stand-ins: customer API, API Gateway harness, SNS sink."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
