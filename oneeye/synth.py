"""Synthetic "branch entrance" videos with ground truth, for tests, benches and demos.

People walk towards the camera one after another (a gap between visits): each
visit pastes one face photo (e.g. an ``lfw_dev`` probe — a *different* photo
from the one enrolled) on a simple body over a static branch background, growing
from ``start_head_px`` to ``end_head_px`` wide as the person approaches, with
camera noise on every frame. The returned :class:`GroundTruth` says who is
visible from which frame to which, and whether they are enrolled, so a bench
can count recall, events per visit, wrong-person events and latency exactly.

The writer is OpenCV's: ``.avi`` → MJPG, anything else → ``mp4v`` (both written
and read back by the opencv-python-headless wheel this project pins).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye import faces
from oneeye.types import BBox

#: Region of a 250x250 LFW photo holding the head (the face is centred in LFW).
LFW_HEAD: BBox = (45, 195, 205, 55)   # the head in a 250x250 LFW photo


@dataclass(frozen=True)
class Visit:
    """One person walking in. ``photo`` is the face image shown; ``more_looks`` are more
    photos of the same person shown after it in turn (the visit split evenly between
    them), as a real visitor turns, blinks and changes expression on the way in."""

    person: str
    photo: str | Path
    enrolled: bool
    duration_s: float = 3.0
    more_looks: tuple[str | Path, ...] = ()


@dataclass(frozen=True)
class VisitTruth:
    person: str
    enrolled: bool
    first_frame: int
    last_frame: int
    photo: str


@dataclass
class GroundTruth:
    path: str
    fps: float
    size: tuple[int, int]
    frames: int
    visits: list[VisitTruth] = field(default_factory=list)

    def visits_at(self, frame: int, slack: int = 0) -> list[VisitTruth]:
        return [v for v in self.visits
                if v.first_frame - slack <= frame <= v.last_frame + slack]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> GroundTruth:
        """The inverse of :meth:`to_json` (a bench re-reads a video it generated before)."""
        raw = json.loads(text)
        return cls(path=raw["path"], fps=float(raw["fps"]),
                   size=(int(raw["size"][0]), int(raw["size"][1])),
                   frames=int(raw["frames"]),
                   visits=[VisitTruth(**v) for v in raw["visits"]])


def _head(photo: str | Path, crop: BBox | None) -> NDArray[np.uint8]:
    import cv2  # lazy: native OpenCV, loaded only where frames are

    img = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{photo}: cannot read image")
    if crop is None and img.shape[:2] == (250, 250):
        crop = LFW_HEAD
    if crop is not None:
        t, r, b, left = crop
        img = img[t:b, left:r]
    return np.ascontiguousarray(img)


def _background(width: int, height: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    import cv2  # lazy: native OpenCV, loaded only where frames are

    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    wall = np.empty((height, width, 3), np.float32)
    base = rng.uniform(150, 200, 3).astype(np.float32)
    wall[:] = base * (0.85 + 0.15 * ys[..., None])
    bg = wall.astype(np.uint8)
    floor_y = int(height * 0.72)
    bg[floor_y:] = (90, 100, 110)
    # A door frame and a counter give HOG some honest non-face structure.
    cv2.rectangle(bg, (int(width * 0.35), int(height * 0.08)), (int(width * 0.65), floor_y),
                  (70, 60, 50), 6)
    cv2.rectangle(bg, (0, int(height * 0.55)), (int(width * 0.18), floor_y), (60, 90, 120), -1)
    cv2.putText(bg, "BRANCH 042", (int(width * 0.70), int(height * 0.15)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (40, 40, 40), 2)
    return bg


def _paste(frame: NDArray[np.uint8], head: NDArray[np.uint8], cx: int, cy: int,
           width: int, body_colour: tuple[int, int, int]) -> None:
    import cv2  # lazy: native OpenCV, loaded only where frames are

    h = round(width * head.shape[0] / head.shape[1])
    img = cv2.resize(head, (width, h), interpolation=cv2.INTER_AREA if width < head.shape[1]
                     else cv2.INTER_LINEAR)
    fh, fw = frame.shape[:2]
    # Shoulders first, so the head overlaps them.
    cv2.ellipse(frame, (cx, cy + int(h * 1.05)), (int(width * 0.95), int(h * 0.55)), 0, 180, 360,
                body_colour, -1)
    cv2.rectangle(frame, (cx - int(width * 0.95), cy + int(h * 1.05)),
                  (cx + int(width * 0.95), fh), body_colour, -1)
    mask: NDArray[Any] = np.zeros((h, width), np.float32)
    cv2.ellipse(mask, (width // 2, h // 2), (int(width * 0.48), int(h * 0.49)), 0, 0, 360, 1.0,
                -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, width / 40))[..., None]
    x0, y0 = cx - width // 2, cy - h // 2
    xs0, ys0 = max(0, x0), max(0, y0)
    xs1, ys1 = min(fw, x0 + width), min(fh, y0 + h)
    if xs1 <= xs0 or ys1 <= ys0:
        return
    sub = img[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0].astype(np.float32)
    m = mask[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
    dst = frame[ys0:ys1, xs0:xs1].astype(np.float32)
    frame[ys0:ys1, xs0:xs1] = (m * sub + (1 - m) * dst).astype(np.uint8)


def make_entrance_video(
    out_path: str | Path,
    visits: Sequence[Visit],
    *,
    fps: float = 25.0,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    gap_s: float = 1.0,
    lead_in_s: float = 0.5,
    start_head_px: int = 95,
    end_head_px: int = 210,
    noise: float = 3.0,
    head_crop: BBox | None = None,
) -> GroundTruth:
    """Write the video and return who is visible when (frames are 0-based, inclusive)."""
    import cv2  # lazy: native OpenCV, loaded only where frames are

    width, height = size
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if out.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"{out}: OpenCV cannot write this video format")
    rng = np.random.default_rng(seed)
    bg = _background(width, height, rng)
    truth = GroundTruth(path=str(out), fps=fps, size=(width, height), frames=0)
    index = 0

    def emit(frame: NDArray[np.uint8]) -> None:
        nonlocal index
        if noise > 0:
            jitter = rng.normal(0, noise, frame.shape).astype(np.int16)
            frame = np.clip(frame.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        writer.write(frame)
        index += 1

    try:
        for _ in range(round(lead_in_s * fps)):
            emit(bg.copy())
        for n, visit in enumerate(visits):
            heads = [_head(photo, head_crop) for photo in (visit.photo, *visit.more_looks)]
            count = max(2, round(visit.duration_s * fps))
            x_start = rng.uniform(0.3, 0.7) * width
            x_end = rng.uniform(0.42, 0.58) * width
            colour = tuple(int(c) for c in rng.integers(30, 200, 3))
            first = index
            for k in range(count):
                p = k / (count - 1)
                head_w = int(start_head_px + (end_head_px - start_head_px) * p)
                cx = int(x_start + (x_end - x_start) * p)
                cy = int(height * (0.30 + 0.08 * p))
                frame = bg.copy()
                head = heads[k * len(heads) // count]
                _paste(frame, head, cx, cy, head_w, colour)  # type: ignore[arg-type]
                emit(frame)
            truth.visits.append(VisitTruth(visit.person, visit.enrolled, first, index - 1,
                                           str(visit.photo)))
            gap = round(gap_s * fps) if n < len(visits) - 1 else round(lead_in_s * fps)
            for _ in range(gap):
                emit(bg.copy())
    finally:
        writer.release()
    truth.frames = index
    return truth


def lfw_visits(lfw_dir: str | Path, *, enrolled: int, strangers: int, seed: int = 0,
               duration_s: float = 3.0, eligible: Collection[str] | None = None,
               looks: int = 1) -> list[Visit]:
    """Visits of ``enrolled`` gallery identities (shown with one of their *probe* photos)
    and ``strangers`` impostors, interleaved in a seeded order. ``eligible`` restricts the
    enrolled visitors to identities actually in the gallery (some photos fail enrolment).

    ``looks`` > 1 shows an enrolled visitor's next probe photos too (up to ``looks`` in
    all, as many as they have), after the seeded first one; the seeded draws do not
    change, so ``looks=1`` gives the same visits as before and a larger value the same
    people, order and first photos. Impostors have one photo each."""
    root = Path(lfw_dir)
    rng = np.random.default_rng(seed)
    people = sorted(p.name for p in (root / "probes").iterdir() if p.is_dir()
                    and (eligible is None or p.name in eligible))
    chosen = [people[i] for i in rng.permutation(len(people))[:enrolled]]
    out = []
    for person in chosen:
        photos = sorted((root / "probes" / person).glob("*.jpg"))
        first = int(rng.integers(len(photos)))
        more = tuple(photos[(first + k) % len(photos)] for k in range(1, min(looks, len(photos))))
        out.append(Visit(person, photos[first], True, duration_s, more))
    impostors = sorted((root / "impostors").glob("*.jpg"))
    for i in rng.permutation(len(impostors))[:strangers]:
        photo = impostors[int(i)]
        out.append(Visit(photo.stem.rsplit("_", 1)[0], photo, False, duration_s))
    order = rng.permutation(len(out))
    return [out[int(i)] for i in order]


# --------------------------------------------------------------------------- range scenes
#
# Faces of known pixel size anywhere in a large frame, for "how small a face is seen"
# (bench/edge.py (a), tests/test_edge_decisions.py). A face's size is the width of the
# box dlib's HOG draws around it (what ``faces.quality().size_px`` measures), not the
# width of the pasted head.


def face_box_width(photo: str | Path) -> int:
    """Width of the HOG face box (upsample 1) in ``photo``; LFW's typical 90 if none."""

    rgb = faces.load_image(photo)
    boxes = faces.detect(rgb, upsample=1)
    if not boxes:
        return 90
    widest = max(boxes, key=lambda b: b[1] - b[3])
    return max(1, widest[1] - widest[3])


