# Long module: one camera's per-frame path, look to event, read top-down in one place.
"""The realtime edge pipeline: look → detect → track → encode → fuse → decide → event.

Why it is shaped this way (2-core CPU; ``bench/edge.py`` prints the figures; the README's
"How a face becomes one event" is the tour):

* Frames stay at native resolution: a 32 px face in a 1080p frame exists only there.
  ``detection.fps`` times a second (the camera's clock: media time for files) the
  detector runs, when the edge's shared :class:`~oneeye.edge.detect.scheduler.DetectScheduler`
  grants the camera a slot (cameras with undecided faces first), and only where it can pay off
  (:mod:`oneeye.edge.detect.regions`): moving areas, where open tracks are predicted, and one
  band of a slow sweep. An empty scene then costs about what decoding costs. The IoU
  tracker carries faces between detections: each person in view is one track.
* Decide on the track, not on one look. Small, blurred, too dark or turned crops are not
  encoded (sharpness is measured contrast-normalised: darkness is not blur), nor looks
  clearly worse than the best the track has shown (``best_look_ratio``); a track has at
  most ``max_encodes_per_track`` attempts, and ``max_reverify`` once decided;
  a track's looks are fused and decided once by :meth:`Matcher.identify_track` (the
  gallery rule with the device's override — what ``oneeye identify``/``analyze`` use).
* Encodings run in a thread pool on padded crops while the main thread detects on; each
  track has at most one encoding in flight, so work never queues up behind a slow CPU.
* File sources run deterministically: results of encodings started at a detection pass
  are collected before the next pass. Live sources never wait.
* One ``oneeye.match/1`` per (track, person) plus a per-person cooldown for the camera
  (media time for files, wall time for live). An event that cannot be built marks
  nothing: the next look tries again.
* The gallery snapshot is taken once per frame, so a gallery swap never tears a decision.

Unknown faces leave nothing behind: their crops and encodings live only in the
in-flight job and the track's looks, both dropped when the track closes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from oneeye import faces
from oneeye.edge.camera.geometry import Geometry
from oneeye.edge.camera.sources import Frame, Source
from oneeye.edge.detect import proposer, snapshot
from oneeye.edge.detect.metrics import Metrics
from oneeye.edge.detect.regions import (
    MotionDetector,
    MotionParams,
    Sweep,
    dedupe,
    grow,
    look_regions,
    search_scale,
)
from oneeye.edge.detect.scheduler import Need, Seat
from oneeye.edge.detect.tracker import Track, Tracker
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import (
    CameraConfig,
    EdgeSettings,
    RecognitionSettings,
    ThresholdOverride,
)
from oneeye.errors import OneEyeError
from oneeye.events import MatchEvent
from oneeye.gallery import Match, Matcher, fuse
from oneeye.images import even_light
from oneeye.types import BBox, utc_now

log = logging.getLogger(__name__)

Sink = Callable[[MatchEvent], None]
#: A pass is due this much before its time: frame times jitter (live) or round (media time).
_CADENCE_SLACK_S = 0.005
#: Before a paced camera's first frame interval is known: one frame at 15 fps.
_DEFAULT_FRAME_PERIOD_S = 1 / 15
#: A paced camera never holds its frames back longer than this for a detection grant.
_MAX_GRANT_WAIT_S = 0.1
#: (bbox in processing pixels, label, identified?) per open track, for the preview.
Annotation = tuple[BBox, str, bool]
FrameHook = Callable[[NDArray[np.uint8], list[Annotation]], None]


@dataclass
class Look:
    """One encoded crop of a track."""

    encoding: NDArray[np.float32]
    bbox: BBox
    size_px: int
    crop: NDArray[np.uint8] | None   # BGR face crop for a snapshot, kept until decided


@dataclass
class TrackLooks:
    """What a track's decision rests on: its looks, how many were tried, and the verdict
    (``label`` is the accepted person, or "unknown"). Used by :func:`decide_track` on
    the device and by ``oneeye analyze`` alike."""

    looks: list[Look] = field(default_factory=list)
    encodes: int = 0
    label: str = "unknown"
    decided: bool = False


@dataclass
class _TrackState(TrackLooks):
    track: Track = field(default=None)  # type: ignore[assignment]  # always given
    pending: Future[Look | None] | None = None
    pending_seq: int = 0
    last_encode_at: float = 0.0
    reverified: int = 0
    best_score: float = 0.0    # best look_score seen (fading a pass), for best_look_ratio
    closed: bool = False
    announced: set[str] = field(default_factory=set)


def _switched(looks: list[Look], look: Look, max_distance: float) -> bool:
    """True when ``look`` is further than ``max_distance`` from the mean of ``looks``."""
    mean = fuse(np.stack([lk.encoding for lk in looks]))
    return float(np.linalg.norm(look.encoding - mean)) > max_distance


def look_problem(q: faces.FaceQuality, r: RecognitionSettings) -> faces.QualityProblem | None:
    """Why the device would not encode a crop of this quality (too small, too dark, too
    blurred: :meth:`oneeye.faces.FaceQuality.problem` at ``r``'s floors), or None."""
    return q.problem(min_face_px=r.min_face_px, min_blur=r.min_blur)


def look_score(q: faces.FaceQuality) -> float:
    """How good a look is for encoding, 0–1: its size up to 96 px (dlib encodes a 150 px
    chip; below ~96 px detail is interpolated) times its sharpness up to 60 (the variance of
    the Laplacian of :func:`oneeye.faces.quality`; sharp faces score 20–70, 2 px blur < 10).
    Pose is judged later, from the landmarks (``max_yaw``)."""
    return min(1.0, q.size_px / 96) * min(1.0, q.blur / 60)


#: Share of a track's best look score kept from one detection pass to the next.
BEST_FADE = 0.9


def among_best(score: float, best: float, ratio: float) -> tuple[bool, float]:
    """Whether a look of ``score`` is worth encoding on a track whose best so far is
    ``best`` (faded by :data:`BEST_FADE` a pass): at least ``ratio`` of it. Returns that and
    the track's new best."""
    best = max(score, BEST_FADE * best)
    return score >= ratio * best, best


def usable_look(q: faces.FaceQuality, r: RecognitionSettings) -> bool:
    """Whether the device would encode a crop of this quality."""
    return look_problem(q, r) is None


def decide_track(st: TrackLooks, look: Look | None, matcher: Matcher, r: RecognitionSettings,
                 overrides: dict[str, ThresholdOverride]) -> tuple[Match | None, bool]:
    """Add ``look`` (None: an attempt that gave no usable encoding) to the track and decide
    on the fusion of its looks. Returns (the accepted match — also when already accepted
    before —, or None; whether the look was another person's, so the looks started over).

    The one decision of a track, on the device and in ``oneeye analyze``: a look further
    than ``switch_distance`` from the track's mean starts the looks over; after
    ``min_looks`` looks the fused encoding goes through the gallery rule
    (:meth:`Matcher.identify_track` with the device's ``thresholds``); an undecided track
    that used up ``max_encodes_per_track`` is decided unknown."""
    switched = False
    if look is not None and st.looks and _switched(st.looks, look, r.switch_distance):
        switched = True
        st.looks.clear()
        st.decided, st.label, st.encodes = False, "unknown", 1
    if look is not None:
        st.looks.append(look)
        # A decided track is re-verified on its recent looks only (a swapped track must
        # not average two people); an undecided one fuses all it has.
        keep = 2 * r.min_looks if st.decided else r.max_encodes_per_track
        del st.looks[:-keep]
    match: Match | None = None
    if len(st.looks) >= r.min_looks:
        match, _ = matcher.identify_track(np.stack([lk.encoding for lk in st.looks]),
                                          overrides)
    if match is not None:
        st.decided, st.label = True, match.person_id
        return match, switched
    if not st.decided and st.encodes >= r.max_encodes_per_track:
        st.decided, st.label = True, "unknown"
        for lk in st.looks:   # a stranger's crops go no further
            lk.crop = None
    return None, switched


class Pipeline:
    """One camera's pipeline: ``settings`` are the device's (tracking, thresholds, cooldown,
    snapshots, ids), ``camera`` the camera's resolved config (``settings.camera(id)``:
    geometry, detection, recognition)."""

    def __init__(self, settings: EdgeSettings, camera: CameraConfig, holder: GalleryHolder, *,
                 sinks: Iterable[Sink] = (), metrics: Metrics | None = None,
                 on_frame: FrameHook | None = None, pool: Executor | None = None,
                 seat: Seat | None = None) -> None:
        """``pool``: this camera's lane of the edge's shared encoding pool (own threads if
        None); ``seat``: this camera's seat at the edge's shared detection scheduler (every
        pass runs on cadence if None: one camera, the benches, ``oneeye analyze``)."""
        self.settings = settings
        self.camera = camera
        self.holder = holder
        self.sinks = list(sinks)
        self.metrics = metrics or Metrics()
        self.on_frame = on_frame
        t, d = settings.tracking, camera.detection
        self.geometry = Geometry(camera.rotate, camera.crop)
        self._offset = (0, 0)    # of the region of interest in the upright frame (x, y)
        self.tracker = Tracker(iou_min=t.iou_min, max_missed_s=t.max_missed_s,
                               speed_max=t.speed_max)
        self.motion = MotionDetector(MotionParams(height=d.motion_height,
                                                  threshold=d.motion_threshold))
        self.sweep = Sweep(d.sweep_s, d.sweep_bands, overlap=d.region_min_px // 2)
        self._states: dict[int, _TrackState] = {}
        self._cooldown: dict[str, float] = {}
        # The runner passes one camera's lane of the shared fair pool (oneeye.edge.detect.pool).
        self._pool = pool if pool is not None else ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="oneeye-encode")
        self._seq = 0            # processed frames
        self._live = False
        self._paced = False      # live or realtime: frame age is meaningful
        self._last_frame: Frame | None = None
        self._last_now: float | None = None
        #: seconds between this camera's frames (smoothed): how long a paced camera waits
        #: for its detection grant before going back to its frames
        self._frame_period = _DEFAULT_FRAME_PERIOD_S
        self._factor = 1.0
        self._overrides: dict[str, ThresholdOverride] = {
            str(k): v for k, v in settings.thresholds.items()}
        self._regions: list[BBox] = []      # searched at the last detection pass
        if d.regions and d.proposer == "blazeface":
            proposer.model_dir()   # a missing wheel is a setup error, said at start
        self._seat = seat
        self._next_due: float | None = None   # camera clock of the next detection pass
        self._motion: tuple[int, list[BBox]] | None = None   # (frame seq, boxes) asked with

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
        decoded = source.decode_cpu_s
        try:
            while not stop.is_set():
                with self.metrics.timed("decode"):
                    frame = next(frames, None)
                # A source decoding in its own thread reports that thread's CPU.
                now_decoded = source.decode_cpu_s
                self.metrics.add_cpu("decode", now_decoded - decoded)
                decoded = now_decoded
                if frame is None:
                    break
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
        d = self.camera.detection
        self._seq += 1
        now = self._clock(frame)
        if self._last_now is not None and 0 < now - self._last_now < 1.0:
            self._frame_period += 0.2 * (now - self._last_now - self._frame_period)
        self._last_frame, self._last_now = frame, now
        image, self._offset = self.geometry.apply(frame.image)
        factor = 1.0
        if image.shape[1] > d.max_width:
            import cv2  # lazy: native OpenCV, loaded only where frames are

            factor = d.max_width / image.shape[1]
            image = np.asarray(cv2.resize(image, (d.max_width, round(image.shape[0] * factor)),
                                          interpolation=cv2.INTER_AREA), dtype=np.uint8)
        self._factor = factor
        image, evened = even_light(image, dark_below=d.dark_luma)
        self.metrics.dark_frames += evened
        matcher = self.holder.current()
        due = self._next_due is None or now >= self._next_due - _CADENCE_SLACK_S
        # File sources: everything started at the previous detection pass is collected
        # before the next one, so a file decides the same on any machine.
        self._collect(frame, now, matcher, factor,
                      wait_upto=None if self._live else (self._seq - 1 if due else 0))
        if due and self._granted(image):
            try:
                boxes = self.detect(image, now, motion=self._asked_motion())
            finally:
                if self._seat is not None:
                    self._seat.release()
            period = 1.0 / d.fps
            # Keep the cadence on its own grid; after a late pass wait at least half a
            # period, so a camera that fell behind does not ask again at once.
            due_at = now if self._next_due is None else self._next_due
            self._next_due = max(due_at + period, now + period / 2)
            self.metrics.detections += 1
            with self.metrics.timed("track"):
                tracks, new = self.tracker.update(boxes, now, frame.index)
                for tr in new:
                    self._states[tr.track_id] = _TrackState(track=tr)
                    self.metrics.tracks_total += 1
                if len(matcher):   # nobody to look for (yet): encoding would be wasted work
                    for tr in tracks:
                        self._maybe_encode(self._states[tr.track_id], image, now)
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

    def _granted(self, image: NDArray[np.uint8]) -> bool:
        """Whether this camera's due pass may run now: always without a scheduler; with one,
        once the scheduler grants the ask made at this camera's :meth:`need`."""
        if self._seat is None:
            return True
        if self._motion is None and self.camera.detection.regions:
            # Motion once per ask: what the need is judged on, reused if granted at once.
            with self.metrics.timed("motion"):
                self._motion = (self._seq, self.motion.detect(image))
        # A paced camera waits up to one frame period for its turn: a slot freed meanwhile
        # is used at once (on this frame) rather than idle until this camera's next frame
        # (up to a frame period lost per grant, with every camera of the box waiting).
        return self._seat.ready(self.need(self._motion[1] if self._motion else []),
                                block=not self._paced,
                                wait_s=min(self._frame_period, _MAX_GRANT_WAIT_S))

    def _asked_motion(self) -> list[BBox] | None:
        """The motion found when asking, if the pass runs on that same frame."""
        asked, self._motion = self._motion, None
        return asked[1] if asked is not None and asked[0] == self._seq else None

    def need(self, motion: list[BBox]) -> Need:
        """What this camera's next pass is worth (:class:`Need`): an open track not yet
        decided; else motion outside every open track's expected box (someone arriving);
        else quiet (decided tracks only, or a still scene)."""
        if any(not s.decided for s in self._states.values() if not s.closed):
            return Need.UNDECIDED
        d = self.camera.detection
        now = self._last_now if self._last_now is not None else 0.0
        if self._last_frame is None:
            return Need.MOTION if motion else Need.QUIET
        h, w = self._last_frame.image.shape[:2]
        covered = [grow(t.predicted(now), max(t.bbox[1] - t.bbox[3], t.bbox[2] - t.bbox[0]),
                        d.region_min_px, h, w) for t in self.tracker.tracks.values()]

        def inside(m: BBox, c: BBox) -> bool:
            return m[0] >= c[0] and m[1] <= c[1] and m[2] <= c[2] and m[3] >= c[3]

        if any(not any(inside(m, c) for c in covered) for m in motion):
            return Need.MOTION
        return Need.QUIET

    def detect(self, bgr: NDArray[np.uint8], now: float,
               motion: list[BBox] | None = None) -> list[BBox]:
        """Face boxes in ``bgr`` (processing pixels): in the regions worth a look, at native
        resolution up to ``detection.region_max_pixels`` per region; or, with
        ``detection.regions`` off, in the whole frame resized by ``detection.scale``.
        ``motion``: moving areas already found in this frame (else they are found now)."""
        d = self.camera.detection
        if not d.regions:
            with self.metrics.timed("detect"):
                return faces.detect(faces.bgr_to_rgb(bgr), model=d.model, upsample=d.upsample,
                                    scale=d.scale)
        if motion is None:
            with self.metrics.timed("motion"):
                motion = self.motion.detect(bgr)
        with self.metrics.timed("detect"):
            return self._detect_regions(bgr, now, motion)

    def _detect_regions(self, bgr: NDArray[np.uint8], now: float,
                        motion: list[BBox]) -> list[BBox]:
        d = self.camera.detection
        h, w = bgr.shape[:2]
        expected = [t.predicted(now) for t in self.tracker.tracks.values()]
        regions = look_regions((h, w), motion, expected, pad=d.region_pad,
                               min_side=d.region_min_px)
        # Motion everywhere: one whole-frame pass at the full-frame scale, never costlier
        # than detection without regions.
        searches = ([((0, w, h, 0), d.scale, False)] if regions is None
                    else [(r, search_scale(r, d.region_max_pixels), True) for r in regions])
        band = self.sweep.next_band(now, h, w)
        if band is not None:
            # A band is a thin strip of the whole width: BlazeFace's square input would
            # shrink its faces to nothing, so HOG searches it whatever the proposer.
            searches.append((band, d.sweep_scale, False))
        self._regions = [r for r, _, _ in searches]
        boxes: list[BBox] = []
        for (top, right, bottom, left), scale, region in searches:
            if region and d.proposer == "blazeface":
                found = proposer.propose_and_confirm(bgr[top:bottom, left:right],
                                                     d.blazeface_model)
            else:
                found = faces.detect(faces.bgr_to_rgb(bgr[top:bottom, left:right]),
                                     model=d.model, upsample=d.upsample, scale=scale)
            boxes += [(b[0] + top, b[1] + left, b[2] + top, b[3] + left) for b in found]
        # A face inside both a region and the sweep band is found twice: keep one.
        return dedupe(boxes)

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
        if self._seat is not None:   # a camera that stops gives up its ask or slot
            self._seat.release()
        self.metrics.open_tracks = 0
        self._pool.shutdown(wait=True)

    def last_regions(self) -> list[BBox]:
        """Regions (processing pixels) the last detection pass searched, with regions on."""
        return list(self._regions)

    # ------------------------------------------------------------------ encoding

    def _clock(self, frame: Frame) -> float:
        if frame.media_time_s is not None and not self._live:
            return frame.media_time_s
        return time.monotonic()

    def _maybe_encode(self, st: _TrackState, bgr: NDArray[np.uint8], now: float) -> None:
        r = self.camera.recognition
        if st.pending is not None:
            return
        if st.decided:
            # Re-check a decided track now and then: the person may have turned towards the
            # camera (unknown → known), or the tracker may have swapped two people.
            if (r.reverify_s <= 0 or st.reverified >= r.max_reverify
                    or now - st.last_encode_at < r.reverify_s):
                return
        elif st.encodes >= r.max_encodes_per_track:
            return
        # Encode a padded crop, not the frame: the job then holds ~100 KB, not the whole image.
        box = st.track.bbox
        top, right, bottom, left = box
        h, w = bgr.shape[:2]
        pad = max(bottom - top, right - left) // 2
        y0, x0 = max(0, top - pad), max(0, left - pad)
        y1, x1 = min(h, bottom + pad), min(w, right + pad)
        crop_rgb = faces.bgr_to_rgb(bgr[y0:y1, x0:x1])
        inner = (top - y0, right - x0, bottom - y0, left - x0)
        q = faces.quality(crop_rgb, inner)
        problem = look_problem(q, r)
        if problem is not None:
            n = self.metrics.skipped(problem)
            if problem == "too_dark" and (n in (1, 100) or n % 1000 == 0):
                # Say it once early, then rarely: a dark scene would skip every look.
                log.warning("camera %s: face too dark to recognise (brightest %.0f/255, "
                            "sharpness %.1f < min_blur %.0f; %d such looks skipped) — more "
                            "light or the camera's night (IR) mode", self.camera.camera_id,
                            q.brightness, q.blur, r.min_blur, n)
            return
        # Only the best looks: one clearly worse than the best this track has shown (a blurred
        # step, a face further away) is not worth an attempt. The best fades, so a track
        # whose one sharp look passed is not shut out for good.
        worth, st.best_score = among_best(look_score(q), st.best_score, r.best_look_ratio)
        if not worth:
            self.metrics.skipped("below_best")
            return
        wanted = any(self.settings.snapshot.values())
        snap = snapshot.crop(bgr, box).copy() if wanted else None
        if st.decided:
            st.reverified += 1
        st.encodes += 1
        st.last_encode_at = now
        st.pending_seq = self._seq
        # A decided track's re-check waits behind every undecided face of every camera.
        rank = Need.QUIET if st.decided else Need.UNDECIDED
        submit_ranked = getattr(self._pool, "submit_ranked", None)
        if submit_ranked is not None:
            st.pending = submit_ranked(rank, self._encode, crop_rgb, inner, box, q.size_px, snap)
        else:
            st.pending = self._pool.submit(self._encode, crop_rgb, inner, box, q.size_px, snap)

    def _encode(self, crop_rgb: NDArray[np.uint8], inner: BBox, box: BBox, size_px: int,
                snap: NDArray[np.uint8] | None) -> Look | None:
        """A look, or None for a crop turned too far (or failing) — the attempt still counts."""
        r = self.camera.recognition
        try:
            with self.metrics.timed("landmarks"):
                marks = faces.landmarks(crop_rgb, [inner])
            if not marks or faces.yaw(marks[0]) > r.max_yaw:
                return None
            with self.metrics.timed("encode"):
                encs = faces.encode(crop_rgb, [inner], jitters=r.jitters,
                                    model=r.landmark_model)
        except Exception:  # a worker must never take the pipeline down
            log.exception("encoding failed")
            return None
        finally:
            self.metrics.encoded()
        return Look(encs[0], box, size_px, snap) if encs else None

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
            look = fut.result()
            with self.metrics.timed("match"):
                match = self._decide(st, look, matcher)
            if match is not None:
                self._announce(st, match, frame, now, matcher, factor)
            if st.closed and st.pending is None:
                self._states.pop(st.track.track_id, None)

    def _decide(self, st: _TrackState, look: Look | None, matcher: Matcher) -> Match | None:
        """Add a look to the track and decide on the fusion of its looks: the accepted match
        not yet announced on this track, or None."""
        match, switched = decide_track(st, look, matcher, self.camera.recognition,
                                       self._overrides)
        if switched:
            # Someone else stepped into the box this track was following (the tracker
            # knows only boxes): what was seen before is another person's, start over.
            log.info("track %d: the face changed person; its looks start over",
                     st.track.track_id)
            self.metrics.identity_switches += 1
        if match is None or match.person_id in st.announced:
            return None
        return match

    def _announce(self, st: _TrackState, match: Match, frame: Frame | None, now: float | None,
                  matcher: Matcher, factor: float) -> None:
        person = match.person_id
        t = now if now is not None else time.monotonic()
        last = self._cooldown.get(person)
        if last is not None and t - last < self.settings.cooldown_s:
            st.announced.add(person)
            log.info("track %d: %s again within cooldown, no event", st.track.track_id, person)
            return
        try:
            event = self._build_event(st, match, frame, matcher, factor)
        except (ValidationError, OneEyeError, ValueError):
            # Nothing is marked: the next look of this track tries again (issue 14 §5).
            self.metrics.events_failed += 1
            log.exception("track %d: event for %s could not be built", st.track.track_id,
                          person)
            return
        st.announced.add(person)
        self._cooldown[person] = t
        for lk in st.looks:
            lk.crop = None
        self.metrics.event(t - st.track.first_seen)
        log.info("match %s (%s) track %d distance %.3f margin %.3f frame %s", person,
                 match.watchlist, st.track.track_id, match.distance, match.margin,
                 event.source_frame)
        with self.metrics.timed("publish"):
            for sink in self.sinks:
                try:
                    sink(event)
                except Exception:  # one broken sink must not silence the others
                    log.exception("event sink %r failed for %s", sink, event.event_id)

    def _build_event(self, st: _TrackState, match: Match, frame: Frame | None,
                     matcher: Matcher, factor: float) -> MatchEvent:
        """The ``oneeye.match/1`` for a decided track: the fused distance and margin, the box
        of the latest look and a snapshot of the largest one (if the watchlist wants one)."""
        latest = st.looks[-1]
        snap = None
        policy = {str(k): v for k, v in self.settings.snapshot.items()}
        crops = [lk for lk in st.looks if lk.crop is not None]
        if policy.get(match.watchlist, False) and crops:
            best = max(crops, key=lambda lk: lk.size_px)
            assert best.crop is not None
            snap = snapshot.encode_jpeg_b64(best.crop, max_bytes=self.settings.snapshot_max_bytes)
        dx, dy = self._offset   # boxes are reported in upright-frame pixels
        top, right, bottom, left = (round(v / factor) for v in latest.bbox)
        bbox = (top + dy, right + dx, bottom + dy, left + dx)
        # Only for a watchlist that learns (the indexer's LEARN_WATCHLISTS, carried by the
        # signed gallery); a stranger never reaches here (no accepted match, no event).
        learns = matcher.galleries.get(match.watchlist)
        encoding = None
        if learns is not None and learns.learning.enabled:
            fused = fuse(np.stack([lk.encoding for lk in st.looks]))
            encoding = [round(float(v), 5) for v in fused]
        src_frame = frame.index if frame is not None else st.track.last_frame
        media = frame.media_time_s if frame is not None else None
        s = self.settings
        return MatchEvent(
            device_id=s.device_id, site_id=s.site_id, camera_id=self.camera.camera_id,
            observed_at=utc_now(), person_id=match.person_id, watchlist=match.watchlist,
            distance=round(min(2.0, match.distance), 4), margin=round(min(2.0, match.margin), 4),
            bbox=bbox,
            track_id=st.track.track_id,
            frames_seen=max(1, src_frame - st.track.first_frame + 1),
            gallery_version=matcher.versions().get(match.watchlist, 0),
            snapshot_jpeg=snap,
            encoding=encoding,
            source_frame=src_frame if not self._live else None,
            media_time_s=round(media, 3) if media is not None and not self._live else None,
        )
