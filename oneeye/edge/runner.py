"""Wiring of one edge process: source → pipeline → sinks (+ uplink, preview).

``run_edge`` is shared by ``oneeye edge`` and the Greengrass component's
``main.py``; callers own signal handling and pass a ``stop_event``. On stop it
drains: pending encodings finish, their events reach every sink, and the uplink
(the durable outbox) is closed last, so nothing pending is lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from oneeye.edge.gallery_holder import GalleryHolder
from oneeye.edge.metrics import Metrics
from oneeye.edge.pipeline import Pipeline, Sink
from oneeye.edge.settings import EdgeSettings
from oneeye.edge.sources import open_source
from oneeye.events import MatchEvent
from oneeye.gallery import load

log = logging.getLogger(__name__)


class UplinkLike(Protocol):
    def start(self) -> Any: ...
    def submit(self, event: MatchEvent) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


UplinkFactory = Callable[[EdgeSettings, GalleryHolder, Callable[[], dict[str, Any]]], UplinkLike]


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


def _default_uplink(settings: EdgeSettings, holder: GalleryHolder,
                    metrics: Callable[[], dict[str, Any]]) -> UplinkLike:
    from oneeye.edge.uplink import Uplink

    uplink: UplinkLike = Uplink(settings, holder, metrics)
    return uplink


def run_edge(settings: EdgeSettings, holder: GalleryHolder, *, sinks: Iterable[Sink] = (),
             stop_event: threading.Event | None = None,
             uplink_factory: UplinkFactory | None = None,
             duration_s: float | None = None) -> Metrics:
    """Run until the source ends, ``stop_event`` is set or ``duration_s`` passes."""
    source = open_source(settings.source, realtime=settings.realtime, loop=settings.loop)
    metrics = Metrics(camera_state=lambda: source.state)
    all_sinks: list[Sink] = list(sinks)
    closers: list[Callable[[], None]] = []
    if settings.events_out is not None:
        jsonl = JsonlSink(settings.events_out)
        all_sinks.append(jsonl)
        closers.append(jsonl.close)
    uplink: UplinkLike | None = None
    if settings.publish.url != "none":
        uplink = (uplink_factory or _default_uplink)(settings, holder, metrics.snapshot)
        uplink.start()
        all_sinks.append(uplink.submit)
    preview = None
    if settings.preview_port is not None:
        from oneeye.edge.preview import Preview

        preview = Preview(settings.preview_port).start()
        closers.append(preview.close)
    pipeline = Pipeline(settings, holder, sinks=all_sinks, metrics=metrics,
                        on_frame=preview.update if preview is not None else None)
    log.info("edge %s/%s/%s: source %s (%s), galleries %s, publish %s", settings.device_id,
             settings.site_id, settings.camera_id, settings.source,
             "live" if source.live else f"file {source.fps:.2f} fps",
             json.dumps(holder.current().versions()), settings.publish.url)
    try:
        pipeline.run(source, stop_event=stop_event, duration_s=duration_s)
    finally:
        if uplink is not None:
            uplink.close()
        for close in closers:
            try:
                close()
            except Exception:  # closing must not hide the run's own error
                log.exception("closing %r failed", close)
    return metrics
