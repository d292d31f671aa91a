"""Pace the uplink to the broker's per-connection limits: publishes/s and bytes/s.

AWS IoT Core allows one MQTT connection at most 100 publish requests per second and
512 KiB/s of throughput ("Publish requests per second per connection" and "Throughput
per connection", AWS General Reference, *AWS IoT Core endpoints and quotas*, message
broker limits; the AWS IoT Device SDK v2's ``AwsIotCoreDefaults`` flow control throttles
its own client to the same 100 TPS and 512 KB/s). Beyond them IoT Core throttles or
disconnects the client — just when a device replays the backlog of an outage: a 3,000-event
outbox went out at 171 publishes/s and up to 553 KB/s (``../shared/cases/iot-publish-rate``).
Greengrass's Nucleus paces its own client the same way (its PR #907).

:class:`Pacer` keeps a log of what was sent in the last second and says how long the next
message must wait so that no one-second window holds more than ``publishes_per_s``
messages or ``bytes_per_s`` bytes (topic + payload). Messages are also spaced at least
``1 / publishes_per_s`` apart, so a backlog leaves as an even stream rather than bursts of a
full second's quota. A message larger than a whole second's byte budget goes alone, on an
otherwise empty window.

Why not a library: pyrate-limiter and limits answer "allowed now?" (or sleep in real time
inside the call), while the uplink needs "how long until?" against a clock a test moves;
the log below is the whole algorithm.

    pacer = Pacer(100, 512 * 1024, clock=time.monotonic)
    wait_s = pacer.delay(len(topic) + len(payload))   # 0.0: send now
    ...publish...
    pacer.sent(len(topic) + len(payload))
"""

from __future__ import annotations

import threading
import time
from collections import deque

from oneeye.types import Clock

WINDOW_S = 1.0


class Pacer:
    def __init__(self, publishes_per_s: float, bytes_per_s: int, *,
                 clock: Clock = time.monotonic) -> None:
        if publishes_per_s <= 0 or bytes_per_s <= 0:
            raise ValueError("publishes_per_s and bytes_per_s must be positive")
        self.publishes_per_s = publishes_per_s
        self.bytes_per_s = bytes_per_s
        self.clock = clock
        self._log: deque[tuple[float, int]] = deque()   # (sent at, bytes), oldest first
        self._bytes = 0
        self._lock = threading.Lock()
        self.waited_s = 0.0    # total pacing delay handed out (for health and benches)

    def _expire(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - WINDOW_S:
            self._bytes -= self._log.popleft()[1]

    def delay(self, size: int) -> float:
        """Seconds until a message of ``size`` bytes may be sent (0.0: now)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if not self._log:
                return 0.0
            ready = self._log[-1][0] + 1.0 / self.publishes_per_s
            count = int(self.publishes_per_s)
            if len(self._log) >= count:
                ready = max(ready, self._log[-count][0] + WINDOW_S)
            over = self._bytes + size - self.bytes_per_s
            if over > 0:
                # Wait until enough of the oldest messages leave the window (all of them
                # for a message bigger than the whole budget).
                freed, last = 0, self._log[-1][0]
                for sent_at, n in self._log:
                    freed += n
                    if freed >= over:
                        last = sent_at
                        break
                ready = max(ready, last + WINDOW_S)
            wait = max(0.0, ready - now)
            self.waited_s += wait
            return wait

    def sent(self, size: int) -> None:
        """Record a message of ``size`` bytes sent now."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            self._log.append((now, size))
            self._bytes += size

    def rate(self) -> float:
        """Messages sent in the last second."""
        with self._lock:
            self._expire(self.clock())
            return float(len(self._log))
