"""Edge vital signs: throughput, frame age, stage timings, event latency, tracks.

The pipeline records into one :class:`Metrics`; :meth:`Metrics.snapshot` is the
dict the health message (``oneeye.health/1``) is built from, and
:meth:`Metrics.summary` is what ``oneeye edge`` prints at exit. Stage timings
and frame age are averaged over a sliding window so the health message shows
the present, not the whole uptime. Latency is "first frame the face was
tracked → event": media time for file sources (independent of this machine's
speed), wall time for live ones.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

STAGES = ("decode", "detect", "track", "encode", "match")


class Metrics:
    def __init__(self, *, window: int = 300,
                 camera_state: Callable[[], str] | None = None) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._stage: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._frame_age: deque[float] = deque(maxlen=window)
        self._frame_times: deque[float] = deque(maxlen=window)
        self._latency: deque[float] = deque(maxlen=2000)
        self._camera_state = camera_state
        self.started = time.monotonic()
        self.frames = 0
        self.events = 0
        self.encodes = 0
        self.detections = 0
        self.open_tracks = 0
        self.tracks_total = 0
        self.events_failed = 0   # events that could not be built (logged; retried)

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self._stage[name].append(seconds)

    def encoded(self, seconds: float) -> None:
        """One encoding finished (called from worker threads)."""
        with self._lock:
            self._stage["encode"].append(seconds)
            self.encodes += 1

    def frame(self, age_s: float | None) -> None:
        with self._lock:
            self.frames += 1
            self._frame_times.append(time.monotonic())
            if age_s is not None:
                self._frame_age.append(max(0.0, age_s))

    def event(self, latency_s: float | None) -> None:
        with self._lock:
            self.events += 1
            if latency_s is not None:
                self._latency.append(max(0.0, latency_s))

    def latencies(self) -> list[float]:
        with self._lock:
            return list(self._latency)

    def fps(self) -> float:
        with self._lock:
            times = list(self._frame_times)
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def overall_fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0

    def snapshot(self) -> dict[str, Any]:
        """Keys: fps, frame_age_ms, latency_ms {p50, p95}, stage_ms {…}, open_tracks,
        camera_state, frames, events (plus encodes, uptime_s)."""
        with self._lock:
            stage_ms = {s: round(1000 * float(np.mean(v)), 2) for s, v in self._stage.items()
                        if v}
            age = round(1000 * float(np.mean(self._frame_age)), 1) if self._frame_age else None
            lat = list(self._latency)
            frames, events, encodes = self.frames, self.events, self.encodes
        p50 = round(1000 * float(np.percentile(lat, 50)), 1) if lat else None
        p95 = round(1000 * float(np.percentile(lat, 95)), 1) if lat else None
        return {
            "fps": round(self.fps(), 2),
            "frame_age_ms": age,
            "latency_ms": {"p50": p50, "p95": p95},
            "stage_ms": stage_ms,
            "open_tracks": self.open_tracks,
            "camera_state": self._camera_state() if self._camera_state else "ok",
            "frames": frames,
            "events": events,
            "encodes": encodes,
            "uptime_s": round(time.monotonic() - self.started, 1),
        }

    def summary(self) -> str:
        s = self.snapshot()
        stages = ", ".join(f"{k} {v:.1f}" for k, v in s["stage_ms"].items())
        lat = s["latency_ms"]
        return (f"frames {s['frames']} at {self.overall_fps():.1f} fps, events {s['events']}, "
                f"encodes {s['encodes']}, latency p50 {lat['p50']} ms p95 {lat['p95']} ms, "
                f"frame age {s['frame_age_ms']} ms, stage ms: {stages}, "
                f"camera {s['camera_state']}")
