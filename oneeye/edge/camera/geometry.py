"""Per-camera geometry: turn a frame upright (``rotate``) and keep its region of interest
(``crop``), before anything else looks at it.

dlib's HOG detector finds upright faces only (±~30°), so a camera mounted on its side
("corridor" portrait framing, a turned bracket) sees nobody until its frames are turned
back (``../shared/cases/rotated-camera``). ``rotate`` is how far the camera's picture is
turned clockwise; :func:`upright` turns it back by as much. ``crop`` is in pixels of the
upright frame and is clipped to it.

    view = Geometry(rotate=90, crop=CropSettings(x=0, y=100, width=540, height=700))
    image, (dx, dy) = view.apply(frame.image)   # box in image + (dx, dy) = upright-frame box
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from oneeye.edge.settings import CropSettings, Rotation
from oneeye.errors import ConfigError


def upright(image: NDArray[np.uint8], rotate: Rotation) -> NDArray[np.uint8]:
    """``image`` (H, W, C) turned ``rotate`` degrees counter-clockwise, i.e. back upright
    from a picture turned that much clockwise."""
    if rotate == 0:
        return image
    # np.rot90 turns counter-clockwise by quarter turns; a contiguous copy for dlib/OpenCV.
    return np.ascontiguousarray(np.rot90(image, k=rotate // 90))


@dataclass(frozen=True)
class Geometry:
    rotate: Rotation = 0
    crop: CropSettings | None = None

    def apply(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], tuple[int, int]]:
        """The upright region of interest of ``image`` and its offset (x, y) in the upright
        frame. Raises :class:`ConfigError` when ``crop`` lies outside the frame (it names the
        frame's upright size, so the setting can be fixed)."""
        img = upright(image, self.rotate)
        if self.crop is None:
            return img, (0, 0)
        h, w = img.shape[:2]
        c = self.crop
        x1, y1 = min(w, c.x + c.width), min(h, c.y + c.height)
        if x1 - c.x < 32 or y1 - c.y < 32:
            raise ConfigError(f"crop x={c.x} y={c.y} width={c.width} height={c.height} leaves "
                              f"less than 32x32 px of the upright {w}x{h} frame")
        return img[c.y:y1, c.x:x1], (c.x, c.y)
