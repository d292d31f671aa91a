"""Enrolment: photos → a gallery, refusing photos unfit to recognise anyone by.

Every photo is checked (one face of at least ``min_face_px``, sharp enough) and
encoded with enrolment-grade settings; a bad photo is reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import EnrolmentRejected, GalleryError, ImageError, OneEyeError
from oneeye.gallery.index import Gallery, check_person_id, check_watchlist
from oneeye.gallery.rule import DecisionRule
from oneeye.types import IMAGE_SUFFIXES


@dataclass(frozen=True)
class EnrolmentPolicy:
    """What makes a photo fit to enrol. ``min_face_px`` is the box's shorter side;
    ``min_blur`` the Laplacian variance of the face resized to 96x96, its contrast
    stretched first when it is dim (:func:`oneeye.faces.quality`), so a dark but sharp photo
    is not refused as blurred; one still under ``min_blur`` in low light is ``too_dark``.

    Calibrated on lfw_dev (``bench/accuracy.py`` prints the figures): HOG boxes the
    subjects' faces at 43–90 px and cannot find faces under ~40 px at upsample 1,
    so 40 px rejects no real subject. Real faces score ≥ 23 for sharpness (1st
    percentile 61); the gallery faces blurred with a Gaussian of σ = 2 px score 13.5
    (median) and at σ = 3 px 7.5 — so 20 keeps every real photo and refuses most
    visibly blurred ones.
    """

    min_face_px: int = 40
    min_blur: float = 20.0
    #: 10 jitters (≈ 0.8 s per photo, enrolment only) raise the cross-validated TAR at
    #: FMR ≤ 1 % from 81 % to 87 % on lfw_dev (3 jitters: 81 %; 5: 83 % but CV FMR 1.1 %);
    #: the large landmark model adds nothing. Queries stay at 1 jitter, small landmarks.
    jitters: int = 10
    upsample: int = 1
    landmark_model: Literal["small", "large"] = "small"


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": [{"person_id": p, "source": s} for p, s in self.accepted],
            "rejected": [r.__dict__ for r in self.rejected],
        }


def encode_enrolment_photo(
    source: bytes | str | Path, policy: EnrolmentPolicy | None = None
) -> NDArray[np.float32]:
    """The one encoding of a photo fit for enrolment, or :class:`EnrolmentRejected`.

    Faces smaller than ``min_face_px`` are ignored when counting (a tiny face in
    the background does not make a portrait a group photo); if only tiny faces
    are found the reason is ``face_too_small``.
    """
    from oneeye import faces

    policy = policy or EnrolmentPolicy()
    try:
        image = faces.load_image(source)
    except ImageError as exc:
        raise EnrolmentRejected("unreadable", str(exc)) from exc
    boxes = faces.detect(image, upsample=policy.upsample)
    if not boxes:
        raise EnrolmentRejected("no_face", "no face found — use a photo where the face is "
                                           "clearly visible")
    quals = [faces.quality(image, b) for b in boxes]
    usable = [(b, q) for b, q in zip(boxes, quals, strict=True) if q.size_px >= policy.min_face_px]
    if not usable:
        biggest = max(q.size_px for q in quals)
        raise EnrolmentRejected("face_too_small", f"face too small ({biggest} px; need at least "
                                                  f"{policy.min_face_px} px) — use a closer photo")
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
    return faces.encode(image, [box], jitters=policy.jitters, model=policy.landmark_model)[0]


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
    """Build a gallery from (person_id, photo) pairs; bad photos are reported, never fatal."""
    check_watchlist(watchlist)
    report = EnrolmentReport()
    entries: list[tuple[str, NDArray[np.float32]]] = []
    for person_id, photo in photos:
        src = str(photo)
        try:
            check_person_id(person_id)
            entries.append((person_id, encode_enrolment_photo(photo, policy)))
            report.accepted.append((person_id, src))
        except EnrolmentRejected as exc:
            report.rejected.append(Rejection(src, person_id, exc.reason, str(exc)))
        except GalleryError as exc:
            report.rejected.append(Rejection(src, person_id, "invalid_person_id", str(exc)))
        if progress is not None:
            progress(person_id, src)
    gallery = Gallery.from_entries(watchlist, entries, rule=rule, version=version)
    return gallery, report
