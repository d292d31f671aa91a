"""The one image decoder: any photo a user gives OneEye → an RGB ``uint8`` array, or a reason.

Every command that reads a still image (``gallery build``, ``identify``, ``analyze``,
the indexer behind the phone page, the edge's folder source) calls :func:`load_image`,
so they all accept the same files and refuse the same files with the same words.

What "faithfully" means here, per Pillow mode:

- ``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``: Pillow's own
  conversion to RGB (CMYK without an ICC transform, like every browser without one).
- Alpha (``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``, palette or grey with a transparent
  colour): composited on white, as a photo viewer shows it.
- ``I;16`` (any endianness): scaled by its nominal 16-bit range (÷ 257), never clipped;
  Pillow's ``convert("L")`` clips 16-bit values to 255 and turns a photo white.
- ``I`` (32-bit integer) and ``F`` (float) carry no nominal range, so the data's range picks
  one: ``[0, 1]`` (float only), ``[0, 255]``, ``[0, 65535]``, else the data's min…max.
- Anything else is refused as ``unsupported_mode`` with the mode's name.

Animated GIF/WebP give their first frame; EXIF orientation is applied; HEIC/HEIF is refused
by name because Pillow has no HEIF decoder here ("export as JPEG"). Files larger than
``max_bytes`` or images with more than ``max_pixels`` pixels are refused before decoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PIL
from PIL import ImageFile, UnidentifiedImageError
from PIL.Image import Image as PILImage
from PIL.Image import Transpose

from oneeye.errors import ImageError
from oneeye.fileio import read_bytes
from oneeye.types import IMAGE_SUFFIXES

#: An RGB photo: ``uint8`` array of shape ``(height, width, 3)``.
Image = NDArray[np.uint8]

#: Refuse to decode images with more pixels than this (a 10 MB JPEG can expand to GBs).
DEFAULT_MAX_PIXELS: Final = 40_000_000
#: Refuse files larger than this before even looking at them.
DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024

#: Container formats OneEye decodes (Pillow's names; JFIF is ``JPEG``, phone bursts ``MPO``).
FORMATS: Final = frozenset({"JPEG", "MPO", "PNG", "BMP", "WEBP", "GIF", "TIFF", "AVIF"})

#: ISO-BMFF brands of HEIC/HEIF photos (iPhone default), which Pillow cannot decode.
_HEIF_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis",
                                 b"hevm", b"hevs", b"mif1", b"msf1"})

_ALPHA_MODES: Final = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_PILLOW_RGB_MODES: Final = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB",
                                      "HSV"})
_SIXTEEN_BIT_MODES: Final = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_NO_RANGE_MODES: Final = frozenset({"I", "F"})

#: EXIF Orientation tag value → the transpose that makes the picture upright (as in
#: ``PIL.ImageOps.exif_transpose``, applied after conversion so it works for every mode).
_ORIENTATION: Final = {2: Transpose.FLIP_LEFT_RIGHT, 3: Transpose.ROTATE_180,
                       4: Transpose.FLIP_TOP_BOTTOM, 5: Transpose.TRANSPOSE,
                       6: Transpose.ROTATE_270, 7: Transpose.TRANSVERSE, 8: Transpose.ROTATE_90}
_EXIF_ORIENTATION_TAG: Final = 0x0112


def is_heif(data: bytes) -> bool:
    """True when ``data`` starts like a HEIC/HEIF file (an ISO-BMFF ``ftyp`` box, HEIF brand)."""
    return len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def load_image(
    source: bytes | str | Path,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image:
    """Decode a photo (bytes or a path) into an upright RGB ``uint8`` array ``(h, w, 3)``.

    Raises :class:`ImageError` whose ``reason`` is one of ``unreadable`` (missing file, I/O
    error), ``empty``, ``too_large`` (over ``max_bytes`` bytes or ``max_pixels`` pixels,
    decompression bombs included), ``not_an_image``, ``unsupported_format`` (HEIC/HEIF,
    or a format outside :data:`FORMATS`), ``unsupported_mode`` or ``corrupt`` (truncated
    or damaged data); the message names the file and says what to do.
    """
    name, data = _read(source, max_bytes)
    # face_recognition sets this process-wide on import, which makes PIL decode a
    # truncated upload as a half-grey picture instead of failing; we want the error.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if is_heif(data):
        raise ImageError(f"{_at(name)}HEIC is not supported; export as JPEG",
                         reason="unsupported_format")
    try:
        with PIL.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError(f"{_at(name)}image too large ({width}x{height} = "
                                 f"{width * height} pixels > {max_pixels})", reason="too_large")
            if img.format not in FORMATS:
                raise ImageError(f"{_at(name)}unsupported image format {img.format} (use "
                                 f"one of {', '.join(sorted(FORMATS))})",
                                 reason="unsupported_format")
            img.seek(0)  # animated GIF/WebP/TIFF pages: the first frame
            img.load()
            orientation = img.getexif().get(_EXIF_ORIENTATION_TAG)
            rgb = to_rgb(img, name=name)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{_at(name)}not an image (unrecognised format)",
                         reason="not_an_image") from exc
    except PIL.DecompressionBombError as exc:
        raise ImageError(f"{_at(name)}image too large (decompression bomb)",
                         reason="too_large") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{_at(name)}corrupt or truncated image ({exc})",
                         reason="corrupt") from exc
    if orientation in _ORIENTATION:
        rgb = rgb.transpose(_ORIENTATION[orientation])
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def to_rgb(img: PILImage, *, name: str = "") -> PILImage:
    """A loaded Pillow image of any supported mode as an RGB Pillow image (see module doc).

    Raises :class:`ImageError` (``unsupported_mode``) for a mode OneEye cannot convert
    faithfully.
    """
    mode = img.mode
    if mode == "La":  # premultiplied; Pillow converts it only to LA
        img, mode = img.convert("LA"), "LA"
    if mode in _ALPHA_MODES or (mode in {"L", "P", "RGB"} and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = PIL.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PIL.alpha_composite(white, rgba).convert("RGB")
    if mode in _PILLOW_RGB_MODES:
        return img.convert("RGB")
    if mode in _SIXTEEN_BIT_MODES or mode in _NO_RANGE_MODES:
        grey = _scale_to_uint8(np.asarray(img), sixteen_bit=mode in _SIXTEEN_BIT_MODES)
        return PIL.fromarray(grey, mode="L").convert("RGB")
    raise ImageError(f"{_at(name)}unsupported image mode {mode} (export as 8-bit RGB JPEG or "
                     "PNG)", reason="unsupported_mode")


def _scale_to_uint8(values: NDArray[np.generic], *, sixteen_bit: bool) -> NDArray[np.uint8]:
    """Grey values of any depth → ``uint8`` by the range they are on (never clipping)."""
    data = values.astype(np.float64)
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if sixteen_bit:
        lo, top = 0.0, 65535.0
    elif lo >= 0 and hi <= 1.0 and values.dtype.kind == "f":
        lo, top = 0.0, 1.0
    elif lo >= 0 and hi <= 255:
        lo, top = 0.0, 255.0
    elif lo >= 0 and hi <= 65535:
        lo, top = 0.0, 65535.0
    else:
        top = hi if hi > lo else lo + 1.0
    scaled = (np.nan_to_num(data, nan=lo) - lo) * (255.0 / (top - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _at(name: str) -> str:
    """``"NAME: "`` to start a message about a file; nothing for bytes (no name to give)."""
    return f"{name}: " if name else ""


def _read(source: bytes | str | Path, max_bytes: int) -> tuple[str, bytes]:
    """(name for messages, "" for bytes; the bytes), refusing missing, empty or oversized files."""
    if isinstance(source, bytes | bytearray | memoryview):
        name, data = "", bytes(source)
    else:
        path = Path(source)
        name = str(path)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise ImageError(f"{_at(name)}file too large ({size} bytes > {max_bytes})",
                                 reason="too_large")
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{_at(name)}cannot read file ({exc.strerror or exc})",
                             reason="unreadable") from exc
    if not data:
        raise ImageError(f"{_at(name)}empty file", reason="empty")
    if len(data) > max_bytes:
        raise ImageError(f"{_at(name)}file too large ({len(data)} bytes > {max_bytes})",
                         reason="too_large")
    return name, data


def is_still_image(path: str | Path) -> bool:
    """True when ``path`` is a still photo for :func:`load_image` rather than a video.

    Decided by content, not only by name: a file with an image suffix, or one whose first
    bytes Pillow (or the HEIF check) recognises, is an image — so ``analyze`` never hands
    a photo to OpenCV, which ignores EXIF orientation.
    """
    p = Path(path)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
            if is_heif(head):
                return True
            fh.seek(0)
            with PIL.open(fh) as img:  # Pillow also "identifies" MPEG-1 video: not a still
                return img.format in FORMATS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False


def upload_copy(source: bytes | str | Path, *, max_side: int, max_bytes: int,
                original: bool = False) -> tuple[bytes, str]:
    """(bytes, content type) of a photo (a path, or the bytes received) to upload where
    only JPEG and PNG are accepted.

    A JPEG or PNG of at most ``max_side`` px and ``max_bytes`` bytes (any size with
    ``original``) is sent as it is: the server decodes it with :func:`load_image` too.
    Anything else :func:`load_image` reads (WebP, GIF, TIFF, BMP, larger photos …) is sent
    as an upright RGB JPEG (quality 90) of at most ``max_side`` px. Raises
    :class:`ImageError` (``too_large`` for an ``original`` over ``max_bytes``; otherwise the
    decoder's reasons, HEIC's ``unsupported_format`` included).
    """
    if isinstance(source, bytes):
        data, name = source, "the photo"
    else:
        data, name = read_bytes(Path(source), "file", ImageError), str(source)  # "unreadable"
    kind = ("image/jpeg" if data[:3] == b"\xff\xd8\xff"
            else "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else None)
    rgb = load_image(source, max_bytes=max(len(data), 1))  # (errors name a path)
    if kind and (original or max(rgb.shape[:2]) <= max_side) and len(data) <= max_bytes:
        return data, kind
    if original and kind:
        raise ImageError(f"{name}: file too large ({len(data) >> 20} MB; the limit is "
                         f"{max_bytes >> 20} MB)", reason="too_large")
    im = PIL.fromarray(rgb)
    im.thumbnail((max_side, max_side), PIL.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), "image/jpeg"


# --------------------------------------------------------------------------- photo folders


@dataclass(frozen=True)
class SkippedFile:
    """A file a command did not use, and why."""

    path: str
    #: ``not_in_person_folder``, ``subfolder``, ``not_an_image_name``, or an
    #: :class:`~oneeye.errors.ImageError` / enrolment reason when the file was tried.
    reason: str
    message: str


@dataclass(frozen=True)
class PhotoDir:
    """``SRC/<person_id>/<photo>`` listed: the photos to try and every file left out."""

    photos: list[tuple[str, Path]]
    skipped: list[SkippedFile]
    people: list[str]


def list_photo_dir(src: str | Path) -> PhotoDir:
    """List ``SRC/<person_id>/*`` (sorted, for reproducible builds).

    Files whose name ends in an :data:`~oneeye.types.IMAGE_SUFFIXES` suffix are photos to
    try; every other file, subfolder, and anything loose in ``SRC`` itself is reported as
    skipped, hidden files (``.DS_Store``) included, so nothing vanishes without a word. ``people``
    lists every person folder, with or without photos. Raises :class:`ImageError`
    (``unreadable``) when ``src`` is not a readable directory.
    """
    root = Path(src)
    if not root.is_dir():
        raise ImageError(f"{root}: not a directory", reason="unreadable")
    photos: list[tuple[str, Path]] = []
    skipped: list[SkippedFile] = []
    people: list[str] = []
    for entry in sorted(root.iterdir()):
        if not entry.is_dir():
            skipped.append(SkippedFile(str(entry), "not_in_person_folder",
                                       "not inside a <person_id>/ folder"))
            continue
        people.append(entry.name)
        for item in sorted(entry.iterdir()):
            if not item.is_file():
                skipped.append(SkippedFile(str(item), "subfolder", "a folder inside a person "
                                           "folder is not read; put photos directly in it"))
            elif item.suffix.lower() in IMAGE_SUFFIXES:
                photos.append((entry.name, item))
            else:
                skipped.append(SkippedFile(str(item), "not_an_image_name",
                                           "not an image file name (expected one of "
                                           f"{', '.join(sorted(IMAGE_SUFFIXES))})"))
    return PhotoDir(photos, skipped, people)


#: Mean luma (0–255) under which a frame counts as dark. Measured (mean of every 4th pixel):
#: the Hamilton stage clip at its normal light 16–37 (a dim theatre, recognised as it is),
#: the case photo at 25 % of the light 26 and at 12 % 12 (both recognised as they are), at
#: 6 % 6 (no face found); the Hamilton clip at 12 % of its light 2–4 (encoded, never
#: recognised). 10 evens out only the last two kinds. See :func:`even_light`.
DARK_LUMA: Final = 10.0


def even_light(bgr: NDArray[np.uint8], *, dark_below: float = DARK_LUMA, rgb: bool = False
               ) -> tuple[NDArray[np.uint8], bool]:
    """``bgr`` (H×W×3 uint8, OpenCV order; RGB with ``rgb=True``) with its luma
    histogram-equalised when its mean luma is under ``dark_below`` (0 turns it off);
    returns ``(image, evened)`` in the order it came.

    Why: dlib's HOG finds no face below ~6 % of the light and the encoder places a dim face
    ~0.13 further from its enrolled photo (0.63 vs 0.50 on the 12 % clip); the same clip with
    its luma equalised per frame is recognised at 0.50. Equalising only the face crop was
    measured and does not do that (it stretches the crop's own noise). Frames at ordinary
    light are returned untouched (the same array), so nothing changes for them.
    """
    if dark_below <= 0 or bgr.ndim != 3 or bgr.size == 0:
        return bgr, False
    import cv2  # lazy: native OpenCV, loaded only where frames are

    # The mean of a 1/64 sample decides (every 8th pixel of every 8th row, taken by OpenCV:
    # a strided numpy mean of a 1080p frame cost 3 ms, as much as decoding it, on every
    # frame of an idle camera; this costs ~0.1 ms).
    h, w = bgr.shape[:2]
    sample = cv2.resize(bgr, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_NEAREST)
    if float(np.mean(cv2.mean(sample)[:3])) >= dark_below:
        return bgr, False
    to_ycrcb, back = ((cv2.COLOR_RGB2YCrCb, cv2.COLOR_YCrCb2RGB) if rgb
                      else (cv2.COLOR_BGR2YCrCb, cv2.COLOR_YCrCb2BGR))
    ycrcb = cv2.cvtColor(bgr, to_ycrcb)
    ycrcb[:, :, 0] = cv2.equalizeHist(ycrcb[:, :, 0])
    return np.asarray(cv2.cvtColor(ycrcb, back), dtype=np.uint8), True
