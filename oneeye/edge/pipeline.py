"""The realtime edge pipeline: detect → track → encode → vote → decide → event.

Why it is shaped this way (docs/architecture.md §8 numbers, 2-core CPU):

* Detection runs every ``every_n_frames`` frames on the main thread; the IoU
  tracker carries faces between detections so each person in view is one track.
* A track is encoded only while it is unidentified: when new, then on each
  detection pass until ``votes_needed`` encodings agree on one person (and no
  other person has as many votes), at most ``max_encodes_per_track`` times.
  Tiny or blurred crops are skipped, not encoded. A crowd of strangers therefore
  costs a bounded number of encodings, and a recognised person costs two.
* Encodings run in a thread pool (dlib works outside Python) on a padded crop,
  so the main thread detects the next frames meanwhile; each track has at most
  one encoding in flight, so work never queues up behind a slow CPU.
* File sources run deterministically: results of encodings started at a
  detection pass are collected before the next pass (media-time results do not
  depend on machine speed). Live sources never wait: results are taken when ready.
* One ``oneeye.match/1`` per (track, person), plus a per-person cooldown for the
  camera (media time for files, wall time for live) so a lingering person, or
  one who steps out of view and back, is announced once.
* The gallery snapshot is taken from :class:`GalleryHolder` once per frame, so a
  gallery swapped by the sync never tears a decision.

Unknown faces leave nothing behind: their crops and encodings live only in the
in-flight job and the track's votes, both dropped when the track closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye import faces
from oneeye.edge import snapshot
from oneeye.edge.metrics import Metrics
from oneeye.edge.settings import EdgeSettings
from oneeye.edge.sources import Frame, Source
from oneeye.edge.tracker import BBox, Track, Tracker
from oneeye.events import MatchEvent, format_time
from oneeye.gallery import DecisionRule, GalleryHolder, Matcher

log = logging.getLogger(__name__)

Sink = Callable[[MatchEvent], None]
#: (bbox in processing pixels, label, identified?) per open track, for the preview.
Annotation = tuple[BBox, str, bool]
FrameHook = Callable[[NDArray[np.uint8], list[Annotation]], None]


@dataclass
class _Vote:
    person_id: str | None
    watchlist: str | None
    distance: float
    margin: float
    bbox: BBox
    crop: NDArray[np.uint8] | None   # BGR face crop, kept only until the track decides


_Result = tuple[_Vote, NDArray[np.float32]]


@dataclass
class _TrackState:
    track: Track
    votes: list[_Vote] = field(default_factory=list)
    encodes: int = 0
    pending: Future[_Result | None] | None = None
    pending_seq: int = 0
    last_encode_at: float = 0.0
    label: str = "unknown"
    decided: bool = False
    closed: bool = False
    announced: set[str] = field(default_factory=set)


class Pipeline:
    def __init__(self, settings: EdgeSettings, holder: GalleryHolder, *,
                 sinks: Iterable[Sink] = (), metrics: Metrics | None = None,
                 on_frame: FrameHook | None = None, pool: Executor | None = None) -> None:
        self.settings = settings
        self.holder = holder
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self.on_frame = on_frame
        t = settings.tracking
        self.tracker = Tracker(iou_min=t.iou_min, max_missed_s=t.max_missed_s)
        self._states: dict[int, _TrackState] = {}
        self._cooldown: dict[str, float] = {}
        # The runner passes one camera's lane of the shared fair pool (oneeye.edge.pool).
        self._pool = pool if pool is not None else ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="oneeye-encode")
        self._seq = 0            # processed frames
        self._live = False
        self._paced = False      # live or realtime: frame age is meaningful
        self._overrides: dict[str, Any] = {str(k): v for k, v in settings.thresholds.items()}
        self._last_frame: Frame | None = None
        self._last_now: float | None = None
        self._factor = 1.0

    # ------------------------------------------------------------------ main loop

    def run(self, source: Source, *, stop_event: threading.Event | None = None,
            duration_s: float | None = None) -> Metrics:
        """Process ``source`` until it ends, ``stop_event`` is set or ``duration_s`` passes;
        then finish every pending encoding and deliver its events before returning."""
        self._live = source.live
        self._paced = source.live or bool(getattr(source, "realtime", False))
        stop = stop_event or threading.Event()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        finished = threading.Event()

        def watch() -> None:
            # A dead camera yields no frames, so stop and deadline are also enforced here.
            while not finished.wait(0.2):
                if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    source.close()
                    return

        watcher = threading.Thread(target=watch, name="oneeye-stop-watch", daemon=True)
        watcher.start()
        frames = source.frames()
        errors = 0
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.metrics.stage("decode", time.perf_counter() - t0)
                try:
                    self.process(frame)
                    errors = 0
                except Exception:
                    # One bad frame must not stop the camera; a persistent fault still surfaces.
                    errors += 1
                    log.exception("frame %d failed (%d in a row)", frame.index, errors)
                    if errors >= 50:
                        raise
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            finished.set()
            source.close()
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            self.drain()
        return self.metrics

    def process(self, frame: Frame) -> None:
        """One frame: collect finished encodings, detect (on cadence), track, submit encodes."""
        d = self.settings.detection
        self._seq += 1
        now = self._clock(frame)
        self._last_frame, self._last_now = frame, now
        image = frame.image
        factor = 1.0
        if image.shape[1] > d.max_width:
            import cv2

            factor = d.max_width / image.shape[1]
            image = np.asarray(cv2.resize(image, (d.max_width, round(image.shape[0] * factor)),
                                          interpolation=cv2.INTER_AREA), dtype=np.uint8)
        self._factor = factor
        matcher = self.holder.current()
        # File sources: everything started at the previous detection pass is collected now.
        self._collect(frame, now, matcher, factor,
                      wait_upto=None if self._live else self._seq - d.every_n_frames)
        if (self._seq - 1) % d.every_n_frames == 0:
            rgb = faces.bgr_to_rgb(image)
            t0 = time.perf_counter()
            boxes = faces.detect(rgb, model=d.model, upsample=d.upsample, scale=d.scale)
            t1 = time.perf_counter()
            self.metrics.stage("detect", t1 - t0)
            self.metrics.detections += 1
            tracks, new = self.tracker.update(boxes, now, frame.index)
            for tr in new:
                self._states[tr.track_id] = _TrackState(tr)
                self.metrics.tracks_total += 1
            if len(matcher):   # nobody to look for (yet): encoding would be wasted work
                for tr in tracks:
                    self._maybe_encode(self._states[tr.track_id], rgb, image, now)
            self.metrics.stage("track", time.perf_counter() - t1)
        for tr in self.tracker.expire(now):
            st = self._states.get(tr.track_id)
            if st is not None:
                st.closed = True
                if st.pending is None:
                    del self._states[tr.track_id]
        self.metrics.open_tracks = len(self.tracker)
        self.metrics.frame(time.time() - frame.captured_at if self._paced else None)
        if self.on_frame is not None:
            self.on_frame(image, [(s.track.bbox, s.label, s.decided and s.label != "unknown")
                                  for s in self._states.values() if not s.closed])

    def encodings_in_flight(self) -> int:
        """How many tracks have a face encoding submitted and not yet collected."""
        return sum(1 for s in self._states.values() if s.pending is not None)

    def drain(self) -> None:
        """Wait for every in-flight encoding, deliver its events, close all tracks."""
        pending = [s.pending for s in self._states.values() if s.pending is not None]
        wait_futures(pending)
        self._collect(self._last_frame, self._last_now, self.holder.current(), self._factor,
                      wait_upto=self._seq)
        self.tracker.close_all()
        self._states.clear()
        self.metrics.open_tracks = 0
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ encoding

    def _clock(self, frame: Frame) -> float:
        if frame.media_time_s is not None and not self._live:
            return frame.media_time_s
        return time.monotonic()

    def _maybe_encode(self, st: _TrackState, rgb: NDArray[np.uint8],
                      bgr: NDArray[np.uint8], now: float) -> None:
        r = self.settings.recognition
        if st.pending is not None:
            return
        if st.decided:
            # Re-check a decided track now and then: the person may have turned towards the
            # camera (unknown → known), or the tracker may have swapped two people.
            if r.reverify_s <= 0 or now - st.last_encode_at < r.reverify_s:
                return
        elif st.encodes >= r.max_encodes_per_track:
            return
        box = st.track.bbox
        q = faces.quality(rgb, box)
        if q.size_px < r.min_face_px or q.blur < r.min_blur:
            return
        # Encode a padded crop, not the frame: the job then holds ~100 KB, not the whole image.
        top, right, bottom, left = box
        h, w = rgb.shape[:2]
        pad = max(bottom - top, right - left) // 2
        y0, x0 = max(0, top - pad), max(0, left - pad)
        y1, x1 = min(h, bottom + pad), min(w, right + pad)
        crop_rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        inner = (top - y0, right - x0, bottom - y0, left - x0)
        snap = snapshot.crop(bgr, box).copy() if self._snapshot_wanted() else None
        st.encodes += 1
        st.last_encode_at = now
        st.pending_seq = self._seq
        st.pending = self._pool.submit(self._encode, crop_rgb, inner, box, snap)

    def _snapshot_wanted(self) -> bool:
        return any(self.settings.snapshot.values())

    def _encode(self, crop_rgb: NDArray[np.uint8], inner: BBox, box: BBox,
                snap: NDArray[np.uint8] | None) -> _Result | None:
        r = self.settings.recognition
        t0 = time.perf_counter()
        try:
            encs = faces.encode(crop_rgb, [inner], jitters=r.jitters, model=r.landmark_model)
        except Exception:  # a worker must never take the pipeline down
            log.exception("encoding failed")
            return None
        finally:
            self.metrics.encoded(time.perf_counter() - t0)
        if not encs:
            return None
        return _Vote(None, None, 0.0, 0.0, box, snap), encs[0]

    # ------------------------------------------------------------------ decisions

    def _collect(self, frame: Frame | None, now: float | None, matcher: Matcher, factor: float,
                 *, wait_upto: int | None) -> None:
        for st in list(self._states.values()):
            fut = st.pending
            if fut is None:
                continue
            if not fut.done():
                if wait_upto is None or st.pending_seq > wait_upto:
                    continue
                fut.result()
            st.pending = None
            result: Any = fut.result()
            if result is not None:
                vote, enc = result
                t0 = time.perf_counter()
                decided = self._vote(st, vote, enc, matcher)
                self.metrics.stage("match", time.perf_counter() - t0)
                if decided:
                    self._announce(st, frame, now, matcher, factor)
            if st.closed and st.pending is None:
                self._states.pop(st.track.track_id, None)

    def _identify(self, enc: NDArray[np.float32], matcher: Matcher) -> tuple[
            str | None, str | None, float, float]:
        best: tuple[str | None, str | None, float, float] = (None, None, 9.0, 0.0)
        for watchlist, g in matcher.galleries.items():
            if not len(g):
                continue
            c = g.nearest(enc)[0]
            o = self._overrides.get(watchlist)
            rule = g.rule if o is None else DecisionRule(
                max_distance=o.max_distance if o.max_distance is not None
                else g.rule.max_distance,
                min_margin=o.min_margin if o.min_margin is not None else g.rule.min_margin)
            if c.person_id is not None and rule.accepts(c.distance, c.margin) \
                    and c.distance < best[2]:
                best = (c.person_id, watchlist, c.distance, c.margin)
        return best

    def _vote(self, st: _TrackState, vote: _Vote, enc: NDArray[np.float32],
              matcher: Matcher) -> bool:
        """Add one encoding's verdict; True when the track is newly decided as a person."""
        r = self.settings.recognition
        pid, wl, dist, margin = self._identify(enc, matcher)
        vote.person_id, vote.watchlist, vote.distance, vote.margin = pid, wl, dist, margin
        st.votes.append(vote)
        counts: dict[tuple[str, str], int] = {}
        for v in st.votes:
            if v.person_id is not None and v.watchlist is not None:
                key = (v.watchlist, v.person_id)
                counts[key] = counts.get(key, 0) + 1
        if counts:
            ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
            (_, top), n = ranked[0]
            runner = ranked[1][1] if len(ranked) > 1 else 0
            if n >= r.votes_needed and n > runner:
                if st.label == top:          # re-verified: same person, nothing to say
                    st.votes.clear()
                    return False
                st.decided, st.label = True, top
                return True
        if not st.decided and st.encodes >= r.max_encodes_per_track:
            st.decided, st.label = True, "unknown"
            st.votes.clear()    # a stranger's crops go no further
        elif st.decided:
            del st.votes[:-2 * r.votes_needed]   # re-verification looks at recent votes only
        return False

    def _announce(self, st: _TrackState, frame: Frame | None, now: float | None,
                  matcher: Matcher, factor: float) -> None:
        person = st.label
        votes = [v for v in st.votes if v.person_id == person]
        st.votes.clear()
        best = min(votes, key=lambda v: v.distance)
        t = now if now is not None else time.monotonic()
        if person in st.announced:
            return
        st.announced.add(person)
        last = self._cooldown.get(person)
        if last is not None and t - last < self.settings.cooldown_s:
            log.info("track %d: %s again within cooldown, no event", st.track.track_id, person)
            return
        self._cooldown[person] = t
        assert best.watchlist is not None
        snap = None
        policy = {str(k): v for k, v in self.settings.snapshot.items()}
        if policy.get(best.watchlist, False) and best.crop is not None:
            snap = snapshot.encode_jpeg_b64(best.crop, max_bytes=self.settings.snapshot_max_bytes)
        bbox = tuple(round(v / factor) for v in best.bbox)
        src_frame = frame.index if frame is not None else st.track.last_frame
        media = frame.media_time_s if frame is not None else None
        s = self.settings
        event = MatchEvent(
            device_id=s.device_id, site_id=s.site_id, camera_id=s.camera_id,
            observed_at=format_time_now(), person_id=person, watchlist=best.watchlist,
            distance=round(min(2.0, best.distance), 4), margin=round(min(2.0, best.margin), 4),
            bbox=bbox,  # type: ignore[arg-type]
            track_id=st.track.track_id,
            frames_seen=max(1, src_frame - st.track.first_frame + 1),
            gallery_version=matcher.versions().get(best.watchlist, 0),
            snapshot_jpeg=snap,
            source_frame=src_frame if not self._live else None,
            media_time_s=round(media, 3) if media is not None and not self._live else None,
        )
        self.metrics.event(t - st.track.first_seen)
        log.info("match %s (%s) track %d distance %.3f margin %.3f frame %s", person,
                 best.watchlist, st.track.track_id, best.distance, best.margin, src_frame)
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # one broken sink must not silence the others
                log.exception("event sink %r failed for %s", sink, event.event_id)


def format_time_now() -> str:
    from datetime import UTC, datetime

    return format_time(datetime.now(UTC))
