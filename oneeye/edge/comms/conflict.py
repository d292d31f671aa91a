"""Two devices with one MQTT client id: tell it from the pattern of dropped connections.

MQTT brokers, AWS IoT Core included, close the older of two connections with the same
client id. Two devices sharing one (a cloned SD card, a certificate copied to a spare) knock
each other off at every reconnect, and each only sees "connection lost". A connection the
broker closes within :data:`QUICK_DROP_S` of its start is a quick drop; after
:data:`QUICK_DROPS_FOR_CONFLICT` in a row, :meth:`QuickDrops.conflict` says why (health
reports it) and one error names the client id; a connection that then lasts clears it.
A single broker restart or network cut is one drop, not a conflict.
"""

from __future__ import annotations

import logging
import threading
import time

from oneeye.types import Clock

log = logging.getLogger(__name__)

#: A connection the broker closes within this many seconds of its start is a "quick drop".
QUICK_DROP_S = 15.0
#: This many quick drops in a row: another client is probably connecting with our client id.
QUICK_DROPS_FOR_CONFLICT = 3


class QuickDrops:
    """Counts quick drops of one connection (``up``/``down`` from the transport's callbacks).

    ``clock``: monotonic seconds, injectable for tests.
    """

    def __init__(self, client_id: str, where: str, *, clock: Clock = time.monotonic) -> None:
        self.client_id = client_id
        self.where = where
        self._clock = clock
        self._lock = threading.Lock()
        self._up_since: float | None = None
        #: Quick drops in a row, and in total.
        self.in_a_row = 0
        self.total = 0
        self._conflict: str | None = None

    def up(self) -> None:
        with self._lock:
            self._up_since = self._clock()

    def down(self) -> None:
        with self._lock:
            up, self._up_since = self._up_since, None
            if up is None:
                return
            if self._clock() - up > QUICK_DROP_S:
                self.in_a_row = 0
                return
            self.in_a_row += 1
            self.total += 1
            if self.in_a_row < QUICK_DROPS_FOR_CONFLICT or self._conflict is not None:
                return
            self._conflict = (
                f"the broker closed the connection within {QUICK_DROP_S:.0f} s of connecting "
                f"{self.in_a_row} times in a row: another device may be using client id "
                f"{self.client_id!r} (in AWS IoT, the thing name)")
        log.error("MQTT %s: %s", self.where, self._conflict)

    def conflict(self) -> str | None:
        """Why another device may be using the client id, or None (cleared once a connection
        has lasted :data:`QUICK_DROP_S`)."""
        with self._lock:
            lasting = (self._up_since is not None
                       and self._clock() - self._up_since > QUICK_DROP_S)
            if self._conflict is None or not lasting:
                return self._conflict
            self._conflict = None
            self.in_a_row = 0
        log.warning("MQTT connection as %s has held for %.0f s: no sign of a second device "
                    "with this client id any more", self.client_id, QUICK_DROP_S)
        return None
