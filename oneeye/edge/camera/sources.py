"""Frame sources: webcam index, RTSP/HTTP URL, video file, image folder.

Every source yields :class:`Frame` objects (BGR, as OpenCV decodes them) from
:meth:`Source.frames` until it ends or :meth:`Source.close` is called, and reports
``state`` — one of ``ok | connecting | reconnecting | failed | ended`` — for the
health message.

Live sources (webcam, URL) are :class:`oneeye.edge.camera.stream.LiveSource`.

File sources are read by a small prefetch thread (decode overlaps processing)
as fast as the consumer takes frames, or paced at the file's fps with
``realtime=True`` like a camera: a frame more than two frame periods late is
skipped (counted in ``dropped_frames``), so a slow machine skips frames evenly
instead of falling further behind. ``loop=True`` restarts at the end (demos).
Frames of a file carry their index and media time, which the pipeline uses for
cooldowns and latency so results do not depend on how fast this machine is. Media time
is the frame's presentation time in the container (:class:`oneeye.media.MediaClock`),
right for variable-frame-rate files; live sources stamp wall time only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import ImageError, SourceError
from oneeye.images import load_image
from oneeye.types import IMAGE_SUFFIXES, CameraState, redact_url

log = logging.getLogger(__name__)

VIDEO_FPS_FALLBACK = 25.0


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``media_time_s`` is None for live sources."""

    index: int
    image: NDArray[np.uint8]          # BGR, (h, w, 3)
    captured_at: float                # wall clock (time.time()) when decoded
    media_time_s: float | None = None


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use (tests inject fakes)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[str | int], Capture]


def cv2_capture(spec: str | int, timeout_s: float | None = None) -> Capture:
    """``cv2.VideoCapture(spec)``; streams get FFmpeg open/read timeouts of ``timeout_s``."""
    import cv2  # lazy: native OpenCV, loaded only where frames are

    if timeout_s is None or not isinstance(spec, str) or "://" not in spec:
        cap: Capture = cv2.VideoCapture(spec)
        return cap
    ms = int(timeout_s * 1000)
    cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    return cap


def valid_frame(image: Any) -> bool:
    """True for a BGR uint8 image of shape (h, w, 3), at least 8x8 (what a decoder should give)."""
    return (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.shape[0] >= 8 and image.shape[1] >= 8 and image.dtype == np.uint8)


class Source:
    """Base: a stoppable iterator of frames with a reported state."""

    live = False
    fps: float = VIDEO_FPS_FALLBACK

    def __init__(self, name: str) -> None:
        #: How logs, thread names and health show this source: never with its password.
        self.name = redact_url(name)
        self._state: CameraState = "connecting"
        self._stop = threading.Event()
        self.corrupt_frames = 0
        self.dropped_frames = 0      # frames skipped because processing was busy or late
        self.reconnects = 0
        #: CPU seconds the source's own reader thread spent reading and decoding frames
        #: (0 for sources that decode in the caller's thread, where the caller times it)
        self.decode_cpu_s = 0.0

    @property
    def state(self) -> CameraState:
        return self._state

    def _set_state(self, state: CameraState, why: str = "") -> None:
        if state != self._state:
            level = logging.INFO if state in ("ok", "ended", "connecting") else logging.WARNING
            log.log(level, "source %s: %s%s", self.name, state, f" ({why})" if why else "")
            self._state = state

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()


