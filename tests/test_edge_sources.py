"""Frame sources: video file, image folder, live streams that die and come back, bad input."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from oneeye.edge.camera.open import open_source
from oneeye.edge.camera.sources import FileSource, FolderSource, Frame
from oneeye.edge.camera.stream import LiveSource
from oneeye.errors import SourceError
from tests.wait import wait_until


def _frame(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    img[:, :, 1] = (i * 10) % 256   # each frame recognisable by its green level
    return img


def _video(path: Path, n: int, fps: float = 10.0) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    assert w.isOpened()
    for i in range(n):
        w.write(_frame(i))
    w.release()
    return path


def _take(frames: Iterator[Frame], n: int) -> list[Frame]:
    out = []
    for f in frames:
        out.append(f)
        if len(out) == n:
            break
    return out


# ----------------------------------------------------------------------------- files


def test_file_source_yields_every_frame_with_index_and_media_time(tmp_path: Path) -> None:
    src = FileSource(_video(tmp_path / "v.avi", 12, fps=10.0))
    frames = list(src.frames())
    assert [f.index for f in frames] == list(range(12))
    assert [f.media_time_s for f in frames] == pytest.approx([i / 10 for i in range(12)])
    assert all(f.image.shape == (120, 160, 3) for f in frames)
    assert src.fps == pytest.approx(10.0)
    assert src.state == "ended"
    assert not src.live


def test_file_source_realtime_still_delivers_every_frame(tmp_path: Path) -> None:
    src = FileSource(_video(tmp_path / "v.avi", 5, fps=10.0), realtime=True)
    assert [f.index for f in src.frames()] == [0, 1, 2, 3, 4]


def test_file_source_loop_restarts_and_keeps_counting(tmp_path: Path) -> None:
    src = FileSource(_video(tmp_path / "v.avi", 4), loop=True)
    frames = _take(src.frames(), 10)
    assert [f.index for f in frames] == list(range(10))
    # Frame 5 is frame 1 of the file again.
    assert frames[5].image[0, 0, 1] == frames[1].image[0, 0, 1]
    src.close()


def test_file_source_close_stops_iteration(tmp_path: Path) -> None:
    src = FileSource(_video(tmp_path / "v.avi", 50))
    it = src.frames()
    next(it)
    src.close()
    assert len(list(it)) <= 5   # at most what was already prefetched


@pytest.mark.parametrize("content", [None, b"", b"this is not a video at all" * 10])
def test_missing_or_unreadable_video_is_a_clear_error(tmp_path: Path,
                                                      content: bytes | None) -> None:
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=r"clip\.mp4"):
        FileSource(path)


def test_corrupt_frames_from_a_file_capture_are_skipped_and_counted(tmp_path: Path) -> None:
    video = _video(tmp_path / "v.avi", 1)
    script: list[Any] = [_frame(0), None, np.zeros((5, 5), np.uint8), _frame(3)]

    class Cap:
        def __init__(self) -> None:
            self.items = list(script)

        def isOpened(self) -> bool:
            return True

        def read(self) -> tuple[bool, Any]:
            if not self.items:
                return False, None
            return True, self.items.pop(0)

        def get(self, prop: int) -> float:
            return 10.0

        def release(self) -> None:
            pass

    src = FileSource(video, opener=lambda spec: Cap())
    frames = list(src.frames())
    assert [f.index for f in frames] == [0, 3]
    assert src.corrupt_frames == 2


# ----------------------------------------------------------------------------- folders


def test_folder_source_sorted_images_and_corrupt_file_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img{i:03d}.jpg"), _frame(i))
    (tmp_path / "img001b.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (tmp_path / "notes.txt").write_text("not an image")
    src = open_source(str(tmp_path))
    assert "1 entries are not images and are skipped: notes.txt" in caplog.text
    assert isinstance(src, FolderSource)
    frames = list(src.frames())
    greens = [int(f.image[0, 0, 1]) for f in frames]
    assert len(frames) == 3
    assert greens == sorted(greens)          # img000, img001, img002 in name order
    assert [f.index for f in frames] == [0, 1, 3]
    assert src.corrupt_frames == 1
    assert "img001b.jpg skipped: " in caplog.text and "not an image" in caplog.text
    assert src.state == "ended"


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        FolderSource(tmp_path)


# ----------------------------------------------------------------------------- live (fake camera)


class FakeCamera:
    """A camera that delivers ``per_session`` frames per connection, refuses ``refuse``
    connection attempts after each drop, and can be told to send garbage."""

    def __init__(self, per_session: int, refuse: int, garbage_every: int = 0) -> None:
        self.per_session = per_session
        self.refuse = refuse
        self.garbage_every = garbage_every
        self.opens = 0
        self.refused = 0
        self.sessions = 0
        self.counter = 0
        self.lock = threading.Lock()

    def __call__(self, spec: str | int) -> Any:
        cam = self
        with self.lock:
            self.opens += 1
            if self.sessions > 0 and self.refused < self.refuse * self.sessions:
                self.refused += 1
                opened = False
            else:
                self.sessions += 1
                opened = True

        class Cap:
            left = cam.per_session

            def isOpened(self) -> bool:
                return opened

            def read(self) -> tuple[bool, Any]:
                time.sleep(0.002)  # pacing: a camera delivers frames over time
                if self.left <= 0:
                    return False, None
                self.left -= 1
                cam.counter += 1
                if cam.garbage_every and cam.counter % cam.garbage_every == 0:
                    return True, np.zeros((3,), np.uint8)
                return True, _frame(cam.counter)

            def get(self, prop: int) -> float:
                return 0.0

            def release(self) -> None:
                pass

        return Cap()


def test_live_source_reconnects_with_backoff_and_reports_state() -> None:
    cam = FakeCamera(per_session=20, refuse=2)
    src = LiveSource("rtsp://camera.invalid/stream", opener=cam, backoff_s=0.01,
                     max_backoff_s=0.05, max_bad_reads=2)
    states: list[str] = []
    frames = []
    for f in src.frames():
        frames.append(f)
        states.append(src.state)
        if cam.sessions >= 3 and len(frames) >= 3:
            break
    src.close()
    assert cam.sessions >= 3                  # it died twice and came back twice
    assert cam.refused >= 2                   # and was refused while "down"
    assert src.reconnects >= 2
    assert all(f.media_time_s is None for f in frames)
    assert [f.index for f in frames] == sorted(f.index for f in frames)
    assert src.live


def test_live_source_keeps_only_the_newest_frame() -> None:
    cam = FakeCamera(per_session=10_000, refuse=0)
    src = LiveSource(0, opener=cam)
    got = []
    for f in src.frames():
        got.append(f.index)
        # A slow consumer: the camera delivers three more frames before the next is taken.
        wait_until(lambda seen=cam.counter: cam.counter >= seen + 3, 30,
                   "three newer camera frames")
        if len(got) == 5:
            break
    src.close()
    assert src.dropped_frames > 0
    assert got[-1] - got[0] > len(got)        # indices jump: old frames were dropped


def test_live_source_skips_corrupt_frames() -> None:
    cam = FakeCamera(per_session=10_000, refuse=0, garbage_every=2)
    src = LiveSource(0, opener=cam)
    got = _take(src.frames(), 5)
    src.close()
    assert all(f.image.shape == (120, 160, 3) for f in got)
    assert src.corrupt_frames > 0


def test_live_source_gives_up_after_max_attempts() -> None:
    def never(spec: str | int) -> Any:
        raise OSError("no such device")

    src = LiveSource(3, opener=never, backoff_s=0.01, max_attempts=3)
    assert list(src.frames()) == []
    assert src.state == "failed"


# ----------------------------------------------------------------------------- live (real HTTP)


class MjpegServer:
    """A real HTTP MJPEG camera (multipart/x-mixed-replace) that can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.alive = threading.Event()

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while owner.alive.is_set():
                        _ok, buf = cv2.imencode(".jpg", _frame(i))
                        data = buf.tobytes()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode()
                                         + data + b"\r\n")
                        i += 1
                        time.sleep(0.02)  # pacing: ~50 fps from the camera
                except (BrokenPipeError, ConnectionResetError):
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.alive.set()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kill(self) -> None:
        self.alive.clear()
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.timeout(120)  # a source that never recovers fails here, not after 10 minutes
def test_http_mjpeg_camera_that_dies_and_comes_back(port: int) -> None:
    cam = MjpegServer(port)
    cam.start()
    src = LiveSource(f"http://127.0.0.1:{port}/video.mjpg", backoff_s=0.1, max_backoff_s=0.4,
                     stall_s=2.0)
    seen_states: list[str] = []
    frames_before = frames_after = 0
    killed = restarted = False
    for _f in src.frames():
        if not killed:
            frames_before += 1
            if frames_before == 5:
                cam.kill()
                killed = True
                # Wait until the source notices; then bring the camera back.
                seen_states.append(wait_until(lambda: src.state if src.state != "ok" else None,
                                              60, "the source to notice the dead camera"))
                # The camera stays down until the source has failed to reach it once.
                wait_until(lambda: src.failed_opens >= 1, 60, "a failed reconnect attempt")
                cam.start()
                restarted = True
        elif restarted:
            frames_after += 1
            if frames_after == 5:
                break
    seen_states.append(src.state)
    src.close()
    cam.kill()
    assert frames_before == 5 and frames_after == 5
    assert seen_states[0] == "reconnecting"
    assert seen_states[-1] == "ok"
    assert src.reconnects >= 1 and src.failed_opens >= 1


