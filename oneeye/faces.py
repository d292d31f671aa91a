"""Face detection, landmarks, encoding and quality — numpy in, plain data out.

This is the only module that imports ``dlib``; every other part of OneEye works with
the plain types defined here, so the recogniser can be swapped or stubbed by generated
data without touching the rest.

Only the models that run are loaded, each the first time it is needed, from the files
of the ``face_recognition_models`` package (the README's "Model files" lists each with
its licence). ``import face_recognition`` would load all four at once: its 68-point
landmark model alone is ~100 MB resident, and the iBUG 300-W data it was trained on
excludes commercial use; the device and the Lambdas never use it. This module therefore
calls dlib the way ``face_recognition`` 1.3 does (same models, same box and landmark
order, same distance), without importing it:

- ``shape_predictor_5_face_landmarks.dat`` (5-point landmarks: alignment and yaw);
- ``dlib_face_recognition_resnet_model_v1.dat`` (the 128-d encoder);
- ``shape_predictor_68_face_landmarks.dat`` only for ``landmark_model="large"``;
- ``mmod_human_face_detector.dat`` only for the ``cnn`` detector.

Images are RGB ``uint8`` arrays of shape ``(height, width, 3)``. Boxes are
``(top, right, bottom, left)`` in pixels of the image passed in, the order
``face_recognition`` uses and the ``bbox`` of ``oneeye.match/1``.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

# The one decoder lives in oneeye.images; ``faces.load_image`` stays the name callers use.
from oneeye.images import Image
from oneeye.images import load_image as load_image
from oneeye.types import BBox

log = logging.getLogger(__name__)

Encoding = NDArray[np.float32]

DetectorModel = Literal["hog", "cnn"]
LandmarkModel = Literal["small", "large"]

_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _model(name: Literal["small", "large", "encoder", "cnn"]) -> Any:
    """The dlib model ``name``, loaded once per process from ``face_recognition_models``."""
    found = _models.get(name)
    if found is not None:
        return found
    with _models_lock:
        if name not in _models:
            import dlib
            import face_recognition_models as files

            if name == "small":
                model = dlib.shape_predictor(files.pose_predictor_five_point_model_location())
            elif name == "large":
                model = dlib.shape_predictor(files.pose_predictor_model_location())
            elif name == "encoder":
                model = dlib.face_recognition_model_v1(files.face_recognition_model_location())
            else:
                model = dlib.cnn_face_detection_model_v1(
                    files.cnn_face_detector_model_location())
            _models[name] = model
        return _models[name]


def loaded_models() -> list[str]:
    """Names of the models this process has loaded so far (see :func:`_model`)."""
    return sorted(_models)


def _rect(box: BBox) -> Any:
    import dlib

    top, right, bottom, left = box
    return dlib.rectangle(left, top, right, bottom)


def _shapes(image: Image, boxes: list[BBox], model: LandmarkModel) -> list[Any]:
    predictor = _model(model)
    return [predictor(image, _rect(b)) for b in boxes]


#: Why a face crop is not encoded: smaller than the size floor, too dark to tell (its
#: brightest tenth under :data:`LOW_LIGHT_P99`) or blurred.
QualityProblem = Literal["too_small", "too_dark", "too_blurred"]

#: The luma range (1st to 99th percentile, 0–255) a face crop is stretched to, at most,
#: before its sharpness is measured. Faces in ordinary light span 150–230 (the Hamilton
#: clip's 190–230, lfw's portraits more), so their score is unchanged; a face at 12 % of
#: the light spans ~20 and scored 4–6 where the same frames at full light score 150–400:
#: the variance of the Laplacian grows with the square of the contrast.
CONTRAST_REF = 128.0
#: The most the contrast is stretched (×16, a luma range of 8): flatter crops hold no face
#: detail to measure, only noise.
MAX_STRETCH = 16.0
#: Gaussian smoothing (σ, px at 96x96) per doubling of the contrast stretch, applied before
#: the Laplacian of a stretched crop: stretching amplifies sensor noise and the 8-bit
#: steps of a dim picture as much as the face, and without it a blurred face at 12 % of the
#: light scored 45–98 (sharp ones 90–370) on lfw_dev. With it (σ ≈ 0.7 at 12 %), sharp dim
#: faces score 19–72 and faces blurred with σ = 2 px 4.5–9: the edge's ``min_blur`` 10
#: keeps telling them apart. No smoothing at a stretch of 1, so ordinary light is unchanged.
DENOISE_PER_DOUBLING = 0.25
#: A crop whose 99th-percentile luma is under this (of 255) is in low light: a face at
#: 25 % of the light reaches ~43, at 12 % ~22; full light 170–240, flat IR frames ~140.
LOW_LIGHT_P99 = 64.0


@dataclass(frozen=True)
class FaceQuality:
    """How usable a face crop is.

    ``size_px`` is the shorter box side. ``blur`` is the variance of the Laplacian of the
    grey crop resized to 96x96, after its luma range (1st–99th percentile) has been
    stretched to at least :data:`CONTRAST_REF` levels (at most ×:data:`MAX_STRETCH`, with
    :data:`DENOISE_PER_DOUBLING` smoothing against the noise that brings), so darkness does
    not read as blur; low = blurred. Crops of ordinary contrast score as they always did.
    ``contrast`` is that luma range before stretching and ``brightness`` the crop's
    99th-percentile luma (0–255); ``low_light`` is ``brightness < LOW_LIGHT_P99``.
    """

    size_px: int
    blur: float
    contrast: float = 0.0
    brightness: float = 0.0

    @property
    def low_light(self) -> bool:
        return self.brightness < LOW_LIGHT_P99

    def problem(self, *, min_face_px: int, min_blur: float) -> QualityProblem | None:
        """Why this crop should not be encoded under these floors, or None if it may be.

        A crop under ``min_blur`` in low light is ``too_dark``, not ``too_blurred``: the
        remedy is light (or the camera's night mode), not a steadier camera."""
        if self.size_px < min_face_px:
            return "too_small"
        if self.blur < min_blur:
            return "too_dark" if self.low_light else "too_blurred"
        return None


@dataclass(frozen=True)
class Face:
    """One detected face: box, 5-point landmarks, quality and (optionally) its encoding."""

    bbox: BBox
    landmarks: tuple[tuple[int, int], ...]
    quality: FaceQuality
    encoding: Encoding | None = None


# --------------------------------------------------------------------------- decoding


def bgr_to_rgb(frame: NDArray[np.uint8]) -> Image:
    """OpenCV frames are BGR; dlib wants contiguous RGB."""
    return np.ascontiguousarray(frame[:, :, ::-1])


# --------------------------------------------------------------------------- detection


def detect(
    image: Image,
    *,
    model: DetectorModel = "hog",
    upsample: int = 1,
    scale: float = 1.0,
) -> list[BBox]:
    """Find faces; boxes are returned in the coordinates of ``image``.

    ``scale`` < 1 detects on a downscaled copy (faster, but HOG misses faces under
    ~80 px at upsample 0 and ~40 px at upsample 1 *after* scaling).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("detect() wants an RGB uint8 image of shape (h, w, 3)")
    if not 0.05 <= scale <= 4.0:
        raise ValueError(f"scale must be in [0.05, 4], got {scale}")
    work = image
    if scale != 1.0:
        import cv2  # lazy: native OpenCV, loaded only where frames are

        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        work = np.ascontiguousarray(cv2.resize(image, size, interpolation=interp))
    if model == "hog":
        rects = list(_hog_detector()(work, upsample))
    else:
        rects = [d.rect for d in _model("cnn")(work, upsample)]
    boxes = [(r.top(), r.right(), r.bottom(), r.left()) for r in rects]
    h, w = image.shape[:2]
    out: list[BBox] = []
    for top, right, bottom, left in boxes:
        if scale != 1.0:
            top, right, bottom, left = (round(v / scale) for v in (top, right, bottom, left))
        out.append(_clip((int(top), int(right), int(bottom), int(left)), h, w))
    return out


_thread = threading.local()


def _hog_detector() -> Any:
    """This thread's dlib HOG detector. dlib releases the GIL while it detects, and one
    detector object is not safe to use from two threads at once: two cameras' threads
    sharing face_recognition's module-level detector crashed the process (SIGSEGV)."""
    detector = getattr(_thread, "hog", None)
    if detector is None:
        import dlib  # lazy: native dlib, loaded only to detect or encode

        detector = _thread.hog = dlib.get_frontal_face_detector()
    return detector


def _clip(box: BBox, height: int, width: int) -> BBox:
    top, right, bottom, left = box
    return (max(0, top), min(width, right), min(height, bottom), max(0, left))


# --------------------------------------------------------------------------- landmarks / encoding


def landmarks(image: Image, boxes: list[BBox]) -> list[tuple[tuple[int, int], ...]]:
    """5-point landmarks (eye corners and nose) per box, as ``(x, y)`` pixels."""
    if not boxes:
        return []
    out = []
    for shape in _shapes(image, boxes, "small"):
        # dlib's 5-point order is right eye (2 points), left eye (2), nose: reordered as
        # face_recognition's "small" landmarks (left eye, right eye, nose tip).
        pts = [shape.part(i) for i in (2, 3, 0, 1, 4)]
        out.append(tuple((int(p.x), int(p.y)) for p in pts))
    return out


def encode(
    image: Image,
    boxes: list[BBox],
    *,
    jitters: int = 1,
    model: LandmarkModel = "small",
) -> list[Encoding]:
    """128-d dlib descriptors, one per box, as float32.

    ``jitters`` > 1 averages randomly perturbed crops (slower, slightly more stable);
    worth it at enrolment, not per video frame. The perturbations are the same on every
    call, so one photo always gives one encoding.
    """
    if not boxes:
        return []
    if jitters < 1:
        raise ValueError("jitters must be >= 1")
    marks = _shapes(image, boxes, model)
    if jitters == 1:
        encoder = _model("encoder")
        return [np.asarray(encoder.compute_face_descriptor(image, m, 1), dtype=np.float32)
                for m in marks]
    # dlib draws the jitters from a generator held by the model object, so a model that has
    # jittered before gives the same photo another encoding (0.04 apart, measured): a
    # gallery would depend on what its process enrolled first. A fresh model per call
    # (~0.05 s, against ~0.7 s for 10 jitters) starts the generator at dlib's fixed seed,
    # so a photo always enrols to the same encoding.
    import dlib  # lazy: native dlib, loaded only to detect or encode
    import face_recognition_models  # lazy: dlib and ~100 MB of models

    encoder = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location())
    return [np.asarray(encoder.compute_face_descriptor(image, m, jitters), dtype=np.float32)
            for m in marks]


