"""Open a camera by its spec: the one place that knows every kind of source.

It sits above :mod:`.sources` (files, folders, the :class:`Source` base) and :mod:`.live`
(reconnecting streams), so neither imports the other's sibling.
"""

from __future__ import annotations

from pathlib import Path

from oneeye.edge.camera.sources import (
    CaptureFactory,
    FileSource,
    FolderSource,
    Source,
    cv2_capture,
)
from oneeye.edge.camera.stream import LiveSource


def open_source(spec: str, *, realtime: bool = False, loop: bool = False,
                stall_s: float = 5.0, opener: CaptureFactory | None = None) -> Source:
    """``"0"`` → webcam 0; ``rtsp://…``/``http(s)://…`` → stream; a folder; else a video file.

    Raises :class:`SourceError` for a missing or unreadable file or folder; live sources
    never raise (they report their state and reconnect).
    """
    if spec.isdigit():
        return LiveSource(int(spec), opener=opener, stall_s=stall_s)
    if "://" in spec:
        return LiveSource(spec, opener=opener, stall_s=stall_s)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, realtime=realtime, loop=loop)
    return FileSource(path, realtime=realtime, loop=loop, opener=opener or cv2_capture)
