"""Enrolment: photos → a gallery, refusing photos unfit to recognise anyone by.

Every photo is checked (one face of at least ``min_face_px``, sharp enough) and
encoded with enrolment-grade settings; a bad photo is reported, never fatal.

The small-face rule (:func:`policy_for`): on the ``missing`` watchlist a face of
``small_face_px`` (20) to ``min_face_px`` (40) px — often a missing person's only photo —
is enrolled from a 2× upscaled copy of the photo and carries the warning
``low_resolution`` (shown on the upload's status and kept on the case). Only faces under
20 px, where a 2× copy is still under the detector's and the encoder's 40 px, are refused
as too small. ``customers`` keeps refusing faces under 40 px: a bank can always take
another photo of a customer, and a blurry gallery entry costs every visit's accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye import faces
from oneeye.errors import EnrolmentRejected, GalleryError, ImageError, OneEyeError
from oneeye.gallery.index import Gallery, check_person_id, check_watchlist
from oneeye.gallery.rule import DecisionRule
from oneeye.gallery.templates import TemplateSource
from oneeye.types import IMAGE_SUFFIXES, BBox

if TYPE_CHECKING:
    from oneeye.faces import FaceQuality


@dataclass(frozen=True)
class EnrolmentPolicy:
    """What makes a photo fit to enrol. ``min_face_px`` is the box's shorter side;
    ``min_blur`` the Laplacian variance of the face resized to 96x96, its contrast
    stretched first when it is dim (:func:`oneeye.faces.quality`), so a dark but sharp photo
    is not refused as blurred; one still under ``min_blur`` in low light is ``too_dark``.

    Calibrated on lfw_dev (``bench/accuracy.py`` prints the figures): HOG boxes the
    subjects' faces at 43–90 px and cannot find faces under ~40 px at upsample 1,
    so 40 px rejects no real subject. Real faces score ≥ 23 for sharpness (1st
    percentile 61); the gallery faces blurred with a Gaussian of σ = 2 px score 14.1
    (median) and at σ = 3 px 8.5 (13.5 and 7.5 before contrast normalisation: blurring
    flattens contrast a little) — so 20 keeps every real photo and refuses most visibly
    blurred ones. Normalising left lfw_dev's accuracy as it was (TAR 87.1 %, FMR 0.5 %).
    """

    min_face_px: int = 40
    min_blur: float = 20.0
    #: 10 jitters (≈ 0.8 s per photo, enrolment only) raise the cross-validated TAR at
    #: FMR ≤ 1 % from 81 % to 87 % on lfw_dev (3 jitters: 81 %; 5: 83 % but CV FMR 1.1 %);
    #: the large landmark model adds nothing. Queries stay at 1 jitter, small landmarks.
    jitters: int = 10
    upsample: int = 1
    landmark_model: Literal["small", "large"] = "small"
    #: Faces from this size (px) up to ``min_face_px`` are enrolled from a 2× upscaled
    #: copy with the ``low_resolution`` warning; None refuses them. A missing person's
    #: 38 px face upscaled 2× matched their other photos at ~0.39 with 0 false matches
    #: among 454 other lfw faces (issue 24 §9); 20 px is where 2× still reaches 40 px.
    small_face_px: int | None = None


#: The warning on a photo enrolled from an upscaled copy.
LOW_RESOLUTION = "low_resolution"
LOW_RESOLUTION_MESSAGE = ("low-resolution photo: the face is {px} px (under {need} px), "
                          "enrolled from a 2× enlarged copy — matches may be weaker; send a "
                          "sharper or closer photo if there is one")


def policy_for(watchlist: str, base: EnrolmentPolicy | None = None) -> EnrolmentPolicy:
    """The enrolment policy of ``watchlist``: ``base`` (the default policy if None), and for
    ``missing`` small faces enrolled by upsampling (see the module docstring)."""
    base = base or EnrolmentPolicy()
    if watchlist == "missing" and base.small_face_px is None:
        return replace(base, small_face_px=(base.min_face_px + 1) // 2)
    return base


@dataclass(frozen=True)
class EnrolledPhoto:
    """One photo's enrolment encoding (128 float32) and how it was made: ``face_px`` is
    the face's size in the photo; ``warning`` is :data:`LOW_RESOLUTION` when it was
    encoded from an upscaled copy (``message`` says so in words), else None."""

    encoding: NDArray[np.float32]
    face_px: int
    warning: str | None = None
    message: str = ""


@dataclass(frozen=True)
class Rejection:
    source: str
    person_id: str | None
    reason: str
    message: str


@dataclass
class EnrolmentReport:
    accepted: list[tuple[str, str]] = field(default_factory=list)   # (person_id, source)
    rejected: list[Rejection] = field(default_factory=list)
    #: accepted photos with a warning (``reason`` low_resolution), also in ``accepted``
    warnings: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": [{"person_id": p, "source": s} for p, s in self.accepted],
            "rejected": [r.__dict__ for r in self.rejected],
            "warnings": [w.__dict__ for w in self.warnings],
        }


def encode_enrolment_photo(
    source: bytes | str | Path, policy: EnrolmentPolicy | None = None
) -> NDArray[np.float32]:
    """The one encoding of a photo fit for enrolment, or :class:`EnrolmentRejected`
    (:func:`enrol_photo` without its warning)."""
    return enrol_photo(source, policy).encoding


def enrol_photo(source: bytes | str | Path,
                policy: EnrolmentPolicy | None = None) -> EnrolledPhoto:
    """Check and encode one photo for enrolment, or raise :class:`EnrolmentRejected`.

    Faces smaller than ``min_face_px`` are ignored when counting (a tiny face in
    the background does not make a portrait a group photo); if only tiny faces
    are found the reason is ``face_too_small`` — unless the policy's ``small_face_px``
    allows them: then the photo is enlarged 2× (cubic), looked at again, and a face of
    ``min_face_px`` there is encoded with the ``low_resolution`` warning.
    """

    policy = policy or EnrolmentPolicy()
    try:
        image = faces.load_image(source)
    except ImageError as exc:
        raise EnrolmentRejected("unreadable", str(exc)) from exc
    boxes = faces.detect(image, upsample=policy.upsample)
    quals = [faces.quality(image, b) for b in boxes]
    biggest = max((q.size_px for q in quals), default=0)
    small_ok = policy.small_face_px is not None
    if small_ok and not any(q.size_px >= policy.min_face_px for q in quals):
        # HOG at upsample 1 misses many faces under ~40 px: look at the enlarged copy even
        # when nothing was found, and judge size there against min_face_px.
        import cv2

        big: NDArray[np.uint8] = np.ascontiguousarray(
            cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
        big_boxes = faces.detect(big, upsample=policy.upsample)
        big_quals = [faces.quality(big, b) for b in big_boxes]
        if any(q.size_px >= policy.min_face_px for q in big_quals):
            box, qual = _one_usable(big_boxes, big_quals, policy)
            encoding = faces.encode(big, [box], jitters=policy.jitters,
                                    model=policy.landmark_model)[0]
            px, need = qual.size_px // 2, policy.min_face_px
            return EnrolledPhoto(encoding, px, LOW_RESOLUTION,
                                 LOW_RESOLUTION_MESSAGE.format(px=px, need=need))
        biggest = max(biggest, max((q.size_px for q in big_quals), default=0) // 2)
    if not boxes and not biggest:
        raise EnrolmentRejected("no_face", "no face found — use a photo where the face is "
                                           "clearly visible")
    if not any(q.size_px >= policy.min_face_px for q in quals):
        floor = policy.small_face_px if small_ok else policy.min_face_px
        raise EnrolmentRejected("face_too_small", f"face too small ({biggest} px; need at least "
                                                  f"{floor} px) — use a closer photo")
    box, qual = _one_usable(boxes, quals, policy)
    encoding = faces.encode(image, [box], jitters=policy.jitters, model=policy.landmark_model)[0]
    return EnrolledPhoto(encoding, qual.size_px)


def _one_usable(boxes: list[BBox], quals: list[FaceQuality], policy: EnrolmentPolicy
                ) -> tuple[BBox, FaceQuality]:
    """The one face of at least ``min_face_px``, sharp and light enough, or the refusal."""
    usable = [(b, q) for b, q in zip(boxes, quals, strict=True) if q.size_px >= policy.min_face_px]
    if len(usable) > 1:
        raise EnrolmentRejected("several_faces", f"{len(usable)} faces found — crop the photo "
                                                 "to one person")
    box, qual = usable[0]
    problem = qual.problem(min_face_px=policy.min_face_px, min_blur=policy.min_blur)
    if problem == "too_dark":
        raise EnrolmentRejected("too_dark", f"face too dark to see its detail (brightest "
                                            f"{qual.brightness:.0f}/255, sharpness "
                                            f"{qual.blur:.0f} < {policy.min_blur:.0f}) — use "
                                            "a brighter photo")
    if problem == "too_blurred":
        raise EnrolmentRejected("too_blurred", f"face too blurred (sharpness {qual.blur:.0f} < "
                                               f"{policy.min_blur:.0f}) — use a sharper photo")
    return box, qual


def iter_photo_dir(src: str | Path) -> Iterator[tuple[str, Path]]:
    """``SRC/<person_id>/*.jpg|png`` → (person_id, path), sorted for reproducible builds."""
    root = Path(src)
    if not root.is_dir():
        raise OneEyeError(f"{root}: not a directory")
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(person_dir.iterdir()):
            if photo.is_file() and photo.suffix.lower() in IMAGE_SUFFIXES:
                yield person_dir.name, photo


def enrol(
    photos: Iterable[tuple[str, str | Path]],
    *,
    watchlist: str,
    policy: EnrolmentPolicy | None = None,
    rule: DecisionRule | None = None,
    version: int = 1,
    progress: Any = None,
) -> tuple[Gallery, EnrolmentReport]:
    """Build a gallery from (person_id, photo) pairs; bad photos are reported, never fatal.

    ``policy`` defaults to :func:`policy_for` the watchlist (small faces on ``missing``
    enrol with a warning, listed in the report's ``warnings``)."""
    check_watchlist(watchlist)
    policy = policy_for(watchlist, policy)
    report = EnrolmentReport()
    entries: list[tuple[str, NDArray[np.float32]]] = []
    sources: list[TemplateSource] = []
    for person_id, photo in photos:
        src = str(photo)
        try:
            check_person_id(person_id)
            done = enrol_photo(photo, policy)
            entries.append((person_id, done.encoding))
            sources.append(TemplateSource("photo", src))
            report.accepted.append((person_id, src))
            if done.warning is not None:
                report.warnings.append(Rejection(src, person_id, done.warning, done.message))
        except EnrolmentRejected as exc:
            report.rejected.append(Rejection(src, person_id, exc.reason, str(exc)))
        except GalleryError as exc:
            report.rejected.append(Rejection(src, person_id, "invalid_person_id", str(exc)))
        if progress is not None:
            progress(person_id, src)
    gallery = Gallery.from_entries(watchlist, entries, rule=rule, version=version,
                                   sources=sources)
    return gallery, report