def quality(image: Image, box: BBox) -> FaceQuality:
    """Size, contrast-normalised sharpness and light of a face crop (see :class:`FaceQuality`)."""
    import cv2  # lazy: native OpenCV, loaded only where frames are

    top, right, bottom, left = _clip(box, image.shape[0], image.shape[1])
    size = max(0, min(bottom - top, right - left))
    if size < 2:
        return FaceQuality(size_px=size, blur=0.0)
    crop = image[top:bottom, left:right]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    # Normalise the crop size so the blur score does not grow with face size.
    grey = cv2.resize(grey, (96, 96), interpolation=cv2.INTER_AREA)
    lo, hi = (float(v) for v in np.percentile(grey, (1, 99)))
    contrast = hi - lo
    # Normalise the contrast too (a dim face is as sharp as a bright one): stretch a flat
    # crop's luma range to CONTRAST_REF; crops already that contrasted are left as they are.
    stretch = min(MAX_STRETCH, max(1.0, CONTRAST_REF / max(contrast, 1e-6)))
    work: NDArray[Any] = grey.astype(np.float32)
    if stretch > 1.0:
        sigma = DENOISE_PER_DOUBLING * math.log2(stretch)
        work = cv2.GaussianBlur(work, (0, 0), sigma)
    lap = cv2.Laplacian(work, cv2.CV_32F)
    blur = float(lap.var()) * stretch * stretch    # the Laplacian is linear in the luma
    return FaceQuality(size_px=int(size), blur=round(blur, 2), contrast=round(contrast, 1),
                       brightness=round(hi, 1))


