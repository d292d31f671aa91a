"""faces.py: decoding is safe and detection/encoding agree with face_recognition."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneeye import faces


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG")
    return buf.getvalue()


def test_loads_rgb_jpeg(examples: Path) -> None:
    img = faces.load_image(examples / "obama.jpg")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_32bit_png_with_alpha_becomes_rgb(data_dir: Path) -> None:
    img = faces.load_image(data_dir / "ageitgey_face_recognition/tests/test_images/32bit.png")
    assert img.shape[2] == 3


# Decoding (modes, formats, orientation, limits, bad bytes) is specified in test_images.py.


def test_detects_two_people(examples: Path) -> None:
    img = faces.load_image(examples / "two_people.jpg")
    boxes = faces.detect(img)
    assert len(boxes) == 2
    for top, right, bottom, left in boxes:
        assert 0 <= top < bottom <= img.shape[0] and 0 <= left < right <= img.shape[1]


def test_detection_scale_maps_boxes_back_to_source_pixels(examples: Path) -> None:
    img = faces.load_image(examples / "obama.jpg")
    (full,) = faces.detect(img, upsample=0)
    (half,) = faces.detect(img, upsample=0, scale=0.5)
    assert max(abs(a - b) for a, b in zip(full, half, strict=True)) < 30


def test_no_face_in_blank_image() -> None:
    assert faces.detect(np.full((240, 320, 3), 127, np.uint8)) == []


def test_encoding_matches_face_recognition_and_is_float32(examples: Path) -> None:
    import face_recognition

    img = faces.load_image(examples / "obama.jpg")
    boxes = faces.detect(img)
    (ours,) = faces.encode(img, boxes)
    (ref,) = face_recognition.face_encodings(img, boxes)
    assert ours.dtype == np.float32 and ours.shape == (128,)
    assert np.allclose(ours, ref, atol=1e-5)


def test_a_jittered_encoding_does_not_depend_on_what_was_encoded_before(
        examples: Path) -> None:
    """Enrolment (10 jitters) of one photo gives one encoding, whatever the process did
    before: dlib's jitter generator lives in its model object, so a shared model gave the
    same photo encodings ~0.04 apart and benches that enrol in a process pool drifted."""
    obama = faces.load_image(examples / "obama_small.jpg")
    biden = faces.load_image(examples / "biden.jpg")
    (box,) = faces.detect(obama)
    first = faces.encode(obama, [box], jitters=10)[0]
    faces.encode(biden, faces.detect(biden), jitters=10)   # advances a shared generator
    again = faces.encode(obama, [box], jitters=10)[0]
    assert np.array_equal(first, again)
    single = faces.encode(obama, [box])[0]
    assert 0 < float(np.linalg.norm(first - single)) < 0.3   # jittered; the same face (< 0.6)


def test_same_person_close_other_person_far(examples: Path) -> None:
    def enc(name: str) -> np.ndarray:
        img = faces.load_image(examples / name)
        return faces.encode(img, faces.detect(img))[0]

    obama, obama2, biden = enc("obama.jpg"), enc("obama2.jpg"), enc("biden.jpg")
    assert np.linalg.norm(obama - obama2) < 0.5 < np.linalg.norm(obama - biden)


def test_quality_reports_size_and_blur(examples: Path) -> None:
    import cv2

    img = faces.load_image(examples / "obama.jpg")
    (box,) = faces.detect(img)
    sharp = faces.quality(img, box)
    blurred = faces.quality(cv2.GaussianBlur(img, (31, 31), 12), box)
    assert sharp.size_px == min(box[2] - box[0], box[1] - box[3])
    assert blurred.blur < sharp.blur / 5


def test_analyze_returns_landmarks_and_encodings(examples: Path) -> None:
    (face,) = faces.analyze(faces.load_image(examples / "obama_small.jpg"))
    assert len(face.landmarks) == 5 and face.encoding is not None


def test_detect_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        faces.detect(np.zeros((10, 10), np.uint8))
