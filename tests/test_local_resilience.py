"""The local stack keeps running and keeps its data (`oneeye up` in a subprocess).

- ``kill -9`` of the dashboard, the rules router and the SNS deliverer while matches
  stream in: each is restarted, the stack stays up, and every match the broker
  acknowledged reaches the desk.
- ``kill -9`` of ``oneeye up`` itself: its children end by themselves, and the restarted
  stack still has its cases and agency tokens (moto's recorder, replayed) and issues a
  new case id.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from tests.amber_support import auth
from tests.dashboard_helpers import csrf_from
from tests.mqtt_support import event
from tests.net_support import free_port
from tests.proc_support import running
from tests.wait import wait_until

pytestmark = pytest.mark.slow
PASSWORD = "resilience-demo-password"  # generated test secret, not a real credential
DEVICE = "edge-site1-door"


class Stack:
    """``oneeye up`` on free ports; :meth:`start` again reuses the ports and var dir."""

    def __init__(self, tmp: Path, data_dir: Path, *, dashboard: bool) -> None:
        self.var = tmp / "var"
        self.log_path = tmp / "up.log"
        self.ports = {n: free_port() for n in ("mqtt", "moto", "http", "dashboard",
                                               "customer-api", "smtp")}
        self.dashboard = dashboard
        self.env = {**os.environ, "ONEEYE_LOCAL__ENROL_CUSTOMERS": "false",
                    "ONEEYE_LOCAL__DEMO_CUSTOMERS": "2", "ONEEYE_LOCAL__DATA_DIR": str(data_dir),
                    "ONEEYE_LOCAL__DEMO_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
        for k in ("AWS_ENDPOINT_URL", "ONEEYE_STACK_FILE"):
            self.env.pop(k, None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = f"http://127.0.0.1:{self.ports['http']}"
        self.desk = f"http://127.0.0.1:{self.ports['dashboard']}"

    def start(self) -> Stack:
        config = self.var.parent / "local.json"  # the publisher's thing, in the registry
        config.write_text(json.dumps({"devices": {DEVICE: {"site_id": "site-1",
                                                           "cameras": ["cam-1"]}}}))
        argv = [sys.executable, "-m", "oneeye.cli", "up", "--var-dir", str(self.var),
                "--config", str(config), "--duration", "900"] + (
                    [] if self.dashboard else ["--no-dashboard"])
        for name, p in self.ports.items():
            argv += [f"--{name}-port", str(p)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        url = (self.desk if self.dashboard else self.api) + "/healthz"
        wait_until(lambda: self.alive() and (self.var / "stack.json").is_file()
                   and _answers(url), 240, "the local stack",
                   context=self.tail)
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"oneeye up exited ({self.proc.returncode}):\n{self.tail()}")
        return True

    def tail(self, n: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def child_pid(self, name: str) -> int | None:
        pids = re.findall(rf"started {re.escape(name)} \(pid (\d+)\)", self.tail(10**7))
        return int(pids[-1]) if pids else None

    def child_pids(self) -> set[int]:
        """Every child process this stack's log says it started, in any run."""
        return {int(p) for p in re.findall(r"started \S+ \(pid (\d+)\)", self.tail(10**7))}

    def kill_child(self, name: str) -> None:
        """kill -9 the child, then wait for its supervisor to start a new one."""
        pid = self.child_pid(name)
        assert pid is not None, self.tail()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: self.alive() and self.child_pid(name) not in (None, pid), 60,
                   f"{name} restarted", context=self.tail)

    def cli(self, *args: str) -> str:
        env = {k: v for k, v in self.env.items() if not k.startswith("AWS_")}
        out = subprocess.run([sys.executable, "-m", "oneeye.cli", *args, "--stack-file",
                              str(self.var / "stack.json")], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def stack_factory(tmp_path: Path, data_dir: Path) -> Iterator[Any]:
    made: list[Stack] = []

    def make(dashboard: bool) -> Stack:
        made.append(Stack(tmp_path, data_dir, dashboard=dashboard))
        return made[-1]

    yield make
    for s in made:
        s.stop()


class Publisher:
    """An edge-like publisher: QoS 1, remembers which matches the broker acknowledged."""

    def __init__(self, port: int) -> None:
        self.acked: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, i: int) -> None:
        match = event(i, device_id=DEVICE, person_id="C-1001")
        info = self.client.publish(f"oneeye/devices/{DEVICE}/matches", match.to_json(), qos=1)
        info.wait_for_publish(30)
        if info.is_published():
            self.acked.append(match.event_id)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def desk_event_ids(stack: Stack) -> set[str]:
    session = requests.Session()
    try:
        token = csrf_from(session.get(stack.desk + "/login", timeout=5).text)
        session.post(stack.desk + "/login", timeout=10, data={
            "username": "demo", "password": PASSWORD, "csrf_token": token})
        ids: set[str] = set()
        after = "0"  # catch-up order, page by page (a page holds history_limit events)
        while True:
            page = session.get(stack.desk + "/api/events", timeout=10, params={
                "kind": "customer_arrived", "after": after}).json()["events"]
            if not page:
                return ids
            ids.update(r["event_id"] for r in page)
            after = page[-1]["event_id"]
    except (requests.RequestException, ValueError, KeyError):
        return set()  # the dashboard is restarting


