"""The local stack's restartable workers, each a child process of ``oneeye up``.

``python -m oneeye.local.workers rules WORKERS_JSON`` — the IoT rules router: takes
messages from the durable inbox (``oneeye.local.inbox``), runs the template's
rules and invokes their handlers; a message leaves the inbox only when all its
rules have finished.

``python -m oneeye.local.workers sns-delivery WORKERS_JSON`` — SNS for the desk
topic's HTTP(S) subscribers: long-polls the desk queue and delivers from its
SQLite file with retries (``oneeye.local.sns_delivery``).

Both keep their state in SQLite under ``var_dir``, so ``kill -9`` at any moment
loses nothing: the restarted process carries on where the files say. The JSON
file (:class:`WorkerConfig`) is written by :class:`oneeye.local.stack.LocalStack`;
the AWS endpoint and credentials come in the environment like every child's.

SIGTERM (from ``oneeye up``, or from the kernel when ``oneeye up`` died: see
``oneeye.local.lifeline``) ends a worker within ``stop_grace_s``, whatever its threads
are blocked on. The worker runs in its own thread; the main thread only waits for a
signal, then sets the worker's stop event and gives it the grace period to finish
what it holds (the rules router: the handlers that are running, each message
deleted from the inbox only once handled). Past that the process exits at once:
what was not finished is still in the SQLite files for the next start, and no
thread stuck in a handler (a lock, a socket) can keep an orphan alive.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from oneeye.config import StrictModel
from oneeye.local import lifeline
from oneeye.local import template as tpl
from oneeye.local.inbox import Inbox
from oneeye.local.lambdas import Lambdas
from oneeye.local.rules import RulesRouter, compile_rules
from oneeye.local.settings import SnsDeliverySettings
from oneeye.local.sns_delivery import Signer, SnsDelivery
from oneeye.local.sqs_poller import SqsPoller
from oneeye.logs import configure

log = logging.getLogger(__name__)
#: State files under ``var_dir``, shared by the workers and ``oneeye up``.
INBOX_FILE = "rules-inbox.sqlite3"
DEAD_LETTERS_FILE = "dead-letters.jsonl"
SNS_DB_FILE = "sns-delivery.sqlite3"
SNS_DIR = "sns"
MAX_IN_FLIGHT = 64
IDLE_POLL_S = 0.1
#: How often the main thread looks whether a signal came (the handler only notes it).
SIGNAL_POLL_S = 0.1


class WorkerConfig(StrictModel):
    var_dir: Path
    template: Path
    region: str
    desk_queue_url: str
    confirm_base_url: str
    sns: SnsDeliverySettings = Field(default_factory=SnsDeliverySettings)
    stop_grace_s: float = Field(5.0, gt=0, le=60, description="after SIGTERM, time to "
                                "finish what the worker holds before the process exits "
                                "(under Child.stop's grace, after which it is killed)")


def run_rules(cfg: WorkerConfig, stop: threading.Event) -> None:

    template = tpl.load(cfg.template)
    router = RulesRouter(compile_rules(template.rules), Lambdas(template.functions),
                         dead_letters=cfg.var_dir / DEAD_LETTERS_FILE)
    inbox = Inbox(cfg.var_dir / INBOX_FILE)
    in_flight: set[int] = set()
    lock = threading.Lock()
    freed = threading.Event()
    last_id = 0
    log.info("rules router: %d rule(s); %d message(s) waiting in the inbox",
             len(router.rules), len(inbox))

    def finished(message_id: int) -> None:
        inbox.done(message_id)
        with lock:
            in_flight.discard(message_id)
        freed.set()

    while not stop.is_set():
        with lock:
            room = MAX_IN_FLIGHT - len(in_flight)
        batch = inbox.after(last_id, room) if room > 0 else []
        for message_id, topic, payload in batch:
            last_id = message_id
            with lock:
                in_flight.add(message_id)
            router.route(topic, payload, on_done=functools.partial(finished, message_id))
        if not batch:
            freed.wait(IDLE_POLL_S)
            freed.clear()
    router.close()
    inbox.close()


def run_sns_delivery(cfg: WorkerConfig, stop: threading.Event) -> None:

    signer = Signer(cfg.var_dir / SNS_DIR, cfg.region, cfg.sns.signature_version)
    delivery = SnsDelivery(cfg.var_dir / SNS_DB_FILE, signer, confirm_base_url=cfg.confirm_base_url,
                           settings=cfg.sns)
    delivery.start()
    log.info("SNS delivery: %d delivery(ies) pending", delivery.pending())
    poller = SqsPoller(cfg.desk_queue_url,
                       lambda m: delivery.accept_envelope(json.loads(m["Body"])),
                       name="desk→http").start()
    stop.wait()
    poller.stop()
    delivery.stop()


WORKERS = {"rules": run_rules, "sns-delivery": run_sns_delivery}


Worker = Callable[[WorkerConfig, threading.Event], None]


def serve(worker: Worker, cfg: WorkerConfig, signalled: list[int]) -> int:
    """Run ``worker`` in a thread until it returns or ``signalled`` gets a signal number;
    then stop it, and end the process ``cfg.stop_grace_s`` later if it is still here."""
    stop = threading.Event()
    crashed: list[BaseException] = []

    def run() -> None:
        try:
            worker(cfg, stop)
        except Exception as exc:  # the process's top level: logged, exit code 1 says it
            log.exception("worker failed")
            crashed.append(exc)

    thread = threading.Thread(target=run, name="worker", daemon=True)
    thread.start()
    while thread.is_alive() and not signalled:
        thread.join(SIGNAL_POLL_S)
    stop.set()  # from this thread, never from the signal handler
    # Armed before anything that could block: it also covers the interpreter's exit,
    # which joins non-daemon threads (a ThreadPoolExecutor's) without a timeout.
    threading.Thread(target=_exit_after, args=(cfg.stop_grace_s,), daemon=True,
                     name="stop-deadline").start()
    log.info("stopping (%s); exiting within %.1f s, done or not (what is not done stays "
             "in the state files for the next start)",
             f"signal {signalled[0]}" if signalled else "worker ended", cfg.stop_grace_s)
    thread.join()
    return 1 if crashed else 0


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    os._exit(1)  # nothing that could block first: no logging (its lock may be held)


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m oneeye.local.workers")
    parser.add_argument("worker", choices=sorted(WORKERS))
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    configure("INFO")
    cfg = WorkerConfig.model_validate(json.loads(args.config.read_text()))
    signalled: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        # Only note it: the handler runs on the main thread between two bytecodes, maybe
        # inside a lock (an Event's own) that stop.set() would need, a deadlock.
        signalled.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    supervisor = lifeline.supervisor_pid(pop=True)
    if supervisor is not None:
        lifeline.guard(supervisor)  # supervisor gone: SIGTERM to ourselves
    return serve(WORKERS[args.worker], cfg, signalled)


if __name__ == "__main__":
    raise SystemExit(main())
