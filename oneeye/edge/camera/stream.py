"""Live frame sources (webcam, RTSP/HTTP stream): newest frame only, reconnect, stall watchdog.

Live sources (webcam, URL) run a capture thread that keeps only the newest
frame: when processing is slower than the camera, old frames are dropped (and
counted) instead of queueing, so frame age never builds up. A camera that stops
delivering is reopened with exponential backoff (logged at each state change);
it never raises into the pipeline. A stream that stays open but goes silent (a
camera that lost its sensor, a NAT that dropped the flow) is caught by a
watchdog: after ``stall_s`` without a frame the source says ``reconnecting`` and
opens a new connection at once, whatever OpenCV's own timeouts are; the blocked
read is abandoned (its thread ends when FFmpeg's read timeout, set to
``2 * stall_s``, fires) because releasing a capture from another thread is unsafe.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator

from oneeye.edge.camera.sources import (
    Capture,
    CaptureFactory,
    Frame,
    Source,
    cv2_capture,
    valid_frame,
)

log = logging.getLogger(__name__)


class LiveSource(Source):
    """A webcam or network stream: newest frame only, reconnect with backoff, stall watchdog.

    ``max_attempts`` consecutive failed (re)connections put the source in
    ``failed`` and end it; None (the default) retries forever, as a camera on a
    wall should. Backoff doubles from ``backoff_s`` up to ``max_backoff_s``. A
    stream that delivers no frame for ``stall_s`` seconds is reported
    ``reconnecting`` and reopened on a new capture thread (see the module doc).
    ``clock`` (monotonic seconds) is injectable for tests.
    """

    live = True

    def __init__(self, spec: str | int, *, opener: CaptureFactory | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 max_attempts: int | None = None, stall_s: float = 5.0,
                 max_bad_reads: int = 25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(str(spec))
        self.spec = spec
        # FFmpeg gives up on a silent stream after 2 * stall_s, freeing an abandoned thread.
        self._opener = opener or functools.partial(cv2_capture, timeout_s=2 * stall_s)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.stall_s = stall_s
        self.max_bad_reads = max_bad_reads
        self.stalls = 0
        #: Connection attempts that failed (camera down, refused, unreachable), in total.
        self.failed_opens = 0
        self._clock = clock
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._generation = 0              # bumped to abandon a capture thread
        self._reading = 0                 # generation whose capture is open and read
        self._thread: threading.Thread | None = None
        self._last_frame_at = clock()

    def _open(self) -> Capture | None:
        try:
            cap = self._opener(self.spec)
        except Exception as exc:  # OpenCV/FFmpeg raise anything; a camera must not crash us
            log.debug("source %s: open raised %s", self.name, exc)
            return None
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _capture_loop(self, generation: int) -> None:
        index = 0
        attempts = 0
        delay = self.backoff_s
        try:
            while self._current(generation):
                cap = self._open()
                if not self._current(generation):
                    if cap is not None:
                        cap.release()
                    return
                if cap is None:
                    attempts += 1
                    self.failed_opens += 1
                    if self.max_attempts is not None and attempts >= self.max_attempts:
                        self._set_state("failed", f"gave up after {attempts} attempts")
                        return
                    # "connecting" is the first attempt; after a failure we are retrying.
                    self._set_state("reconnecting", f"retry in {delay:.1f}s")
                    if self._stop.wait(delay):
                        return
                    delay = min(delay * 2, self.max_backoff_s)
                    continue
                with self._cond:
                    self._last_frame_at = self._clock()  # the stall clock starts at open
                    self._reading = generation
                index = self._read_until_drop(cap, index, generation)
                with self._cond:
                    if self._reading == generation:
                        self._reading = 0
                if self._current(generation):
                    attempts = 0
                    delay = self.backoff_s
                    self.reconnects += 1
                    self._set_state("reconnecting", "stream dropped")
        finally:
            with self._cond:
                self._cond.notify_all()

    def _read_until_drop(self, cap: Capture, index: int, generation: int) -> int:
        bad = 0
        last_good = self._clock()
        base, c0 = self.decode_cpu_s, time.thread_time()
        try:
            while self._current(generation):
                ok, image = cap.read()
                self.decode_cpu_s = base + time.thread_time() - c0
                if not self._current(generation):
                    return index          # abandoned by the watchdog while blocked in read()
                if ok and valid_frame(image):
                    bad = 0
                    last_good = self._clock()
                    self._set_state("ok")
                    frame = Frame(index, image, time.time())
                    index += 1
                    with self._cond:
                        if self._latest is not None:
                            self.dropped_frames += 1
                        self._latest = frame
                        self._last_frame_at = last_good
                        self._cond.notify_all()
                    continue
                if ok:
                    self.corrupt_frames += 1
                bad += 1
                if bad >= self.max_bad_reads or self._clock() - last_good > self.stall_s:
                    return index
                self._stop.wait(0.01)
        finally:
            cap.release()
        return index

    def _start_capture(self) -> threading.Thread:
        with self._cond:
            self._generation += 1
            self._last_frame_at = self._clock()
            thread = threading.Thread(target=self._capture_loop, args=(self._generation,),
                                      name=f"oneeye-capture-{self.name}", daemon=True)
            self._thread = thread
        thread.start()
        return thread

    def check_stall(self) -> bool:
        """If the open stream has been silent for ``stall_s``: report it, reopen; True then."""
        with self._cond:
            silent = self._clock() - self._last_frame_at
            if (self._reading != self._generation or silent <= self.stall_s
                    or self._stop.is_set()):
                return False
        self.stalls += 1
        self.reconnects += 1
        self._set_state("reconnecting", f"no frame for {silent:.1f} s: stalled, reopening")
        self._start_capture()
        return True

    def frames(self) -> Iterator[Frame]:
        thread = self._start_capture()
        try:
            while not self._stop.is_set():
                with self._cond:
                    while (self._latest is None and not self._stop.is_set()
                           and self._thread is not None and self._thread.is_alive()):
                        self._cond.wait(min(0.2, self.stall_s / 4))
                        if self._clock() - self._last_frame_at > self.stall_s:
                            break
                    frame, self._latest = self._latest, None
                    thread = self._thread or thread
                if frame is None:
                    if self.check_stall():
                        continue
                    if not thread.is_alive():
                        return
                    continue
                yield frame
        finally:
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            thread.join(timeout=2.0)
