"""Live preview for installers: an annotated MJPEG stream on 127.0.0.1 only.

``http://127.0.0.1:PORT/`` shows the camera with one box per track — green with
the person id for a match, grey "unknown" otherwise — so an installer can aim
the camera and check face sizes. It binds to loopback only (faces on screen are
personal data; reach it through an SSH tunnel), is off by default, and costs
one JPEG encode per frame while a viewer is connected, nothing otherwise.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye.edge.detect.pipeline import Annotation

log = logging.getLogger(__name__)

BOUNDARY = b"oneeyeframe"
_PAGE = (b"<!doctype html><title>OneEye preview</title>"
         b"<body style='margin:0;background:#111'><img src='/stream' style='width:100%'></body>")


class Preview:
    def __init__(self, port: int, *, host: str = "127.0.0.1", quality: int = 70) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the preview serves faces: it binds to loopback only")
        self.quality = quality
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._viewers = 0
        self._closed = False
        preview = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("preview: " + fmt, *args)

            def do_GET(self) -> None:
                if self.path == "/":
                    self._send(200, "text/html", _PAGE)
                elif self.path == "/stream":
                    preview._stream(self)
                elif self.path == "/frame.jpg":
                    jpeg = preview.latest()
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="oneeye-preview", daemon=True)

    def start(self) -> Preview:
        self._thread.start()
        log.info("preview on http://127.0.0.1:%d/", self.port)
        return self

    def latest(self) -> bytes | None:
        with self._cond:
            return self._jpeg

    def update(self, bgr: NDArray[np.uint8], annotations: list[Annotation]) -> None:
        """Pipeline hook: annotate and publish a frame (skipped while nobody watches,
        except for the first frame so /frame.jpg has something to show)."""
        if self._viewers == 0 and self._jpeg is not None:
            return
        import cv2  # lazy: native OpenCV, loaded only where frames are

        img = bgr.copy()
        for (top, right, bottom, left), label, matched in annotations:
            colour = (60, 200, 60) if matched else (160, 160, 160)
            cv2.rectangle(img, (left, top), (right, bottom), colour, 2)
            cv2.putText(img, label if matched else "unknown", (left, max(12, top - 6)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        with self._cond:
            self._jpeg = buf.tobytes()
            self._seq += 1
            self._cond.notify_all()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type",
                            f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        seen = -1
        with self._cond:
            self._viewers += 1
        try:
            while not self._closed:
                with self._cond:
                    if self._seq == seen and not self._closed:
                        self._cond.wait(timeout=1.0)
                    jpeg, seen = self._jpeg, self._seq
                if jpeg is None or self._closed:
                    continue
                handler.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\n"
                                    + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                    + jpeg + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self._cond:
                self._viewers -= 1

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
