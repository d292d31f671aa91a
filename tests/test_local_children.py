"""Supervised children, the rules inbox and the SNS delivery handle of another process;
how workers end on SIGTERM, and children when their supervisor is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
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
from tests.proc_support import RulesWorkerDir, running
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


# --- ending: SIGTERM, and the supervisor's death --------------------------------------------

#: The workers' default stop_grace_s (5 s), plus slack for a loaded machine.
EXIT_WITHIN_S = 15.0


def _tail(log: Path) -> Callable[[], str]:
    return lambda: log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _sigterm_rules_worker(root: Path, quick: range, blocking: range) -> int:
    """Start a rules worker on these messages, SIGTERM it once it holds them (the quick
    ones handled; four blocking ones stuck in the pool's four threads, the rest queued),
    wait for its end; return its exit code."""
    work = RulesWorkerDir(root)
    work.put(quick, blocking)
    log = root / "worker.log"
    tail = _tail(log)
    with log.open("wb") as out:
        proc = subprocess.Popen(work.argv(), stdout=out, stderr=subprocess.STDOUT)
    try:
        stuck = min(4, len(blocking))
        wait_until(lambda: work.handled() == set(quick) and len(work.blocked()) == stuck
                   and "rules router" in tail(), 60, "the worker to hold its messages",
                   context=tail)
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: proc.poll() is not None, EXIT_WITHIN_S,
                   "the worker to exit after SIGTERM", context=tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # nothing acknowledged is lost: a message leaves the inbox only once handled
    assert work.handled() == set(quick)
    assert work.waiting() == set(blocking), tail()
    assert not (work.root / "var" / "dead-letters.jsonl").exists()
    return proc.returncode


def test_sigterm_ends_a_rules_worker_idle_or_stuck_in_handlers_and_loses_nothing(
        tmp_path: Path) -> None:
    assert _sigterm_rules_worker(tmp_path / "idle", range(0), range(0)) == 0
    _sigterm_rules_worker(tmp_path / "busy", range(3), range(3, 10))


SUPERVISOR = """import json, sys, threading
from oneeye.local.children import Child
children = [Child(name, argv, {}).start() for name, argv in json.loads(sys.argv[1])]
print(json.dumps([c.pid for c in children]), flush=True)
threading.Event().wait()
"""


def test_children_end_when_their_supervisor_is_killed(tmp_path: Path, moto_server: str) -> None:
    from oneeye import aws

    queue = aws.client("sqs").create_queue(QueueName="desk-orphans")["QueueUrl"]
    work = RulesWorkerDir(tmp_path / "rules", desk_queue_url=queue)
    work.put(range(0), range(6))
    children = [("rules", work.argv()), ("sns-delivery", work.argv("sns-delivery")),
                ("sleeper", [PY, "-c", SLEEPER])]  # not ours: only the kernel's signal
    log = tmp_path / "supervisor.log"
    with log.open("wb") as err:
        sup = subprocess.Popen([PY, "-c", SUPERVISOR, json.dumps(children)],
                               stdout=subprocess.PIPE, stderr=err, text=True)
    pids: list[int] = []
    try:
        assert sup.stdout is not None
        pids = json.loads(sup.stdout.readline() or "[]")
        assert len(pids) == 3, _tail(log)()
        wait_until(lambda: len(work.blocked()) == 4 and "SNS delivery" in _tail(log)(), 60,
                   "the rules worker stuck in its handlers, SNS delivery up", context=_tail(log))
        sup.kill()  # kill -9: no Child.stop, nobody left to send SIGTERM
        sup.wait(10)
        wait_until(lambda: not any(running(p) for p in pids), EXIT_WITHIN_S,
                   "every child of the killed supervisor to end", context=lambda: (
                       f"still running: {[p for p in pids if running(p)]}\n{_tail(log)()}"))
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait(10)
        for pid in pids:  # only if the test failed: leave no orphan behind
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    assert work.waiting() == set(range(6))  # the stuck messages wait for the next router


GUARDED = """import os, pathlib, sys, threading
from oneeye.local.lifeline import watch_parent
watch_parent(os.getppid())  # the portable way alone: no parent-death signal here
pathlib.Path(sys.argv[1]).touch()
threading.Event().wait()
"""
MIDDLE = """import subprocess, sys, threading
print(subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]]).pid, flush=True)
threading.Event().wait()
"""


def test_a_child_watching_its_parent_pid_ends_when_the_parent_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    middle = subprocess.Popen([PY, "-c", MIDDLE, GUARDED, str(ready)], stdout=subprocess.PIPE,
                              text=True)
    pid = 0
    try:
        assert middle.stdout is not None
        pid = int(middle.stdout.readline())
        wait_until(ready.exists, 30, "the child to watch its parent")
        middle.kill()
        middle.wait(10)
        wait_until(lambda: not running(pid), 10, "the orphan to end")
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait(10)
        if pid and running(pid):
            os.kill(pid, signal.SIGKILL)