class FileSource(Source):
    """A video file, decoded ahead by one thread into a short queue."""

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False,
                 opener: CaptureFactory = cv2_capture, prefetch: int = 4) -> None:
        super().__init__(str(path))
        self.path = Path(path)
        self.realtime = realtime
        self.loop = loop
        self._opener = opener
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=prefetch)
        if not self.path.is_file():
            self._set_state("failed", "no such file")
            raise SourceError(f"{self.path}: no such video file")
        cap = opener(str(self.path))
        try:
            if not cap.isOpened():
                self._set_state("failed", "cannot open")
                raise SourceError(f"{self.path}: cannot open as a video")
            import cv2  # lazy: native OpenCV, loaded only where frames are

            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            cap.release()
        self.fps = fps if 1.0 <= fps <= 240.0 else VIDEO_FPS_FALLBACK

    def _reader(self) -> None:
        import cv2

        from oneeye.media import MediaClock

        index = 0
        offset_s = 0.0
        try:
            while not self._stop.is_set():
                cap = self._opener(str(self.path))
                if not cap.isOpened():
                    self._set_state("failed", "cannot reopen")
                    return
                self._set_state("ok")
                start_index = index
                clock = MediaClock(self.fps, offset_s)
                base, c0 = self.decode_cpu_s, time.thread_time()
                try:
                    while not self._stop.is_set():
                        ok, image = cap.read()
                        self.decode_cpu_s = base + time.thread_time() - c0
                        if not ok:
                            break
                        media_s = clock.stamp(cap.get(cv2.CAP_PROP_POS_MSEC))
                        if not valid_frame(image):
                            self.corrupt_frames += 1
                            log.warning("source %s: corrupt frame %d skipped", self.name, index)
                            index += 1
                            continue
                        frame = Frame(index, image, time.time(), media_s)
                        index += 1
                        while not self._stop.is_set():
                            try:
                                self._queue.put(frame, timeout=0.2)
                                break
                            except queue.Full:
                                continue
                finally:
                    cap.release()
                offset_s = clock.next_offset_s()   # a looped file's time goes on
                if not self.loop or index == start_index:
                    break
                log.info("source %s: looping", self.name)
        finally:
            if self._state != "failed":
                self._set_state("ended")
            self._put_end()

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(None, timeout=0.2)
                return
            except queue.Full:
                if self._stop.is_set():
                    return

    def frames(self) -> Iterator[Frame]:
        thread = threading.Thread(target=self._reader, name="oneeye-file-reader", daemon=True)
        thread.start()
        t0: float | None = None
        wall0 = 0.0
        first_media = 0.0
        try:
            while not self._stop.is_set():
                try:
                    frame = self._queue.get(timeout=0.2)
                except queue.Empty:
                    continue
                if frame is None:
                    return
                if self.realtime and frame.media_time_s is not None:
                    # Pace on media time so a file behaves like a camera (frames arrive at fps).
                    if t0 is None:
                        t0, wall0, first_media = time.monotonic(), time.time(), frame.media_time_s
                    due = frame.media_time_s - first_media
                    delay = due - (time.monotonic() - t0)
                    if delay < -2.0 / self.fps:
                        self.dropped_frames += 1   # a camera would have replaced it by now
                        continue
                    if delay > 0 and self._stop.wait(delay):
                        return
                    # Stamped when a camera would have delivered it: frame age shows lateness.
                    frame = Frame(frame.index, frame.image, wall0 + due, frame.media_time_s)
                yield frame
        finally:
            self._stop.set()
            thread.join(timeout=2.0)


class FolderSource(Source):
    """Sorted images of a folder, one frame each, at a nominal ``fps`` of media time."""

    def __init__(self, path: str | Path, *, fps: float = VIDEO_FPS_FALLBACK,
                 realtime: bool = False, loop: bool = False) -> None:
        super().__init__(str(path))
        self.path = Path(path)
        self.fps = fps
        self.realtime = realtime
        self.loop = loop
        self.files = sorted(p for p in self.path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        others = sorted(p.name for p in self.path.iterdir() if p not in self.files)
        if others:  # nothing is skipped without a word
            log.warning("source %s: %d entries are not images and are skipped: %s", self.name,
                        len(others), ", ".join(others[:20]) + (" …" if len(others) > 20 else ""))
        if not self.files:
            self._set_state("failed", "no images")
            raise SourceError(f"{self.path}: no images ({'/'.join(sorted(IMAGE_SUFFIXES))}) "
                              "in folder")

    def frames(self) -> Iterator[Frame]:

        index = 0
        t0 = time.monotonic()
        self._set_state("ok")
        while not self._stop.is_set():
            for path in self.files:
                if self._stop.is_set():
                    return
                try:  # the one decoder (EXIF, every mode); frames are BGR like OpenCV's
                    image: Any = np.ascontiguousarray(load_image(path)[:, :, ::-1])
                except ImageError as exc:
                    image, reason = None, str(exc)
                else:
                    reason = "too small"
                if not valid_frame(image):
                    self.corrupt_frames += 1
                    log.warning("source %s: image %s skipped: %s", self.name, path.name, reason)
                    index += 1
                    continue
                media = index / self.fps
                if self.realtime:
                    delay = media - (time.monotonic() - t0)
                    if delay > 0 and self._stop.wait(delay):
                        return
                yield Frame(index, image, time.time(), media)
                index += 1
            if not self.loop:
                break
        self._set_state("ended")
