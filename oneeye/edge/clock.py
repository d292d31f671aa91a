"""The edge's own view of its clock, for ``oneeye.health/1`` ``clock``.

Two things the device can tell by itself:

- whether the kernel says NTP has set the clock: ``adjtimex(2)`` with no change requested
  returns ``TIME_ERROR`` (5) while the clock is unsynchronised (``unsynced``), another
  state when it is (``ok``); where the call is missing or refused, ``unknown``;
- whether the wall clock jumped: between two looks, ``time.time()`` and ``time.monotonic()``
  must advance alike; a difference beyond ``jump_s`` (default 2 s: far more than any drift
  over a health interval) is a jump (NTP stepping a wrong clock, someone setting the time,
  a board restoring its last saved time). ``jumped`` is reported until a look finds none.

The cloud checks the rest (a clock that is simply wrong): :mod:`oneeye.cloud.skew`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

from oneeye.events import ClockHealth
from oneeye.types import Clock, ClockState

log = logging.getLogger(__name__)

_TIME_ERROR = 5


def ntp_state() -> ClockState:
    """``ok``, ``unsynced`` or ``unknown`` from ``adjtimex(2)`` (Linux; read only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)   # struct timex is ~208 bytes; modes = 0
        state = int(libc.adjtimex(buf))
    except (OSError, AttributeError):
        return "unknown"
    if state < 0:
        return "unknown"
    return "unsynced" if state == _TIME_ERROR else "ok"


class ClockWatch:
    """Looks at the clock at each :meth:`health` (the health interval) and reports it.

    ``wall`` and ``mono`` are injectable (``time.time`` / ``time.monotonic``) so a test
    can move the wall clock without touching the machine's.
    """

    def __init__(self, *, jump_s: float = 2.0, wall: Clock = time.time,
                 mono: Clock = time.monotonic) -> None:
        self.jump_s = jump_s
        self._wall = wall
        self._mono = mono
        self._lock = threading.Lock()
        self._last = (wall(), mono())
        self.jumps = 0
        self.last_jump_s: float | None = None
        self._jumped_now = False

    def check(self) -> float | None:
        """Compare both clocks since the last look; the jump in seconds (+ forward) or None."""
        with self._lock:
            wall, mono = self._wall(), self._mono()
            last_wall, last_mono = self._last
            self._last = (wall, mono)
            jump = (wall - last_wall) - (mono - last_mono)
            self._jumped_now = abs(jump) > self.jump_s
            if not self._jumped_now:
                return None
            self.jumps += 1
            self.last_jump_s = round(jump, 1)
        log.warning("device clock jumped %+.1f s (wall clock against the monotonic clock); "
                    "times of events around it may be off", jump)
        return jump

    def health(self) -> ClockHealth:
        self.check()
        state: ClockState = "jumped" if self._jumped_now else ntp_state()
        return ClockHealth(state=state, jumps=self.jumps, last_jump_s=self.last_jump_s)