def analyze(
    image: Image,
    *,
    model: DetectorModel = "hog",
    upsample: int = 1,
    scale: float = 1.0,
    with_encodings: bool = True,
    jitters: int = 1,
    landmark_model: LandmarkModel = "small",
) -> list[Face]:
    """Detect every face and return boxes, landmarks, quality and encodings."""
    boxes = detect(image, model=model, upsample=upsample, scale=scale)
    marks = landmarks(image, boxes)
    encs: list[Encoding | None] = (
        list(encode(image, boxes, jitters=jitters, model=landmark_model))
        if with_encodings
        else [None] * len(boxes)
    )
    return [
        Face(bbox=b, landmarks=m, quality=quality(image, b), encoding=e)
        for b, m, e in zip(boxes, marks, encs, strict=True)
    ]


def face_distance(known: NDArray[Any], query: NDArray[Any]) -> NDArray[np.float64]:
    """face_recognition's reference distance (float64 Euclidean norm per row of ``known``;
    an empty ``known`` gives an empty array), for comparisons in benches."""
    if len(known) == 0:
        return np.empty(0, dtype=np.float64)
    diff = np.asarray(known, dtype=np.float64) - np.asarray(query, dtype=np.float64)
    return np.asarray(np.linalg.norm(diff, axis=1), dtype=np.float64)


def yaw(landmarks: tuple[tuple[int, int], ...]) -> float:
    """How far a face is turned, from its 5 landmarks (:func:`landmarks` order: two points
    per eye, then the nose tip): the nose tip's horizontal offset from the eyes' midpoint
    divided by the distance between the eye centres. 0 is frontal; ~0.5 is a half profile,
    where dlib encodings stop resembling the enrolment photo. Returns ``inf`` without
    all 5 points."""
    if len(landmarks) < 5:
        return float("inf")
    pts = np.asarray(landmarks[:5], dtype=np.float64)
    eye_a, eye_b, nose = pts[0:2].mean(axis=0), pts[2:4].mean(axis=0), pts[4]
    span = float(np.hypot(*(eye_b - eye_a)))
    if span < 1.0:
        return float("inf")
    return abs(float(nose[0] - (eye_a[0] + eye_b[0]) / 2)) / span
