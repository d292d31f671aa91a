"""Variable-frame-rate video files for the media-time tests, written without FFmpeg.

OpenCV writes only constant-rate files; phones and many cameras write variable-rate ones
(the rate drops when the light does). :func:`write_vfr_mp4` writes frames with OpenCV as
constant-rate MPEG-4, then rewrites the mp4's sample-duration table (``stts``) and the
durations of ``mdhd``/``mvhd``/``tkhd``/``elst`` — the recipe of the ``vfr-media-time``
case (``../shared/cases/vfr-media-time/make.py``) — and returns every frame's true
presentation time.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

#: The writer's rate; its time base makes one frame ``delta`` ticks.
BASE_FPS = 30000 / 1001


def _boxes(buf: bytearray, start: int, end: int) -> Iterator[tuple[int, int, str]]:
    i = start
    while i < end:
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        yield i, size, kind.decode("latin-1")
        i += size


def _find(buf: bytearray, start: int, end: int, path: Sequence[str]) -> list[tuple[int, int]]:
    """(offset, size) of each box along ``path``, outermost first; KeyError if absent."""
    for off, size, kind in _boxes(buf, start, end):
        if kind == path[0]:
            rest = _find(buf, off + 8, off + size, path[1:]) if len(path) > 1 else []
            return [(off, size), *rest]
    raise KeyError(path[0])


def write_vfr_mp4(out: Path, frames: Iterable[NDArray[np.uint8]],
                  runs: Sequence[tuple[int, int]]) -> list[float]:
    """Write BGR ``frames`` to ``out`` so that run ``(count, k)`` lasts ``k`` base frame
    periods (1/29.97 s) per frame; the runs' counts must add up to the number of frames.
    Returns each frame's presentation time in seconds."""
    tmp = out.with_suffix(".cfr.mp4")
    writer = None
    n = 0
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), BASE_FPS,
                                     (frame.shape[1], frame.shape[0]))
        writer.write(frame)
        n += 1
    assert writer is not None, "no frames"
    writer.release()
    assert sum(c for c, _ in runs) == n, f"runs cover {sum(c for c, _ in runs)} of {n} frames"
    data = bytearray(tmp.read_bytes())
    tmp.unlink()
    top = {kind: off for off, _, kind in _boxes(data, 0, len(data))}
    assert top["moov"] > top["mdat"], "moov must follow mdat (chunk offsets stay valid)"
    chain = _find(data, 0, len(data), ["moov", "trak", "mdia", "minf", "stbl", "stts"])
    stts_off, stts_size = chain[-1]
    assert struct.unpack(">I", data[stts_off + 12:stts_off + 16])[0] == 1
    _, delta = struct.unpack(">II", data[stts_off + 16:stts_off + 24])
    entries = [(c, k * delta) for c, k in runs]
    new = struct.pack(">I4sBBBBI", 16 + 8 * len(entries), b"stts", 0, 0, 0, 0, len(entries))
    new += b"".join(struct.pack(">II", c, d) for c, d in entries)
    grow = len(new) - stts_size
    for off, size in chain[:-1]:                  # every ancestor box grows
        struct.pack_into(">I", data, off, size + grow)
    data[stts_off:stts_off + stts_size] = new
    media_dur = sum(c * d for c, d in entries)
    mdhd = _find(data, 0, len(data), ["moov", "trak", "mdia", "mdhd"])[-1][0]
    media_ts = struct.unpack(">I", data[mdhd + 20:mdhd + 24])[0]
    struct.pack_into(">I", data, mdhd + 24, media_dur)
    mvhd = _find(data, 0, len(data), ["moov", "mvhd"])[-1][0]
    movie_dur = round(media_dur / media_ts * struct.unpack(">I", data[mvhd + 20:mvhd + 24])[0])
    struct.pack_into(">I", data, mvhd + 24, movie_dur)
    tkhd = _find(data, 0, len(data), ["moov", "trak", "tkhd"])[-1][0]
    struct.pack_into(">I", data, tkhd + 28, movie_dur)
    try:
        elst = _find(data, 0, len(data), ["moov", "trak", "edts", "elst"])[-1][0]
        struct.pack_into(">I", data, elst + 16, movie_dur)
    except KeyError:
        pass
    out.write_bytes(bytes(data))
    times, t = [], 0
    for c, d in entries:
        for _ in range(c):
            times.append(t / media_ts)
            t += d
    return times


def video_frames(path: Path) -> Iterator[NDArray[np.uint8]]:
    """Every decoded BGR frame of a video file."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield np.asarray(frame, dtype=np.uint8)
    finally:
        cap.release()


def counter_frames(n: int, size: tuple[int, int] = (96, 64)) -> Iterator[NDArray[np.uint8]]:
    """``n`` small BGR frames, each a different grey level and bar position."""
    w, h = size
    for i in range(n):
        frame = np.full((h, w, 3), 40 + (i * 7) % 180, np.uint8)
        frame[:, (i * 3) % w] = 255
        yield frame
