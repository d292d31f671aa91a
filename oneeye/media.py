"""Read a still image or a video file as a sequence of RGB frames (offline analysis).

Live capture with reconnects lives in ``oneeye.edge.camera.sources``; this is the plain
"every frame of a file, optionally thinned to a rate" reader ``oneeye analyze`` needs.
Animated images (GIF, WebP, APNG) are videos here: every frame, timed by the durations the
file gives (Pillow's ``duration`` per frame, 100 ms when a file gives none), not "a still
image" read as its first frame.

A video frame's media time is its presentation time in the container (:class:`MediaClock`),
not ``index / fps``: phones and many cameras write variable-frame-rate files, where the
container's fps is an average and ``index / fps`` drifts by seconds.
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


class MediaClock:
    """Media time (s) of each frame of one pass over a video file, from its timestamps.

    Feed :meth:`stamp` OpenCV's ``CAP_PROP_POS_MSEC`` read right after each ``read()``:
    with the FFmpeg backend that is the decoded frame's presentation time (the demuxer's
    PTS less the stream's start), which is right for variable-frame-rate files. A value
    that is not a finite number that moves forward (backends and containers without
    timestamps report 0 or -1, some raw streams repeat one) is replaced by the previous
    time plus one frame at ``fps``, so times never go backwards and a file without
    timestamps keeps ``index / fps``. ``offset_s`` is added to every time (a looped file
    goes on where its last pass ended).
    """

    def __init__(self, fps: float, offset_s: float = 0.0) -> None:
        self.period_s = 1.0 / _usable_fps(fps)
        self.offset_s = offset_s
        self.last_s: float | None = None      # the last time returned, without offset

    def stamp(self, pos_msec: float) -> float:
        """The media time (s, ``offset_s`` included) of the frame just read."""
        t = pos_msec / 1000.0 if math.isfinite(pos_msec) and pos_msec >= 0 else -1.0
        if self.last_s is None:
            t = max(t, 0.0)
        elif t <= self.last_s:
            t = self.last_s + self.period_s
        self.last_s = t
        return self.offset_s + t

    def next_offset_s(self) -> float:
        """Where a following pass over the same file starts (one frame after this one)."""
        return self.offset_s + (self.last_s + self.period_s if self.last_s is not None else 0.0)


def iter_media(path: str | Path, *, fps_max: float | None = None) -> Iterator[MediaFrame]:
    """Yield frames of an image (one frame) or a video, at most ``fps_max`` per media second.

    Still images (by name or content, see :func:`oneeye.images.is_still_image`) go through
    the one decoder, so EXIF orientation and every colour mode are handled as everywhere
    else; only videos are opened with OpenCV. Raises :class:`ImageError` for either kind
    that cannot be read.

    A video frame's ``media_time_s`` is its presentation time (:class:`MediaClock`);
    thinning to ``fps_max`` keeps the first frame at or after each ``1 / fps_max`` step of
    that time, so a variable-rate file is sampled evenly in real time.
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
        clock = MediaClock(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        step = 1.0 / fps_max if fps_max else 0.0
        next_t = 0.0
        index = -1
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            index += 1
            t = clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC))   # sample by media time too
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


def frame_times(path: str | Path) -> list[float]:
    """Every frame's media time (s) of a video file, in decode order (:class:`MediaClock`).

    For scoring against frame indices (benchmarks, tests). Raises :class:`ImageError` when
    the file cannot be opened as a video.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageError(f"{path}: cannot open as video")
    try:
        clock = MediaClock(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        times: list[float] = []
        while cap.grab():   # grab() demuxes and decodes without converting: faster
            times.append(clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC)))
        return times
    finally:
        cap.release()
