"""Supervised children, the rules inbox and the SNS delivery handle of another process."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from oneeye.local import template as tpl
from oneeye.local.children import Child
from oneeye.local.inbox import Inbox, intake
from oneeye.local.lambdas import Lambdas
from oneeye.local.rules import RulesRouter, compile_rules
from oneeye.local.settings import SnsDeliverySettings
from oneeye.local.sns_delivery import Signer, SnsDelivery
from tests.net_support import free_port
from tests.wait import wait_until

PY = sys.executable
SLEEPER = "import time; time.sleep(120)"  # pacing: a child that lives until killed


def test_a_child_that_keeps_dying_is_restarted_with_backoff_until_stopped() -> None:
    starts: list[int] = []
    child = Child("crasher", [PY, "-c", "import sys; sys.exit(3)"], {},
                  first_restart_s=0.05, max_restart_s=0.2,
                  on_start=lambda c: starts.append(c.pid or 0)).start()
    try:
        # Wait for the fourth *start*: ``restarts`` counts a restart when it is decided,
        # before its process exists, so waiting on it could stop the child in between.
        wait_until(lambda: len(starts) >= 4 and child.restarts >= 3, 30, "three restarts")
    finally:
        child.stop(grace_s=5)
    stopped_at = len(starts)
    assert stopped_at >= 4 and len(set(starts)) == stopped_at  # a new process each time
    assert not child.running
    # the supervisor has ended: nothing can start the process again
    wait_until(lambda: not child.supervising, 10, "the supervisor to end")
    assert len(starts) == stopped_at


def test_a_killed_child_comes_back_and_stop_ends_it_for_good() -> None:
    child = Child("sleeper", [PY, "-c", SLEEPER], {},
                  first_restart_s=0.05).start()
    try:
        first = child.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: child.running and child.pid != first, 30, "a new sleeper")
        assert child.restarts == 1
    finally:
        child.stop(grace_s=5)
    assert not child.running and child.restarts == 1


def _router(tmp_path: Path, body: str) -> RulesRouter:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(body)
    fn = tpl.Function("Fn", code, code / "app.py", "handler", {})
    rule = tpl.IotRule("R", "SELECT * FROM 'oneeye/devices/+/matches'", "Fn")
    return RulesRouter(compile_rules([rule]), Lambdas({"Fn": fn}),
                       dead_letters=tmp_path / "dl.jsonl")


def test_route_reports_done_only_after_the_handler_finished(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    router = _router(tmp_path, "import os, time\ndef handler(event, context):\n"
                     f"    while not os.path.exists({str(gate)!r}):\n"
                     "        time.sleep(0.01)\n")  # pacing: the handler polls its gate
    done = threading.Event()
    try:
        assert router.route("oneeye/devices/d/matches", b'{"a": 1}', on_done=done.set) == 1
        assert not done.is_set()  # the handler cannot finish before the gate exists
        gate.touch()
        assert done.wait(10)
        nothing = threading.Event()
        assert router.route("other/topic", b"{}", on_done=nothing.set) == 0
        assert nothing.is_set()  # no rule fired: done at once
    finally:
        router.close()


def test_inbox_keeps_messages_until_done_across_reopen(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    ids = [inbox.put("oneeye/devices/d/matches", f'{{"n": {i}}}'.encode()) for i in range(3)]
    inbox.done(ids[0])
    inbox.close()
    reopened = Inbox(tmp_path / "inbox.sqlite3")  # what a restarted router sees
    assert [(i, p) for i, _, p in reopened.after(0)] == [(ids[1], b'{"n": 1}'),
                                                          (ids[2], b'{"n": 2}')]
    assert reopened.after(ids[1]) == [(ids[2], "oneeye/devices/d/matches", b'{"n": 2}')]


def test_intake_commits_each_message_before_acknowledging(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from oneeye.local.broker import EmbeddedBroker

    port = free_port()
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    with EmbeddedBroker(port):
        sub = intake(inbox, f"mqtt://127.0.0.1:{port}", ["oneeye/devices/+/matches"])
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        try:
            for i in range(5):
                pub.publish("oneeye/devices/d/matches", f'{{"n": {i}}}', qos=1)
            pub.publish("elsewhere", b"{}", qos=1).wait_for_publish(10)
            wait_until(lambda: len(inbox) == 5, 10, "five messages in the inbox")
        finally:
            pub.loop_stop()
            pub.disconnect()
            sub.stop()
    assert [p for _, _, p in inbox.after(0)] == [f'{{"n": {i}}}'.encode() for i in range(5)]


def test_a_control_handle_confirms_for_the_delivering_process(tmp_path: Path) -> None:
    """``oneeye up`` subscribes/confirms in the file; the sns-delivery child delivers."""
    from tests.http_support import TOPIC, Endpoint, envelope

    signer = Signer(tmp_path / "sns", "us-east-1")
    settings = SnsDeliverySettings(first_retry_s=0.05, max_retry_s=0.2)
    handle = SnsDelivery(tmp_path / "sns.sqlite3", signer, confirm_base_url="http://x",
                         settings=settings, deliver=False)
    worker = SnsDelivery(tmp_path / "sns.sqlite3", signer, confirm_base_url="http://x",
                         settings=settings, poll_s=0.05)
    endpoint = Endpoint(free_port())
    endpoint.confirm_with = handle  # the SubscribeURL is served by the handle's process
    endpoint.start()
    try:
        worker.start()
        sub = handle.subscribe(TOPIC, endpoint.url)  # the worker picks it up by itself
        worker.accept_envelope(envelope('{"n": 1}'))
        got = endpoint.wait_for(2, timeout=20)
        assert [m["Type"] for m in got] == ["SubscriptionConfirmation", "Notification"]
        assert handle.pending(sub.arn) == 0 or wait_until(
            lambda: handle.pending(sub.arn) == 0, 10, "delivery recorded")
    finally:
        endpoint.stop()
        worker.stop()
        handle.stop()


def test_router_waits_out_a_claim_held_by_a_dead_invocation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oneeye.local import rules as rules_mod

    monkeypatch.setattr(rules_mod, "IN_PROGRESS_RETRY_S", 0.01)
    calls = tmp_path / "calls"
    router = _router(tmp_path, "from oneeye.errors import InProgress\n"
                     "def handler(event, context):\n"
                     f"    with open({str(calls)!r}, 'a') as f:\n"
                     "        f.write('x')\n"
                     f"    if len(open({str(calls)!r}).read()) < 5:\n"
                     "        raise InProgress('claimed elsewhere')\n")
    done = threading.Event()
    router.route("oneeye/devices/d/matches", b'{"a": 1}', on_done=done.set)
    assert done.wait(30)
    router.close()
    # more tries than the two async retries, and no dead letter: the event was handled
    assert calls.read_text() == "xxxxx" and router.invoked == 1
    assert not (tmp_path / "dl.jsonl").exists()
