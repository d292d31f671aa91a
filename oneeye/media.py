"""Read a still image or a video file as a sequence of RGB frames (offline analysis).

Live capture with reconnects lives in ``oneeye.edge.camera.sources``; this is the plain
"every frame of a file, optionally thinned to a rate" reader ``oneeye analyze`` needs.
Animated images (GIF, WebP, APNG) are videos here: every frame, timed by the durations the
file gives (Pillow's ``duration`` per frame, 100 ms when a file gives none), not "a still
image" read as its first frame.
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
from oneeye.images import DEFAULT_MAX_PIXELS, is_still_image, load_image

#: Frame duration of an animated image that gives none (browsers use ~100 ms too).
ANIMATION_DEFAULT_MS = 100.0


def is_animated(path: str | Path) -> bool:
    """True for an image file with more than one frame (animated GIF, WebP or APNG)."""
    from PIL import Image as PIL
    from PIL import UnidentifiedImageError

    try:
        with PIL.open(path) as img:
            return bool(getattr(img, "is_animated", False))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def is_video(path: str | Path) -> bool:
    """True when :func:`iter_media` reads ``path`` as a sequence of frames in time (a video
    file or an animated image), False for a still photo."""
    return not is_still_image(path) or is_animated(path)


def _animation(p: Path) -> Iterator[MediaFrame]:
    """Every frame of an animated image, timed by the durations before it."""
    from PIL import Image as PIL
    from PIL import ImageSequence

    try:
        with PIL.open(p) as img:
            if img.width * img.height > DEFAULT_MAX_PIXELS:
                raise ImageError(f"{p}: {img.width}x{img.height} is too large to analyse")
            t = 0.0
            for index, frame in enumerate(ImageSequence.Iterator(img)):
                yield MediaFrame(index, t, np.asarray(frame.convert("RGB"), dtype=np.uint8))
                duration = float(frame.info.get("duration") or 0) or ANIMATION_DEFAULT_MS
                t += duration / 1000.0
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p}: cannot read the animation ({exc})") from exc


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
    if is_animated(p):
        return sum(1 for _ in _sampled(_animation(p), fps_max))
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
    if is_animated(p):
        yield from _sampled(_animation(p), fps_max)
        return
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


def _sampled(frames: Iterator[MediaFrame], fps_max: float | None) -> Iterator[MediaFrame]:
    """``frames`` thinned to at most ``fps_max`` per media second (all when None)."""
    step = 1.0 / fps_max if fps_max else 0.0
    next_t = 0.0
    for frame in frames:
        if frame.media_time_s + 1e-9 < next_t:
            continue
        next_t = frame.media_time_s + step
        yield frame
