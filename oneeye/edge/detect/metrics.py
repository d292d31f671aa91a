"""Edge vital signs of one camera: throughput, frame age, stage timings, event latency, tracks.

Each camera's pipeline records into its own :class:`Metrics`. The runner reads
:meth:`Metrics.fps`, :meth:`Metrics.frame_age_ms` and the latencies for the health
message (``oneeye.health/1``); :meth:`Metrics.snapshot` (a typed
:class:`MetricsSnapshot`) and :meth:`Metrics.summary` are what ``oneeye edge`` and the
benches print.

fps and frame age describe the present, from frames actually received: fps counts
the frames of the last ``window_s`` seconds (None when there were none, or none for
``silent_after_s``: a camera that delivers nothing has no fps), and frame age is
the age of the newest frame at the moment of the report, so it keeps growing while
a camera is frozen. Stage timings are averaged over the last ``window`` samples.
Latency is "first frame the face was tracked → event": media time for file sources
(independent of this machine's speed), wall time for live ones. Time comes from an
injectable monotonic clock (``time.monotonic`` by default: intervals must not jump
with the wall clock).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

#: Where a camera's CPU goes: decode the frame, find motion, detect faces in regions (HOG),
#: track, 5-point landmarks, encode, match (decide the track), publish (hand events to sinks).
STAGES = ("decode", "motion", "detect", "track", "landmarks", "encode", "match", "publish")


@dataclass(frozen=True)
class MetricsSnapshot:
    """One camera's metrics at one moment. Times in ms, rates per second."""

    fps: float | None              # frames processed in the last window / window; None: none
    frame_age_ms: float | None     # age of the newest processed frame now; None: never/unpaced
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    stage_ms: dict[str, float]     # mean per stage over the last samples
    open_tracks: int
    frames: int
    events: int
    encodes: int
    uptime_s: float