def test_killed_children_restart_and_no_acknowledged_match_is_lost(stack_factory: Any) -> None:
    stack = stack_factory(dashboard=True).start()
    pub = Publisher(stack.ports["mqtt"])
    stop = threading.Event()
    sent = [0]

    def stream() -> None:
        while not stop.wait(0.15):
            pub.publish(sent[0])
            sent[0] += 1

    streamer = threading.Thread(target=stream, daemon=True)
    streamer.start()
    try:
        wait_until(lambda: len(desk_event_ids(stack)) >= 3, 120, "first arrivals",
                   context=stack.tail)
        for name in ("dashboard", "rules", "sns-delivery"):
            # kill each one while arrivals flow, and see them flow again after
            on_desk = len(desk_event_ids(stack))
            stack.kill_child(name)
            wait_until(lambda n=on_desk: len(desk_event_ids(stack)) >= n + 5, 120,
                       f"arrivals flowing again after {name} restarted", context=stack.tail)
    finally:
        stop.set()
        streamer.join(30)
        pub.close()
    acked = set(pub.acked)
    assert len(acked) >= 30

    def missing() -> str:
        lost = sorted(acked - desk_event_ids(stack))
        return f"{len(lost)} of {len(acked)} missing: {lost[:10]}\n{stack.tail()}"

    wait_until(lambda: acked <= desk_event_ids(stack), 180,
               "every acknowledged match on the desk", context=missing)
    assert stack.alive()
    log = stack.tail(10**7)
    for name in ("dashboard", "rules", "sns-delivery"):
        assert f"restarting {name}" in log


def test_restarted_stack_keeps_cases_and_tokens_and_never_reuses_a_case_id(
        stack_factory: Any) -> None:
    stack = stack_factory(dashboard=False).start()
    token = stack.cli("agency", "add", "Thames Valley Police").strip()

    def new_case() -> str:
        grant = requests.post(f"{stack.api}/api/uploads", headers=auth(token), timeout=60,
                              json={"content_type": "image/jpeg", "size": 1000,
                                    "contact": "+44 20 7946 0958", "name": "Jo"}).json()
        return str(grant["case_id"])

    first = new_case()
    children = stack.child_pids()
    assert len(children) >= 2, stack.tail()  # the rules router and SNS delivery at least
    stack.stop(signal.SIGKILL)  # no clean shutdown: the children go with it
    # ...by themselves, within their grace: none is left holding a port or the inbox
    wait_until(lambda: not any(running(p) for p in children), 15, "the children to end",
               context=lambda: f"still running: {[p for p in children if running(p)]}")
    stack.start()
    cases = requests.get(f"{stack.api}/api/cases", headers=auth(token), timeout=60)
    assert cases.status_code == 200, cases.text  # the agency token survived
    assert first in cases.text
    second = new_case()
    assert second != first and second > first
    assert "replaying" in stack.tail()
