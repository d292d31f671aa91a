"""Wiring of one edge process: every camera → its pipeline → sinks (+ uplink, sync, preview).

``run_edge`` is shared by ``oneeye edge`` and the Greengrass component's
``main.py``; callers own signal handling and pass a ``stop_event``.

Every camera of ``settings.per_camera()`` gets its own source, pipeline (tracker,
cooldowns per person and camera) and thread, so a dead or frozen camera only
blocks its own thread. They share one :class:`GalleryHolder`, one outbox/uplink,
one gallery sync, one detection scheduler that grants ``detection_slots`` passes at a
time to the cameras with undecided faces first
(:class:`~oneeye.edge.detect.scheduler.DetectScheduler`), and one encoding pool that serves
the cameras round-robin, undecided faces first (:class:`~oneeye.edge.detect.pool.FairPool`):
a camera facing a crowd cannot delay another camera's face. Live sources keep only their
newest frame and realtime files skip late frames, so a camera that falls behind skips
frames instead of queueing them.

On stop it drains: pending encodings finish, their events reach every sink, and
the uplink (the durable outbox) is closed last, so nothing pending is lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from oneeye import faces
from oneeye.edge.camera.open import open_source
from oneeye.edge.camera.sources import Source
from oneeye.edge.comms.health import Vitals
from oneeye.edge.comms.publishers import MessageCallback
from oneeye.edge.comms.uplink import Uplink
from oneeye.edge.detect.metrics import Metrics, merged_stage_ms, percentile_ms
from oneeye.edge.detect.pipeline import FrameHook, Pipeline, Sink
from oneeye.edge.detect.pool import FairPool
from oneeye.edge.detect.scheduler import DetectScheduler
from oneeye.edge.device.preview import Preview
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.gallery.sync import GallerySync
from oneeye.edge.settings import CameraConfig, EdgeSettings
from oneeye.errors import ConfigError
from oneeye.events import CameraHealth, LatencyStats, MatchEvent
from oneeye.gallery import load
from oneeye.types import redact_url

log = logging.getLogger(__name__)


class UplinkLike(Protocol):
    def start(self) -> object: ...
    def submit(self, event: MatchEvent) -> None: ...
    def subscribe(self, topic: str, callback: MessageCallback) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


UplinkFactory = Callable[[EdgeSettings, Callable[[], Vitals]], UplinkLike]


def load_holder(settings: EdgeSettings) -> GalleryHolder:
    """A holder with every ``settings.galleries`` file whose watchlist is followed."""
    holder = GalleryHolder()
    for path in settings.galleries:
        gallery = load(path)
        if gallery.watchlist not in settings.watchlists:
            log.warning("%s: watchlist %s is not followed; ignored", path, gallery.watchlist)
            continue
        holder.swap(gallery)
    return holder


class JsonlSink:
    """Appends one event per line and flushes each, so a crash loses no written event."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, event: MatchEvent) -> None:
        with self._lock:
            self._fh.write(event.to_json() + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


@dataclass
class Camera:
    """One camera of the process: its resolved config, source, metrics and pipeline."""

    camera_id: str
    config: CameraConfig
    source: Source
    metrics: Metrics = field(default_factory=Metrics)
    error: BaseException | None = None

    def health(self) -> CameraHealth:
        return CameraHealth(state=self.source.state, fps=self.metrics.fps(),
                            frame_age_ms=self.metrics.frame_age_ms(),
                            dropped_frames=self.source.dropped_frames,
                            open_tracks=self.metrics.open_tracks,
                            reconnects=self.source.reconnects)

    def run(self, pipeline: Pipeline, stop: threading.Event, duration_s: float | None) -> None:
        try:
            # Load dlib and this thread's detector (~6 s on a loaded 2-core box) before the
            # camera's clock starts, or a realtime source skips its first seconds.
            faces.detect(np.zeros((80, 80, 3), np.uint8))
            pipeline.run(self.source, stop_event=stop, duration_s=duration_s)
        except Exception as exc:  # thread boundary: the other cameras go on; re-raised at end
            log.exception("camera %s stopped on an error", self.camera_id)
            self.error = exc


def open_cameras(settings: EdgeSettings) -> list[Camera]:
    """One :class:`Camera` per ``settings.per_camera()``; a bad file or folder raises
    :class:`~oneeye.errors.SourceError` naming it (live sources never raise), no camera at
    all :class:`~oneeye.errors.ConfigError`."""
    if not settings.cameras:
        raise ConfigError("no camera: declare cameras (cameras: {cam-1: {source: \"0\"}}) or "
                          "give --source [CAMERA_ID=]SOURCE")
    cameras: list[Camera] = []
    try:
        for camera_id, c in settings.per_camera().items():
            source = open_source(c.source, realtime=c.realtime, loop=c.loop, stall_s=c.stall_s)
            cameras.append(Camera(camera_id, c, source, Metrics(silent_after_s=c.stall_s)))
    except BaseException:
        for cam in cameras:
            cam.source.close()
        raise
    return cameras


def vitals_of(cameras: list[Camera], holder: GalleryHolder,
              sync: GallerySync | None) -> Vitals:
    """The runner's part of ``oneeye.health/1`` now."""
    latencies = [s for cam in cameras for s in cam.metrics.latencies()]
    return Vitals(cameras={c.camera_id: c.health() for c in cameras},
                  latency_ms=LatencyStats(p50=percentile_ms(latencies, 50),
                                          p95=percentile_ms(latencies, 95)),
                  stage_ms=merged_stage_ms(c.metrics for c in cameras),
                  gallery_versions=holder.current().versions(),
                  sync=sync.stats() if sync is not None else None,
                  storage={"gallery_cache": sync.cache_storage} if sync is not None else {})


def start_gallery_sync(settings: EdgeSettings, holder: GalleryHolder,
                       uplink: UplinkLike | None) -> GallerySync | None:
    """The downlink: a started :class:`GallerySync` when enabled, following the update
    topic over ``uplink``'s connection when there is one (polling S3 either way)."""
    if not settings.gallery_sync.enabled:
        return None
    sync = GallerySync(settings, holder)
    sync.start()
    if uplink is not None:
        uplink.subscribe(settings.gallery_sync.update_topic, sync.on_message)
    return sync


def _default_uplink(settings: EdgeSettings, vitals: Callable[[], Vitals]) -> UplinkLike:

    uplink: UplinkLike = Uplink(settings, vitals)
    return uplink


def run_edge(settings: EdgeSettings, holder: GalleryHolder, *, sinks: Iterable[Sink] = (),
             stop_event: threading.Event | None = None,
             uplink_factory: UplinkFactory | None = None,
             duration_s: float | None = None) -> dict[str, Camera]:
    """Run every camera until its source ends, ``stop_event`` is set or ``duration_s``
    passes; return the cameras (metrics, source counters) by camera id. A camera that
    failed with an error is reported after the others finished (its error is re-raised)."""
    cameras = open_cameras(settings)
    stop = stop_event or threading.Event()
    all_sinks: list[Sink] = list(sinks)
    closers: list[Callable[[], None]] = []   # run in reverse order of setup
    running: list[threading.Thread] = []
    sync: GallerySync | None = None
    uplink: UplinkLike | None = None
    try:
        pool = FairPool(settings.workers)
        closers.append(pool.shutdown)
        scheduler = DetectScheduler(settings.detection_slots,
                                    max_wait_s=settings.detection_max_wait_s)
        if settings.events_out is not None:
            jsonl = JsonlSink(settings.events_out)
            all_sinks.append(jsonl)
            closers.append(jsonl.close)
        if settings.publish.url != "none":
            uplink = (uplink_factory or _default_uplink)(
                settings, lambda: vitals_of(cameras, holder, sync))
            uplink.start()
            all_sinks.append(uplink.submit)
            closers.append(uplink.close)   # after the drain: the outbox closes last but one
        sync = start_gallery_sync(settings, holder, uplink)
        if sync is not None:
            closers.append(sync.stop)
        on_frame: FrameHook | None = None
        if settings.preview_port is not None:

            preview = Preview(settings.preview_port).start()
            closers.append(preview.close)
            on_frame = preview.update   # the preview shows the first camera
        log.info("edge %s: %d camera(s), galleries %s, publish %s", settings.device_id,
                 len(cameras), json.dumps(holder.current().versions()),
                 redact_url(settings.publish.url))
        for i, cam in enumerate(cameras):
            pipeline = Pipeline(settings, cam.config, holder, sinks=all_sinks, metrics=cam.metrics,
                                on_frame=on_frame if i == 0 else None,
                                pool=pool.lane(cam.camera_id),
                                seat=scheduler.seat(cam.camera_id))
            log.info("edge %s/%s/%s: source %s (%s)", settings.device_id, settings.site_id,
                     cam.camera_id, cam.source.name,
                     "live" if cam.source.live else f"file {cam.source.fps:.2f} fps")
            t = threading.Thread(target=cam.run, args=(pipeline, stop, duration_s),
                                 name=f"oneeye-camera-{cam.camera_id}", daemon=True)
            t.start()
            running.append(t)
        for t in running:
            while t.is_alive():
                t.join(0.5)   # a timed join keeps the main thread responsive to signals
    finally:
        stop.set()
        for t in running:
            t.join()          # each camera drains: pending encodings reach every sink
        for cam in cameras:
            cam.source.close()
        for close in reversed(closers):
            try:
                close()
            except Exception:  # closing must not hide the run's own error
                log.exception("closing %r failed", close)
    failed = next((c for c in cameras if c.error is not None), None)
    if failed is not None and failed.error is not None:
        raise failed.error
    return {c.camera_id: c for c in cameras}