def _ms(seconds: float) -> float:
    return round(1000 * seconds, 1)


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The ``q``-th percentile of ``seconds`` in ms (None for no samples)."""
    return _ms(float(np.percentile(seconds, q))) if seconds else None


class Metrics:
    def __init__(self, *, window: int = 300, window_s: float = 10.0,
                 silent_after_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.window_s = window_s
        #: No frame for this long (the source's ``stall_s``): the camera delivers nothing.
        self.silent_after_s = silent_after_s
        self._stage: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._cpu: dict[str, float] = dict.fromkeys(STAGES, 0.0)   # thread CPU s, all time
        self._frame_age: deque[float] = deque(maxlen=2000)
        self._frame_times: deque[float] = deque()
        self._newest: tuple[float, float | None] | None = None  # (clock at record, its age)
        self._latency: deque[float] = deque(maxlen=2000)
        self.started = clock()
        self.frames = 0
        self.events = 0
        self.encodes = 0
        self.detections = 0
        self.open_tracks = 0
        self.tracks_total = 0
        self.events_failed = 0   # events that could not be built (logged; retried)
        self.identity_switches = 0   # tracks whose face changed person (looks started over)
        #: frames evened out before detection as too dark (oneeye.images.even_light)
        self.dark_frames = 0
        #: looks not encoded, by reason (oneeye.faces.QualityProblem: too_small/dark/blurred)
        self.skipped_looks: dict[str, int] = {}

    def skipped(self, reason: str) -> int:
        """One look not encoded for ``reason``; returns how many have been for it."""
        with self._lock:
            n = self.skipped_looks[reason] = self.skipped_looks.get(reason, 0) + 1
            return n

    def stage(self, name: str, seconds: float, cpu_s: float | None = None) -> None:
        """One ``name`` step took ``seconds`` (wall) and ``cpu_s`` of its thread's CPU."""
        with self._lock:
            self._stage[name].append(seconds)
            if cpu_s is not None:
                self._cpu[name] += cpu_s

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the wall time and the calling thread's CPU time of the block as ``name``."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.stage(name, time.perf_counter() - t0, time.thread_time() - c0)

    def add_cpu(self, name: str, cpu_s: float) -> None:
        """CPU seconds spent on ``name`` in another thread (a source's decoder)."""
        with self._lock:
            self._cpu[name] += cpu_s

    def cpu_s(self) -> dict[str, float]:
        """Thread CPU seconds spent per stage since the start (worker threads included)."""
        with self._lock:
            return dict(self._cpu)

    def encoded(self) -> None:
        """One encoding finished (called from worker threads; timed with :meth:`timed`)."""
        with self._lock:
            self.encodes += 1

    def frame(self, age_s: float | None) -> None:
        """One frame processed; ``age_s`` is how old it was (None: not a paced source)."""
        now = self._clock()
        with self._lock:
            self.frames += 1
            self._frame_times.append(now)
            self._trim(now)
            age = None if age_s is None else max(0.0, age_s)
            self._newest = (now, age)
            if age is not None:
                self._frame_age.append(age)

    def _trim(self, now: float) -> None:
        while self._frame_times and self._frame_times[0] < now - self.window_s:
            self._frame_times.popleft()

    def event(self, latency_s: float | None) -> None:
        with self._lock:
            self.events += 1
            if latency_s is not None:
                self._latency.append(max(0.0, latency_s))

    def latencies(self) -> list[float]:
        with self._lock:
            return list(self._latency)

    def frame_ages(self) -> list[float]:
        """Age (s) of each recent processed frame when it was processed (paced sources)."""
        with self._lock:
            return list(self._frame_age)

    def stage_samples(self) -> dict[str, list[float]]:
        with self._lock:
            return {s: list(v) for s, v in self._stage.items()}

    def fps(self) -> float | None:
        """Frames of the last ``window_s`` per second; None when none arrived in it or,
        with ``silent_after_s``, none for that long (a silent camera has no rate)."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            n = len(self._frame_times)
            newest = self._frame_times[-1] if n else None
        if newest is not None and self.silent_after_s is not None \
                and now - newest > self.silent_after_s:
            return None
        span = min(self.window_s, now - self.started)
        return round(n / span, 2) if n and span > 0 else None

    def frame_age_ms(self) -> float | None:
        with self._lock:
            newest = self._newest
        if newest is None:
            return None
        at, age = newest
        return None if age is None else _ms(age + max(0.0, self._clock() - at))

    def overall_fps(self) -> float:
        elapsed = self._clock() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0

    def snapshot(self) -> MetricsSnapshot:
        stages = self.stage_samples()
        lat = self.latencies()
        return MetricsSnapshot(
            fps=self.fps(), frame_age_ms=self.frame_age_ms(),
            latency_p50_ms=percentile_ms(lat, 50), latency_p95_ms=percentile_ms(lat, 95),
            stage_ms={s: round(1000 * float(np.mean(v)), 2) for s, v in stages.items() if v},
            open_tracks=self.open_tracks, frames=self.frames, events=self.events,
            encodes=self.encodes, uptime_s=round(self._clock() - self.started, 1))

    def summary(self) -> str:
        s = self.snapshot()
        stages = ", ".join(f"{k} {v:.1f}" for k, v in s.stage_ms.items())
        return (f"frames {s.frames} at {self.overall_fps():.1f} fps, events {s.events}, "
                f"encodes {s.encodes}, latency p50 {s.latency_p50_ms} ms p95 "
                f"{s.latency_p95_ms} ms, frame age {s.frame_age_ms} ms, stage ms: {stages}"
                + (f", dark frames evened {self.dark_frames}" if self.dark_frames else "")
                + self._skipped_text())

    def _skipped_text(self) -> str:
        with self._lock:
            skipped = dict(sorted(self.skipped_looks.items()))
        if not skipped:
            return ""
        return ", looks skipped: " + ", ".join(f"{k} {v}" for k, v in skipped.items())


def merged_stage_ms(metrics: Iterable[Metrics]) -> dict[str, float]:
    """Mean per stage over every camera's recent samples (ms)."""
    pooled: dict[str, list[float]] = {}
    for m in metrics:
        for stage, values in m.stage_samples().items():
            pooled.setdefault(stage, []).extend(values)
    return {s: round(1000 * float(np.mean(v)), 2) for s, v in pooled.items() if v}
