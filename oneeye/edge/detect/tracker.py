"""Greedy tracker on predicted boxes with a displacement gate: one track per face in view.

Detections arrive only every few frames, so a track keeps its last box and the velocity
of its centre between its last two detections; :meth:`Track.predicted` moves the box by
that velocity to the time of the next pass. A detection continues the track whose
*predicted* box it overlaps most (IoU ≥ ``iou_min``). What overlap cannot pair falls back
to the nearest track of similar size whose predicted centre is within the gate::

    gate (face widths) = centroid_max + speed_max × dt                (no velocity yet)
    gate (face widths) = centroid_max + speed_max × dt × uncertainty  (moving track)

``dt`` is the time since the track was last seen, so the gate grows with the gap between
passes (a busy CPU, a sparse cadence). A face crossing at 250 px/s in 25 fps video, seen
every 3 frames, moves 30 px between passes — 0.67 of a 45 px face, beyond a fixed
half-width gate: without prediction every pass opened a new track, no track gathered the
two looks a decision needs, and the walker was never announced
(``../shared/cases/fast-walker-tracking``). ``speed_max`` 6 face widths/s is a brisk walk
close to the camera (a 16 cm face: ~1 m/s). Two people are never fused by a wrong link:
the pipeline starts a track's looks over when a look is another person's encoding
(``recognition.switch_distance``).

A track not seen for ``max_missed_s`` (media or wall time, whichever clock the caller
uses) closes. The tracker knows nothing about identities: the pipeline keeps its
recognition state in its own map keyed by :attr:`Track.track_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

from oneeye.types import BBox


def iou(a: BBox, b: BBox) -> float:
    top, right = max(a[0], b[0]), min(a[1], b[1])
    bottom, left = min(a[2], b[2]), max(a[3], b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    if inter == 0:
        return 0.0
    area_a = (a[1] - a[3]) * (a[2] - a[0])
    area_b = (b[1] - b[3]) * (b[2] - b[0])
    return inter / float(area_a + area_b - inter)


def _centre(b: BBox) -> tuple[float, float]:
    return (b[1] + b[3]) / 2.0, (b[0] + b[2]) / 2.0


def _size(b: BBox) -> float:
    return float(max(1, min(b[1] - b[3], b[2] - b[0])))


@dataclass
class Track:
    track_id: int
    bbox: BBox
    first_seen: float
    last_seen: float
    first_frame: int
    last_frame: int
    #: Box centre velocity (x, y) in pixels per clock second, from the last two detections.
    velocity: tuple[float, float] = (0.0, 0.0)

    def predicted(self, now: float) -> BBox:
        """The box moved by its velocity to ``now`` (its last box if it has none)."""
        dt = max(0.0, now - self.last_seen)
        dx, dy = round(self.velocity[0] * dt), round(self.velocity[1] * dt)
        top, right, bottom, left = self.bbox
        return (top + dy, right + dx, bottom + dy, left + dx)


class Tracker:
    def __init__(self, *, iou_min: float = 0.3, max_missed_s: float = 1.0,
                 centroid_max: float = 0.5, size_ratio_max: float = 1.6,
                 speed_max: float = 6.0, uncertainty: float = 0.5) -> None:
        """``centroid_max`` and the gate are in face widths (the larger box's shorter side);
        ``speed_max`` in face widths per clock second; ``uncertainty`` is the share of
        ``speed_max`` still allowed around the prediction of a track that has a velocity."""
        self.iou_min = iou_min
        self.max_missed_s = max_missed_s
        self.centroid_max = centroid_max
        self.size_ratio_max = size_ratio_max
        self.speed_max = speed_max
        self.uncertainty = uncertainty
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, boxes: list[BBox], now: float, frame: int) -> tuple[list[Track], list[Track]]:
        """Assign ``boxes`` (one detection pass) to tracks; returns (tracks of these boxes in
        order, newly created tracks)."""
        assigned: list[Track | None] = [None] * len(boxes)
        free = dict(self.tracks)
        expected = {tid: t.predicted(now) for tid, t in free.items()}
        pairs = sorted(((iou(expected[tid], b), tid, i) for tid in free
                        for i, b in enumerate(boxes)), reverse=True)
        for score, tid, i in pairs:
            if score < self.iou_min:
                break
            if assigned[i] is None and tid in free:
                assigned[i] = free.pop(tid)
        # Displacement gate around the prediction for what overlap could not pair.
        cands = []
        for i, b in enumerate(boxes):
            if assigned[i] is not None:
                continue
            cx, cy = _centre(b)
            for tid, t in free.items():
                tx, ty = _centre(expected[tid])
                s_b, s_t = _size(b), _size(t.bbox)
                ratio = max(s_b, s_t) / min(s_b, s_t)
                dist = ((cx - tx) ** 2 + (cy - ty) ** 2) ** 0.5 / max(s_b, s_t)
                if dist <= self.gate(t, now) and ratio <= self.size_ratio_max:
                    cands.append((dist, tid, i))
        for _dist, tid, i in sorted(cands):
            if assigned[i] is None and tid in free:
                assigned[i] = free.pop(tid)
        new: list[Track] = []
        out: list[Track] = []
        for i, b in enumerate(boxes):
            found = assigned[i]
            if found is None:
                t = Track(self._next_id, b, now, now, frame, frame)
                self._next_id += 1
                self.tracks[t.track_id] = t
                new.append(t)
            else:
                t = found
                dt = now - t.last_seen
                if dt > 0:
                    (ox, oy), (nx, ny) = _centre(t.bbox), _centre(b)
                    t.velocity = ((nx - ox) / dt, (ny - oy) / dt)
                t.bbox, t.last_seen, t.last_frame = b, now, frame
            out.append(t)
        return out, new

    def gate(self, track: Track, now: float) -> float:
        """How far (face widths) from its predicted centre a detection may continue
        ``track`` at ``now``: wider the longer it was unseen, narrower once it moves."""
        dt = max(0.0, now - track.last_seen)
        moving = track.velocity != (0.0, 0.0)
        return self.centroid_max + self.speed_max * dt * (self.uncertainty if moving else 1.0)

    def expire(self, now: float) -> list[Track]:
        """Close and return tracks unseen for longer than ``max_missed_s``."""
        gone = [t for t in self.tracks.values() if now - t.last_seen > self.max_missed_s]
        for t in gone:
            del self.tracks[t.track_id]
        return gone

    def close_all(self) -> list[Track]:
        gone = list(self.tracks.values())
        self.tracks.clear()
        return gone

    def __len__(self) -> int:
        return len(self.tracks)
