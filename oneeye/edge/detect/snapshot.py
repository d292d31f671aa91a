"""Face-crop snapshots for events: JPEG, base64, never larger than a cap.

A snapshot leaves the device only for a match on a watchlist whose policy asks
for one (missing persons by default) — never for an unknown face. The crop is
the face box plus a margin; quality and then size step down until the base64
text fits ``max_bytes`` so the event stays far below IoT Core's 128 KB.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye.types import BBox

log = logging.getLogger(__name__)


def crop(image: NDArray[np.uint8], box: BBox, margin: float = 0.4) -> NDArray[np.uint8]:
    """The box grown by ``margin`` of its size on each side, clipped to the image."""
    top, right, bottom, left = box
    h, w = image.shape[:2]
    mh, mw = int((bottom - top) * margin), int((right - left) * margin)
    return image[max(0, top - mh):min(h, bottom + mh), max(0, left - mw):min(w, right + mw)]


def encode_jpeg_b64(bgr: NDArray[np.uint8], *, max_bytes: int = 60_000,
                    max_side: int = 320) -> str | None:
    """Base64 JPEG of a BGR crop, at most ``max_bytes`` characters; None if it cannot fit."""
    import cv2  # lazy: native OpenCV, loaded only where frames are

    if bgr.size == 0:
        return None
    img: NDArray[Any] = bgr
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        img = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))),
                         interpolation=cv2.INTER_AREA)
    for _ in range(4):
        for quality in (85, 70, 50, 30):
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                text = base64.b64encode(buf.tobytes()).decode("ascii")
                if len(text) <= max_bytes:
                    return text
        h, w = img.shape[:2]
        if min(h, w) < 32:
            break
        img = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    log.warning("snapshot does not fit %d bytes; event sent without it", max_bytes)
    return None
