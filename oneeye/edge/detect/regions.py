"""Where to look for faces in a frame: motion, tracks, and a slow sweep of the whole frame.

Frigate's split, for faces: motion is found cheaply on a small grey copy of the
frame; the detector then runs at native resolution only inside *regions* —
moving areas and the boxes where open tracks are expected — so a 32 px face in a
1080p frame is seen without paying for HOG over two million pixels. A person
who stands still stops being "motion", so a periodic sweep scans the whole frame
one horizontal band per detection pass (spreading its cost, never a spike).

Boxes and regions are ``(top, right, bottom, left)`` in source-frame pixels
(:data:`oneeye.types.BBox`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from oneeye.edge.detect.tracker import iou
from oneeye.types import BBox


@dataclass(frozen=True)
class MotionParams:
    """``height``: rows of the grey copy motion is computed on (Frigate uses ~100–180);
    ``threshold``: grey-level change (0–255) that counts as moving; ``alpha``: how fast the
    background average follows the scene per call; ``min_area``: smallest moving blob in
    grey-copy pixels (≈ 3×3 px, below that it is sensor noise)."""

    height: int = 180
    threshold: int = 18
    alpha: float = 0.1
    min_area: int = 9


class MotionDetector:
    """Moving areas of BGR frames against a running background average (Frigate's method:
    downscale, grey, blur, absdiff, threshold, dilate, contours)."""

    def __init__(self, params: MotionParams | None = None) -> None:
        self.params = params or MotionParams()
        self._avg: NDArray[np.float32] | None = None

    def detect(self, bgr: NDArray[np.uint8]) -> list[BBox]:
        """Boxes of what moved since the background average, in ``bgr``'s pixels."""
        import cv2  # lazy: native OpenCV, loaded only where frames are

        p = self.params
        h, w = bgr.shape[:2]
        f = min(1.0, p.height / h)
        # Nearest-neighbour, as Frigate: 6x cheaper than area averaging on 1080p, and the
        # blur below removes the extra noise it lets through.
        small = cv2.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))),
                           interpolation=cv2.INTER_NEAREST)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)
        if self._avg is None or self._avg.shape != grey.shape:
            self._avg = grey.astype(np.float32)
            return []
        delta = cv2.absdiff(grey, cv2.convertScaleAbs(self._avg))
        mask = cv2.dilate(cv2.threshold(delta, p.threshold, 255, cv2.THRESH_BINARY)[1],
                          np.ones((3, 3), np.uint8), iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.accumulateWeighted(grey, self._avg, p.alpha)
        out: list[BBox] = []
        for c in contours:
            if cv2.contourArea(c) < p.min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            out.append((int(y / f), int((x + bw) / f), int((y + bh) / f), int(x / f)))
        return out


def grow(box: BBox, pad: int, min_side: int, height: int, width: int) -> BBox:
    """``box`` padded by ``pad`` px on each side, at least ``min_side`` square, clipped."""
    top, right, bottom, left = box
    cy, cx = (top + bottom) / 2, (left + right) / 2
    half_h = max((bottom - top) / 2 + pad, min_side / 2)
    half_w = max((right - left) / 2 + pad, min_side / 2)
    return (max(0, int(cy - half_h)), min(width, int(cx + half_w)),
            min(height, int(cy + half_h)), max(0, int(cx - half_w)))


def merge(boxes: Iterable[BBox]) -> list[BBox]:
    """Union overlapping boxes until none overlap (so no pixel is scanned twice)."""
    out = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] < b[2] and b[0] < a[2] and a[3] < b[1] and b[3] < a[1]:
                    out[i] = (min(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3]))
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def area(box: BBox) -> int:
    return max(0, box[1] - box[3]) * max(0, box[2] - box[0])


def search_scale(region: BBox, max_pixels: int) -> float:
    """The scale ``region`` is searched at: 1 (native pixels) up to ``max_pixels`` pixels,
    else the scale that brings it down to ``max_pixels`` (at least 0.05)."""
    pixels = area(region)
    return 1.0 if pixels <= max_pixels else max(0.05, (max_pixels / pixels) ** 0.5)


def dedupe(boxes: list[BBox], iou_max: float = 0.4) -> list[BBox]:
    """``boxes`` without those overlapping an earlier one by more than ``iou_max`` IoU."""

    out: list[BBox] = []
    for b in boxes:
        if all(iou(b, o) <= iou_max for o in out):
            out.append(b)
    return out


class Sweep:
    """The slow scan of the whole frame: every ``period_s`` (caller's clock) a sweep starts,
    then each call returns the next of ``bands`` horizontal bands until the frame is
    covered. Bands overlap by ``overlap`` px so a face on a seam is whole in one of them.
    ``period_s`` 0 disables it."""

    def __init__(self, period_s: float, bands: int, *, overlap: int) -> None:
        self.period_s, self.bands, self.overlap = period_s, bands, overlap
        self._next = 0                      # next band of the running sweep
        self._due: float | None = None      # when the next sweep starts (None: at once)

    def next_band(self, now: float, height: int, width: int) -> BBox | None:
        """The band to scan at this detection pass, or None."""
        if self.period_s <= 0:
            return None
        if self._due is None:
            self._due = now
        if now < self._due:
            return None
        step = height / self.bands
        band = (max(0, int(self._next * step) - self.overlap), width,
                min(height, int((self._next + 1) * step) + self.overlap), 0)
        self._next += 1
        if self._next == self.bands:
            self._next, self._due = 0, now + self.period_s
        return band


def look_regions(shape: tuple[int, int], motion: Iterable[BBox], expected: Iterable[BBox], *,
                 pad: int, min_side: int, busy_at: float = 0.6) -> list[BBox] | None:
    """Regions to run the detector in: each moving area padded by ``pad`` px and each
    expected face box (an open track's prediction) padded by its own size, all at least
    ``min_side`` px square, merged. None when they cover more than ``busy_at`` of the frame
    (motion everywhere: a crowd, camera shake, a light switched): the caller then scans
    the whole frame once, at its cheaper full-frame scale."""
    h, w = shape
    boxes = [grow(b, pad, min_side, h, w) for b in motion]
    boxes += [grow(b, max(b[1] - b[3], b[2] - b[0]), min_side, h, w) for b in expected]
    regions = merge(boxes)
    if sum(area(r) for r in regions) > busy_at * h * w:
        return None
    return regions
