"""Offline replay that decides like the device: looks of a video's sampled frames →
the device's :class:`Tracker` → the device's :func:`decide_track` per track.

``oneeye analyze`` on a video used to decide every look on its own, while the device
decides per track on fused looks: on real corridor footage of strangers the device
announced 0 and ``analyze`` named 4 single looks at d 0.52. With this, a replay names a
person only where the device's track decision accepts one, and keeps each look's own
distance beside it for inspection.

    replay = TrackReplay(matcher, settings.recognition, settings.tracking, overrides)
    for frame in frames:
        for face, (track_id, match) in zip(found, replay.frame(index, t, found)): ...
    replay.finish()   # → one TrackVerdict per track
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oneeye import faces
from oneeye.edge.detect.pipeline import Look, TrackLooks, decide_track, usable_look
from oneeye.edge.detect.tracker import Tracker
from oneeye.edge.settings import RecognitionSettings, ThresholdOverride, TrackingSettings
from oneeye.gallery import Match, Matcher


@dataclass
class TrackVerdict:
    """One track of a replay: frames it spans, looks decided, and the device's verdict
    (``accepted`` with the match, ``unknown`` when it gave up, ``undecided`` when the
    track closed before ``min_looks`` usable looks)."""

    track_id: int
    first_frame: int
    last_frame: int
    looks: int = 0
    match: Match | None = None
    state: TrackLooks = field(default_factory=TrackLooks)

    @property
    def decision(self) -> str:
        if self.match is not None:
            return "accepted"
        return "unknown" if self.state.decided else "undecided"


class TrackReplay:
    def __init__(self, matcher: Matcher, recognition: RecognitionSettings,
                 tracking: TrackingSettings, overrides: dict[str, ThresholdOverride]) -> None:
        self.matcher = matcher
        self.r = recognition
        self.overrides = overrides
        self.tracker = Tracker(iou_min=tracking.iou_min, max_missed_s=tracking.max_missed_s,
                               speed_max=tracking.speed_max)
        self.verdicts: dict[int, TrackVerdict] = {}

    def frame(self, index: int, media_time_s: float, found: list[faces.Face]
              ) -> list[tuple[int, Match | None]]:
        """Per face of one sampled frame (in order): its track id and the track's accepted
        match so far (None until the device would have announced it)."""
        tracks, _ = self.tracker.update([f.bbox for f in found], media_time_s, index)
        out: list[tuple[int, Match | None]] = []
        for face, tr in zip(found, tracks, strict=True):
            v = self.verdicts.setdefault(tr.track_id, TrackVerdict(tr.track_id, index, index))
            v.last_frame = index
            st = v.state
            # The device encodes an undecided track's usable looks, up to its cap.
            if (face.encoding is not None and not st.decided
                    and st.encodes < self.r.max_encodes_per_track
                    and usable_look(face.quality, self.r)
                    and faces.yaw(face.landmarks) <= self.r.max_yaw):
                st.encodes += 1
                v.looks += 1
                look = Look(face.encoding, face.bbox, face.quality.size_px, None)
                match, _ = decide_track(st, look, self.matcher, self.r, self.overrides)
                if match is not None and v.match is None:
                    v.match = match
            out.append((tr.track_id, v.match))
        self.tracker.expire(media_time_s)
        return out

    def finish(self) -> list[TrackVerdict]:
        """Every track of the replay, in order of appearance."""
        self.tracker.close_all()
        return [self.verdicts[k] for k in sorted(self.verdicts)]
