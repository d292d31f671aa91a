"""A desk as a program: log in to the dashboard and collect its Socket.IO ``desk_event``s.

Used by the end-to-end test and ``bench/e2e.py`` to see exactly what a teller's
browser sees, through the dashboard's real login and Socket.IO handshake.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

Record = dict[str, Any]
_CSRF = re.compile(r'name="csrf[-_]token"\s+(?:content|value)="([^"]+)"')


def wait_http(url: str, timeout_s: float, *, alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll ``url`` until it answers 200 (or ``alive()`` turns false)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive():
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


class DeskClient:
    def __init__(self, base_url: str, user: str, password: str) -> None:
        import socketio

        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        page = self.http.get(f"{self.base_url}/login", timeout=10)
        m = _CSRF.search(page.text)
        if not m:
            raise RuntimeError("no CSRF token on the dashboard login page")
        resp = self.http.post(f"{self.base_url}/login", timeout=10, data={
            "username": user, "password": password, "csrf_token": m.group(1)})
        if resp.status_code != 200 or "/login" in resp.url:
            raise RuntimeError(f"dashboard login as {user} failed ({resp.status_code})")
        self.received: list[tuple[float, Record]] = []
        self._cond = threading.Condition()
        self.sio = socketio.Client(reconnection=True)
        self.sio.on("desk_event", self._on_event)

    def connect(self) -> DeskClient:
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.sio.connect(self.base_url, headers={"Cookie": cookie}, transports=["websocket"],
                         wait_timeout=20)
        return self

    def _on_event(self, record: Record) -> None:
        now = time.time()  # stamped on arrival, before any other work
        with self._cond:
            self.received.append((now, record))
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[Record], bool], timeout_s: float) -> Record | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for _, rec in self.received:
                    if pred(rec):
                        return rec
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        try:
            self.sio.disconnect()
        finally:
            self.http.close()
