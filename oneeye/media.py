"""Read a still image or a video file as a sequence of RGB frames (offline analysis).

Live capture with reconnects lives in ``oneeye.edge.camera.sources``; this is the plain
"every frame of a file, optionally thinned to a rate" reader ``oneeye analyze`` needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from oneeye import faces
from oneeye.errors import ImageError
from oneeye.images import is_still_image, load_image


@dataclass(frozen=True)
class MediaFrame:
    index: int
    media_time_s: float
    rgb: NDArray[np.uint8]


def expected_frames(path: str | Path, *, fps_max: float | None = None) -> int | None:
    """How many frames :func:`iter_media` will yield (1 for a still), or None if unknown.

    From the container's frame count and rate (an estimate for variable-rate video: it is
    used for progress only).
    """
    p = Path(path)
    if is_still_image(p):
        return 1
    import cv2  # lazy: native OpenCV, loaded only where frames are

    cap = cv2.VideoCapture(str(p))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
        fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS) or 0.0) if cap.isOpened() else 0.0
    finally:
        cap.release()
    if count <= 0:
        return None
    if not fps_max or fps_max >= fps:
        return count
    return max(1, math.ceil(count / fps * fps_max))


def _usable_fps(fps: float) -> float:
    """The container's rate, or 25 (PAL) for containers without a usable one."""
    return fps if 1.0 <= fps <= 240.0 else 25.0


def iter_media(path: str | Path, *, fps_max: float | None = None) -> Iterator[MediaFrame]:
    """Yield frames of an image (one frame) or a video, at most ``fps_max`` per media second.

    Still images (by name or content, see :func:`oneeye.images.is_still_image`) go through
    the one decoder, so EXIF orientation and every colour mode are handled as everywhere
    else; only videos are opened with OpenCV. Raises :class:`ImageError` for either kind
    that cannot be read.
    """

    p = Path(path)
    if is_still_image(p):
        yield MediaFrame(0, 0.0, load_image(p))
        return
    import cv2  # lazy: native OpenCV, loaded only where frames are

    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise ImageError(f"{p}: cannot open as video or image")
    try:
        fps = _usable_fps(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        step = 1.0 / fps_max if fps_max else 0.0
        next_t = 0.0
        index = -1
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            index += 1
            t = index / fps
            if t + 1e-9 < next_t:
                continue
            next_t = t + step
            yield MediaFrame(index, t, faces.bgr_to_rgb(np.asarray(frame, dtype=np.uint8)))
        if index < 0:
            raise ImageError(f"{p}: no decodable frames")
    finally:
        cap.release()