def head(photo: str | Path, face_px: int) -> tuple[NDArray[np.uint8], int]:
    """The head of an LFW ``photo`` (BGR) and the width to paste it at so that its face
    box is ``face_px`` wide."""
    h = _head(photo, None)
    return h, max(4, round(h.shape[1] * face_px / face_box_width(photo)))


def background(width: int, height: int, seed: int = 0) -> NDArray[np.uint8]:
    """The static branch background (BGR) of the entrance videos, at any size."""
    return _background(width, height, np.random.default_rng(seed))


def scene(bg: NDArray[np.uint8], heads: Sequence[tuple[NDArray[np.uint8], int, int, int]], *,
          rng: np.random.Generator, noise: float = 3.0) -> NDArray[np.uint8]:
    """``bg`` with each ``(head, centre_x, centre_y, width)`` pasted on a body, plus camera
    noise (σ = ``noise`` grey levels)."""
    frame = bg.copy()
    for i, (img, cx, cy, width) in enumerate(heads):
        _paste(frame, img, cx, cy, width, (60 + 40 * (i % 4), 80, 120))
    if noise > 0:
        jitter = rng.standard_normal(frame.shape, dtype=np.float32) * noise
        frame = np.clip(frame + jitter, 0, 255).astype(np.uint8)
    return frame
