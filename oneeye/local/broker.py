"""MQTT brokers for the local stack, tests and benches: embedded amqtt, or a Mosquitto process.

The local stack stands an MQTT broker in for AWS IoT Core (docs/architecture.md §5). By default
that is :class:`EmbeddedBroker` — amqtt in a background thread with its own event
loop, so ``oneeye up`` needs nothing installed. Where Mosquitto exists,
:class:`MosquittoBroker` runs ``mosquitto`` on a port of our choosing with its own
config (persistence on, so sessions and queued QoS 1 messages survive a broker
restart, which is what the outage bench needs). Both refuse a taken port with a
clear :class:`BrokerError` instead of failing half-way. The embedded broker also publishes
AWS IoT's lifecycle events on every connect and disconnect (:mod:`oneeye.local.presence`);
Mosquitto does not (its ``$SYS`` topics differ), so the local stack runs the embedded one.

``python -m oneeye.local.broker --port 18830`` runs the embedded broker in the
foreground (the outage bench stops it for real by terminating that process).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from oneeye.errors import BrokerError

log = logging.getLogger(__name__)

MOSQUITTO = "/usr/sbin/mosquitto"


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`BrokerError` naming the port when something already listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR ignores TIME_WAIT leftovers of a broker we just stopped (the server
        # will bind with it too) but still fails on a live listener, which is what we look for.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"cannot start the MQTT broker: {host}:{port} is already in use ({exc.strerror}); "
                "stop whatever listens there or choose another port") from exc


def wait_listening(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _amqtt_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Anonymous access only: the broker binds to loopback by default and stands in
        # for IoT Core, whose per-device policies the tests check elsewhere.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                    # AWS IoT's lifecycle events ($aws/events/presence/…), as IoT Core sends them
                    "oneeye.local.presence.PresencePlugin": {}},
    }


class EmbeddedBroker:
    """amqtt on ``host:port`` in a daemon thread. ``start()``/``stop()`` may repeat."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        if self.running:
            return self
        check_port_free(self.host, self.port)
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready, failure))
            finally:
                loop.close()
                ready.set()

        self._thread = threading.Thread(target=main, name=f"amqtt-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise BrokerError(f"embedded MQTT broker on {self.host}:{self.port} did not start "
                              f"within {timeout:.0f} s")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise BrokerError(f"embedded MQTT broker on {self.host}:{self.port} failed to start: "
                              f"{failure[0]}") from failure[0]
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        from oneeye.local.presence import LifecycleBroker

        self._stopped = asyncio.Event()
        try:
            self._broker = LifecycleBroker(_amqtt_config(self.host, self.port))
            await self._broker.start()
        except Exception as exc:  # amqtt wraps bind errors in BrokerError of its own
            failure.append(exc)
            ready.set()
            return
        ready.set()
        await self._stopped.wait()
        await self._drain()
        try:
            await self._broker.shutdown()
        except Exception:  # stopping: log it, the process is going away either way
            log.exception("embedded MQTT broker did not shut down cleanly")

    async def _drain(self, limit_s: float = 2.0) -> None:
        """Let messages already acknowledged reach their subscribers before shutting down.

        amqtt's shutdown clears sessions first and then discards its broadcast queue, so a
        message it had PUBACKed a moment earlier would be lost: a broker that loses
        acknowledged messages would make every outage test measure amqtt, not OneEye.
        """
        broker = self._broker
        queue = getattr(broker, "_broadcast_queue", None)
        tasks = getattr(broker, "_tasks_queue", ())
        deadline = asyncio.get_running_loop().time() + limit_s
        while asyncio.get_running_loop().time() < deadline:
            busy = (queue is not None and not queue.empty()) or any(not t.done() for t in tasks)
            if not busy:
                break
            await asyncio.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and drop every session (clients see their connection close)."""
        thread, loop, stopped = self._thread, self._loop, self._stopped
        if thread is None or loop is None or stopped is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(stopped.set)
            thread.join(timeout)
        if thread.is_alive():
            raise BrokerError(
                f"embedded MQTT broker on port {self.port} did not stop in {timeout} s")
        self._thread = None
        log.info("embedded MQTT broker on %s stopped", self.url)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class MosquittoBroker:
    """A private ``mosquitto`` process on ``host:port`` with persistence in ``state_dir``.

    Persistence matters: a client with a persistent session (clean_session false)
    keeps its subscriptions and queued QoS 1 messages across ``stop()``/``start()``.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", *, state_dir: Path | None = None,
                 binary: str = MOSQUITTO, extra_config: str = "") -> None:
        self.host = host
        self.port = port
        self.binary = binary
        self.extra_config = extra_config
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="oneeye-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        if self.running:
            return self
        if not (Path(self.binary).is_file() or shutil.which(self.binary)):
            raise BrokerError(f"mosquitto not found at {self.binary}")
        check_port_free(self.host, self.port)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        conf = self.state_dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.state_dir}/\n"
            "max_queued_messages 100000\n"
            # As root, mosquitto switches to user 'mosquitto', which cannot read our
            # private state dir; stay the invoking user instead.
            f"{'user ' + getpass.getuser() if os.geteuid() == 0 else ''}\n"
            f"{self.extra_config}\n")
        logf = open(self.state_dir / "mosquitto.log", "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=logf,
                                      stderr=subprocess.STDOUT)
        logf.close()
        if not wait_listening(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} within "
                              f"{timeout:.0f} s (log: {self.state_dir / 'mosquitto.log'})")
        log.info("mosquitto listening on %s (pid %d)", self.url, self._proc.pid)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # SIGTERM lets mosquitto write its persistence file
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()


def spawn_embedded(port: int, host: str = "127.0.0.1", timeout: float = 15.0,
                   ) -> subprocess.Popen[bytes]:
    """The embedded broker in its own process (so it can really be terminated or killed)."""
    check_port_free(host, port)
    proc = subprocess.Popen([sys.executable, "-m", "oneeye.local.broker", "--host", host,
                             "--port", str(port)], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if not wait_listening(host, port, timeout):
        proc.kill()
        proc.wait()
        raise BrokerError(f"embedded broker process did not listen on {host}:{port}")
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded amqtt broker in the foreground")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18830)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    try:
        broker = EmbeddedBroker(args.port, args.host).start()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done.wait()
    broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
