"""The edge's way out: outbox → publisher, and the health heartbeat.

The pipeline calls :meth:`Uplink.submit` with each :class:`MatchEvent`; when it
returns, the event is on disk (the outbox), so nothing the pipeline announced
is lost to a network cut, a broker restart or ``kill -9``. One sender thread
publishes the outbox strictly in order, one message at a time, deleting each
only on acknowledgement; on failure it waits for the publisher to reconnect
(exponential backoff 0.5 s → 30 s, cut short the moment the connection is back).
Every publish (events and health: one connection, one budget) is paced by a
:class:`~oneeye.edge.comms.pacing.Pacer` to ``publish.max_publishes_per_s`` and
``publish.max_bytes_per_s`` (AWS IoT Core's per-connection quotas by default), so the
replay of an outage's backlog is not throttled or cut off by the broker; while a backlog
of more than :data:`BACKLOG_MIN` events drains, health reports its progress.

    uplink = Uplink(settings, vitals, publisher=make_publisher(settings))
    uplink.start()
    uplink.subscribe(topic, callback)   # rides the same connection (gallery updates)
    uplink.submit(event)          # durable once this returns
    uplink.close(timeout=5.0)     # drain what it can; the rest waits on disk
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oneeye.edge.clock import ClockWatch
from oneeye.edge.comms.health import Vitals, build_health
from oneeye.edge.comms.outbox import Outbox
from oneeye.edge.comms.pacing import Pacer
from oneeye.edge.comms.publishers import MessageCallback, Publisher, make_publisher
from oneeye.edge.settings import EdgeSettings
from oneeye.errors import EventError, PublishError, Refused, Unavailable
from oneeye.events import MAX_EVENT_BYTES, BacklogProgress, HealthEvent, MatchEvent
from oneeye.types import Clock, utc_now

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
#: Events waiting that make a backlog worth reporting (more than a tenth of a second's quota).
BACKLOG_MIN = 10


@dataclass
class _Backlog:
    started: float
    sent: int = 0


def with_sent_at(payload: bytes) -> bytes:
    """``payload`` (a match's JSON) with ``sent_at`` set to the device clock now.

    The cloud compares it with its receive time: the difference is the device clock's
    error whatever the event's age, so a backlog sent after an outage is not taken for a
    slow clock (:mod:`oneeye.cloud.skew`). A payload that is not a JSON object is sent as
    it is.
    """
    try:
        data = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(data, dict):
        return payload
    data["sent_at"] = utc_now()
    return json.dumps(data, separators=(",", ":")).encode()


class Uplink:
    def __init__(
        self,
        settings: EdgeSettings,
        vitals: Callable[[], Vitals],
        *,
        publisher: Publisher | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """``clock`` and ``sleep`` pace the publishes (a test passes a clock it moves and a
        ``sleep`` that moves it); ``sleep`` defaults to waiting on the uplink's stop."""
        self.settings = settings
        self.vitals = vitals
        self.publisher = publisher if publisher is not None else make_publisher(settings)
        self.outbox = Outbox(settings.outbox.path, settings.outbox.max_events,
                             max_memory=settings.outbox.max_memory,
                             retry_s=settings.outbox.retry_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = time.monotonic()
        self.health_sent = 0
        self.health_failed = 0
        self.trimmed_snapshots = 0
        self._closed = False
        p = settings.publish
        self.pacer = Pacer(p.max_publishes_per_s, p.max_bytes_per_s, clock=clock)
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._pace_lock = threading.Lock()
        self._backlog: _Backlog | None = None
        #: The device clock's state for health (NTP sync, jumps).
        self.device_clock = ClockWatch()

    # -- pipeline side --------------------------------------------------------------

    def submit(self, event: MatchEvent) -> None:
        """Write ``event`` to the outbox (durable when this returns) and wake the sender."""
        if not isinstance(event, MatchEvent):
            raise EventError(f"Uplink.submit takes a MatchEvent, not {type(event).__name__}")
        if self._closed:
            raise EventError("uplink is closed")
        payload = event.to_json().encode()
        if len(payload) > MAX_EVENT_BYTES and event.snapshot_jpeg:
            # IoT Core refuses > 128 KB and the match matters more than the picture.
            log.warning("event %s is %d bytes: sending it without its snapshot", event.event_id,
                        len(payload))
            self.trimmed_snapshots += 1
            payload = event.model_copy(update={"snapshot_jpeg": None}).to_json().encode()
        if len(payload) > MAX_EVENT_BYTES:
            raise EventError(f"event {event.event_id} is {len(payload)} bytes, over "
                             f"{MAX_EVENT_BYTES}")
        self.outbox.put(self.settings.topic("matches"), payload, event.event_id,
                        keep=event.watchlist == "missing")
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Uplink:
        for name, target in (("uplink-sender", self._send_loop),
                             ("uplink-health", self._health_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("uplink started: publish %s, outbox %s (%d waiting)", self.publisher.name,
                 self.settings.outbox.path, self.outbox.depth())
        return self

    def subscribe(self, topic: str, callback: MessageCallback) -> None:
        """Deliver ``topic`` to ``callback`` over this uplink's connection (kept across
        reconnects; never raises: a failure is logged and retried at the next connect)."""
        try:
            self.publisher.subscribe(topic, callback)
        except PublishError as exc:  # not connected yet: MQTT subscribes on connect
            log.warning("subscription to %s: %s (retried on connect)", topic, exc)

    def close(self, timeout: float = 5.0) -> None:
        """Give the sender up to ``timeout`` s to drain, then stop; the rest stays on disk."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        while (self.outbox.depth() and self.publisher.connected
               and time.monotonic() < deadline):
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()) + 1.0)
        self.publisher.close()
        left = self.outbox.depth()
        if left:
            log.warning("uplink closed with %d event(s) still in the outbox; they are sent at "
                        "the next start", left)
        self.outbox.close()

    # -- sender ---------------------------------------------------------------------

    def _connect(self) -> bool:
        if self.publisher.connected:
            return True
        try:
            self.publisher.connect(timeout=self.settings.publish.timeout_s)
            return True
        except PublishError as exc:
            log.warning("uplink: %s", exc)
            return False

    def _backoff(self, delay: float) -> float:
        """Wait until reconnected, stopped or ``delay`` passed; return the next delay."""
        end = time.monotonic() + delay
        while not self._stop.is_set() and time.monotonic() < end:
            if self.publisher.wait_connected(min(0.1, max(0.0, end - time.monotonic()))):
                break
        return min(delay * 2, BACKOFF_MAX_S)

    def _publish(self, topic: str, payload: bytes, timeout: float) -> bool:
        """Publish once the pace allows; False (nothing sent) if closed meanwhile."""
        size = len(topic.encode()) + len(payload)
        with self._pace_lock:    # one connection: events and health share one budget
            while (wait := self.pacer.delay(size)) > 0:
                if self._stop.is_set():
                    return False
                self._sleep(wait)
            try:
                self.publisher.publish(topic, payload, qos=1, timeout=timeout)
            finally:   # a refused or unacknowledged publish reached the broker too
                self.pacer.sent(size)
        return True

    def _track_backlog(self, waiting: int) -> None:
        if self._backlog is None and waiting > BACKLOG_MIN:
            self._backlog = _Backlog(self.pacer.clock())
            log.info("uplink: replaying a backlog of %d event(s), at most %g/s and %d B/s",
                     waiting, self.pacer.publishes_per_s, self.pacer.bytes_per_s)
        elif self._backlog is not None and waiting == 0:
            took = self.pacer.clock() - self._backlog.started
            log.info("uplink: backlog of %d event(s) sent in %.1f s", self._backlog.sent, took)
            self._backlog = None

    def backlog(self) -> BacklogProgress | None:
        """Progress of the backlog being replayed, or None when there is none."""
        b = self._backlog
        if b is None:
            return None
        waiting = self.outbox.depth()
        return BacklogProgress(sent=b.sent, waiting=waiting,
                               publishes_per_s=self.pacer.rate(),
                               eta_s=round(waiting / self.pacer.publishes_per_s, 1))

    def _send_loop(self) -> None:
        delay = BACKOFF_MIN_S
        timeout = self.settings.publish.timeout_s
        while not self._stop.is_set():
            # Connect even with nothing to send: subscriptions (gallery updates) and
            # health need the connection too.
            if not self._connect():
                delay = self._backoff(delay)
                continue
            self._track_backlog(self.outbox.depth())
            batch = self.outbox.peek(100)
            if not batch:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            for item in batch:
                if self._stop.is_set():
                    return
                try:
                    if not self._publish(item.topic, with_sent_at(item.payload), timeout):
                        return   # closed while waiting for the pace; the event stays
                except Refused as exc:  # for good (PublishRejected): set aside, counted
                    self.outbox.reject(item.seq, str(exc))
                    continue
                except Unavailable as exc:  # not acknowledged (PublishError): back off
                    self.outbox.attempt(item.seq)
                    log.warning("uplink: event %s not acknowledged (%s); %d waiting, retrying",
                                item.event_id, exc, self.outbox.depth())
                    delay = self._backoff(delay)
                    break
                except Exception:  # a transport bug must not kill the sender thread
                    log.exception("uplink: unexpected publish failure")
                    delay = self._backoff(delay)
                    break
                self.outbox.ack(item.seq)
                if self._backlog is not None:
                    self._backlog.sent += 1
                delay = BACKOFF_MIN_S

    # -- health ---------------------------------------------------------------------

    def health(self) -> HealthEvent:
        """The device's ``oneeye.health/1`` now (never raises: see :func:`build_health`)."""
        try:
            vitals = self.vitals()
        except Exception:  # a broken vitals source must not silence the heartbeat
            log.exception("health: vitals() failed; reporting every camera as failed")
            vitals = Vitals.unknown(self.settings)
        return build_health(self.settings, vitals, uptime_s=time.monotonic() - self._started,
                            outbox=self.outbox.stats(), outbox_storage=self.outbox.storage,
                            client_id_conflict=self.publisher.client_id_conflict,
                            clock=self.device_clock.health(),
                            health_failed=self.health_failed,
                            snapshots_trimmed=self.trimmed_snapshots, backlog=self.backlog())

    def send_health(self) -> bool:
        if not self.publisher.connected:
            self.health_failed += 1
            log.info("health not sent: not connected (%d events waiting)", self.outbox.depth())
            return False
        try:
            if not self._publish(self.settings.topic("health"),
                                 self.health().to_json().encode(),
                                 self.settings.publish.timeout_s):
                return False
        except PublishError as exc:
            self.health_failed += 1
            log.warning("health not sent: %s", exc)
            return False
        self.health_sent += 1
        return True

    def _health_loop(self) -> None:
        # The first heartbeat goes out as soon as we are connected, then every interval.
        self.publisher.wait_connected(5.0)
        while not self._stop.is_set():
            try:
                self.send_health()
            except Exception:  # thread boundary: one bad heartbeat must not end the next ones
                log.exception("health: unexpected failure")
            self._stop.wait(self.settings.health.interval_s)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"outbox_{k}": v for k, v in self.outbox.stats().items()}
        out.update(health_sent=self.health_sent, health_failed=self.health_failed,
                   connected=self.publisher.connected)
        return out