# ----------------------------------------------------------------------------- a frozen camera

STALL_CASE = Path(__file__).resolve().parents[1].parent / "shared" / "cases" / "stream-stall"


class FrozenCamera:
    """The field case's MJPEG camera (``../shared/cases/stream-stall``): its first
    connection streams for ``stream_s`` then goes silent with the socket open."""

    def __init__(self, port: int, stream_s: float, stall_s: float = 120.0) -> None:
        import subprocess
        import sys

        self.url = f"http://127.0.0.1:{port}/stream.mjpg"
        self.proc = subprocess.Popen(
            [sys.executable, str(STALL_CASE / "mjpeg_server.py"), str(port), str(stream_s),
             str(stall_s)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()          # "HH:MM:SS listening PORT"
        assert "listening" in line, line

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def test_a_camera_that_freezes_with_its_socket_open_is_reopened_after_stall_s(
        port: int) -> None:
    """Right value of the field case: reconnecting within ~stall_s of the last frame (not
    after FFmpeg's 30 s), then frames again on a new connection."""

    cam = FrozenCamera(port, stream_s=2.0)
    src = LiveSource(cam.url, stall_s=1.0, backoff_s=0.1)
    seen: list[tuple[float, str]] = []
    got: list[Frame] = []

    def consume() -> None:
        for f in src.frames():
            got.append(f)
            seen.append((time.monotonic(), src.state))

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    try:
        wait_until(lambda: src.stalls >= 1, 20, "the stall to be noticed")
        last_frame_before = seen[-1][0]
        noticed = time.monotonic()
        # stall_s (1 s) + one watchdog tick, far below OpenCV's own 30 s
        assert noticed - last_frame_before < 5.0
        n = len(got)
        wait_until(lambda: len(got) >= n + 5 and src.state == "ok", 20,
                   "frames from a new connection")
        assert src.reconnects >= 1
    finally:
        src.close()
        t.join(5)
        cam.close()
