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


# The device path, in a fresh process: enrol, then run one camera through run_edge. Every
# dlib.shape_predictor load is recorded, and what was imported is listed at the end.
_DEVICE_PATH = r"""
import json, sys
import dlib
loads = []
_real = dlib.shape_predictor
def _recording(path):
    loads.append(path)
    return _real(path)
dlib.shape_predictor = _recording
from oneeye import faces, gallery as gal
from oneeye.edge.device.runner import run_edge
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import EdgeSettings
examples = sys.argv[1]
g, _ = gal.enrol([("miranda", examples + "/lin-manuel-miranda.png")], watchlist="missing")
s = EdgeSettings.model_validate(
    {"cameras": {"door": {"source": examples + "/short_hamilton_clip.mp4"}}})
events = []
run_edge(s, GalleryHolder(gal.Matcher([g])), sinks=[events.append])
print(json.dumps({"events": [e.person_id for e in events], "shape_predictors": loads,
                  "models": faces.loaded_models(),
                  "face_recognition": "face_recognition" in sys.modules}))
"""


def test_the_device_path_never_loads_the_68_point_model(examples: Path) -> None:
    """~100 MB resident and a non-commercial licence, for landmarks the device never uses:
    enrolment and recognition load the 5-point model and the encoder only."""
    import json
    import subprocess
    import sys

    from tests.paths import REPO

    proc = subprocess.run([sys.executable, "-c", _DEVICE_PATH, str(examples)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["events"] == ["miranda"]                       # the path really ran
    assert [Path(p).name for p in got["shape_predictors"]] == [
        "shape_predictor_5_face_landmarks.dat"]
    assert got["models"] == ["encoder", "small"]
    assert got["face_recognition"] is False


def test_landmarks_and_distance_are_face_recognitions(examples: Path) -> None:
    """Loaded without face_recognition, the results are still its results (same models,
    same order of the 5 points, same distance)."""
    import face_recognition

    image = faces.load_image(examples / "obama.jpg")
    boxes = faces.detect(image)
    ours = faces.landmarks(image, boxes)
    theirs = face_recognition.face_landmarks(image, boxes, model="small")[0]
    assert list(ours[0]) == [*theirs["left_eye"], *theirs["right_eye"], *theirs["nose_tip"]]
    mine = faces.encode(image, boxes)[0]
    ref = face_recognition.face_encodings(image, boxes, model="small")[0]
    assert np.allclose(mine, ref, atol=1e-6)
    known = np.stack([ref, ref + 0.1])
    assert np.allclose(faces.face_distance(known, mine),
                       face_recognition.face_distance(known, mine), atol=1e-5)
    assert faces.face_distance(np.empty((0, 128)), mine).shape == (0,)
