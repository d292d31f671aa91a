"""One detection budget for every camera of an edge, spent on the people not yet decided.

Face detection (dlib HOG over motion regions, 60–120 ms a pass on a loaded 2-core box)
is what limits cameras per box, not decoding. Each camera asks for a detection pass at
its own cadence (``detection.fps`` of its clock, as Frigate's detect fps); the
:class:`DetectScheduler` lets ``slots`` passes run at once and, when cameras wait,
grants the next slot by :class:`Need`:

* ``UNDECIDED`` — the camera has an open track with no decision yet (a new face, or one
  still being identified): every pass now is a look that can name someone in time;
* ``MOTION`` — something moves outside the camera's tracks: someone may be arriving;
* ``QUIET`` — only decided tracks, or a still scene (the slow sweep): these wait.

Within one need the camera that asked first goes first. A ticket that waited
``max_wait_s`` counts as ``UNDECIDED``, so a quiet camera is delayed, never starved. A
slot granted to a camera that does not take it up within ``max_wait_s`` (its stream froze
between asking and its turn) goes to the next camera.

The core is not threaded and takes the time it is given, so a test drives it with
fake cameras and a clock it moves (``tests/test_edge_scheduler.py``); :class:`Seat` is a
camera's handle, used from that camera's thread. A live or realtime camera does not
block on it: while its turn has not come it keeps decoding and tracking, and asks again
at its next frame (so the pass runs on a fresh frame). A file read as fast as it
decodes waits for its turn instead, or it would run through its frames unsearched.

    sched = DetectScheduler(slots=1)
    seat = sched.seat("door")
    if seat.ready(Need.UNDECIDED):   # asks (or updates its ask); True once granted
        ...detect...
        seat.release()
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class Need(IntEnum):
    """How much a camera's next detection pass is worth (lower is served first)."""

    UNDECIDED = 0
    MOTION = 1
    QUIET = 2


@dataclass
class Ticket:
    """One camera's request for a detection pass."""

    camera: str
    need: Need
    asked_at: float
    order: int
    granted_at: float | None = None
    claimed: bool = False      # the camera has seen the grant and is running its pass

    @property
    def granted(self) -> bool:
        return self.granted_at is not None


class DetectScheduler:
    """``slots`` detection passes at once over all cameras, granted by need then age.

    ``clock`` (seconds, monotonic) is read when no time is given; ``max_wait_s`` is how long
    a ticket may wait before it is served as if ``UNDECIDED``. Thread-safe.
    """

    def __init__(self, slots: int = 1, *, max_wait_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._lock = threading.Condition()
        self._waiting: dict[str, Ticket] = {}
        self._running: dict[str, Ticket] = {}
        self._order = itertools.count()
        #: passes granted per camera and need (what the bench and health can show)
        self.granted: dict[str, dict[Need, int]] = {}

    def seat(self, camera: str) -> Seat:
        return Seat(self, camera)

    def ask(self, camera: str, need: Need, now: float | None = None) -> Ticket:
        """Ask for a pass for ``camera`` (once per camera: asking again updates the need of
        the waiting ticket, keeping its place in time); grants at once if a slot is free."""
        t = self._clock() if now is None else now
        with self._lock:
            ticket = self._running.get(camera) or self._waiting.get(camera)
            if ticket is None:
                ticket = Ticket(camera, need, t, next(self._order))
                self._waiting[camera] = ticket
            elif not ticket.granted:
                ticket.need = need
            self._grant(t)
            if ticket.granted:
                ticket.claimed = True   # the asker runs its pass now
            return ticket

    def release(self, camera: str, now: float | None = None) -> None:
        """``camera``'s pass is done (or given up): its slot goes to the next ticket."""
        t = self._clock() if now is None else now
        with self._lock:
            self._running.pop(camera, None)
            self._waiting.pop(camera, None)
            self._grant(t)

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block up to ``timeout`` s (real time) until ``ticket`` is granted; True if it is.
        A slot freed re-ranks the waiting tickets at the scheduler's clock."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not ticket.granted:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def waiting(self) -> list[str]:
        """Cameras waiting, in the order they would be served now."""
        with self._lock:
            return [tk.camera for tk in sorted(self._waiting.values(),
                                               key=lambda tk: self._rank(tk, self._clock()))]

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def _rank(self, tk: Ticket, now: float) -> tuple[int, float, int]:
        need = Need.UNDECIDED if now - tk.asked_at >= self.max_wait_s else tk.need
        return (int(need), tk.asked_at, tk.order)

    def _grant(self, now: float) -> None:
        for tk in list(self._running.values()):
            if not tk.claimed and tk.granted_at is not None \
                    and now - tk.granted_at >= self.max_wait_s:
                del self._running[tk.camera]   # not taken up: the camera asks again later
        while len(self._running) < self.slots and self._waiting:
            tk = min(self._waiting.values(), key=lambda x: self._rank(x, now))
            del self._waiting[tk.camera]
            tk.granted_at = now
            self._running[tk.camera] = tk
            per = self.granted.setdefault(tk.camera, {})
            per[tk.need] = per.get(tk.need, 0) + 1
            self._lock.notify_all()


class Seat:
    """One camera's handle on the scheduler (used from that camera's thread only)."""

    def __init__(self, scheduler: DetectScheduler, camera: str) -> None:
        self.scheduler = scheduler
        self.camera = camera
        self._ticket: Ticket | None = None

    def ready(self, need: Need, *, block: bool = False, wait_s: float = 0.0) -> bool:
        """Ask for a pass at ``need`` (or update the ask); True when the pass may run now.
        ``block``: wait for the turn (re-ranking on the way: a waiting camera is served
        undecided-first like any other, and ages into ``UNDECIDED`` after ``max_wait_s``).
        ``wait_s``: without ``block``, still wait up to this long (real seconds) for the
        grant — a live camera passes one frame period, so a slot freed meanwhile is taken
        at once instead of lying idle until this camera's next frame."""
        self._ticket = self.scheduler.ask(self.camera, need)
        if not block and wait_s > 0 and not self._ticket.granted \
                and self.scheduler.wait(self._ticket, timeout=wait_s):
            self._ticket = self.scheduler.ask(self.camera, need)   # claims the grant
        while block and not self._ticket.granted:
            self.scheduler.wait(self._ticket, timeout=0.25)
            self._ticket = self.scheduler.ask(self.camera, need)   # ages it at the clock
        return self._ticket.granted

    def release(self) -> None:
        self._ticket = None
        self.scheduler.release(self.camera)
