"""People who move fast and cameras mounted on their side (issue 23 §4, §5): a face
crossing the view at walking speed is one track and is announced; a camera turned 90° is
turned back by its ``rotate`` setting; ``crop`` keeps a region of interest. The inputs are
the field cases ``fast-walker-tracking`` and ``rotated-camera``, generated here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from oneeye import gallery as gal
from oneeye.config import validate
from oneeye.edge.detect.metrics import Metrics
from oneeye.edge.detect.tracker import Tracker
from oneeye.edge.device.runner import run_edge
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import EdgeSettings
from oneeye.errors import ConfigError
from oneeye.events import MatchEvent


@pytest.fixture(scope="module")
def obama_gallery(examples: Path) -> gal.Gallery:
    g, report = gal.enrol([("obama", examples / "obama.jpg"), ("biden", examples / "biden.jpg")],
                          watchlist="customers")
    assert not report.rejected
    return g


def _walk(path: Path, photo: Path, step_px: int, fps: int = 25) -> Path:
    """``photo`` (face ~45-50 px) sliding across a grey 960x540 scene, ``step_px`` per frame
    (the case's make.py)."""
    img = cv2.imread(str(photo))
    s = 400 / max(img.shape[:2])
    img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)),
                     interpolation=cv2.INTER_AREA)
    h, w = 540, 960
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range((w - img.shape[1] - 20) // step_px):
        frame = np.full((h, w, 3), 90, np.uint8)
        x = 10 + i * step_px
        frame[60:60 + img.shape[0], x:x + img.shape[1]] = img
        writer.write(frame)
    writer.release()
    return path


def _run(cameras: dict[str, dict[str, object]], gallery: gal.Gallery
         ) -> tuple[list[MatchEvent], dict[str, Metrics]]:
    settings = EdgeSettings.model_validate({"cameras": cameras})
    events: list[MatchEvent] = []
    ran = run_edge(settings, GalleryHolder(gal.Matcher([gallery])), sinks=[events.append])
    return events, {k: c.metrics for k, c in ran.items()}


# ---------------------------------------------------------------- fast walkers


@pytest.mark.parametrize("speed_px_s", [150, 250])
def test_a_face_crossing_at_walking_speed_is_one_track_and_is_announced(
        tmp_path: Path, data_dir: Path, obama_gallery: gal.Gallery, speed_px_s: int) -> None:
    """250 px/s at 25 fps, detected at the default 5 passes a second (every 5th frame):
    50 px between passes, 1.1 face widths. Detected every 3rd frame (30 px) before
    prediction, it opened 22 tracks in 23 passes and announced nobody."""
    photo = data_dir / "ageitgey_face_recognition/tests/test_images/obama3.jpg"
    video = _walk(tmp_path / f"walk_{speed_px_s}.avi", photo, speed_px_s // 25)
    frames = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    events, metrics = _run({"door": {"source": str(video)}}, obama_gallery)
    assert metrics["door"].detections >= frames // 5   # every pass of the cadence ran
    assert metrics["door"].tracks_total == 1
    assert [(e.person_id, e.camera_id) for e in events] == [("obama", "door")]


def test_the_tracker_follows_a_box_moving_further_than_its_width_between_passes() -> None:
    tracker = Tracker()
    ids = []
    for i in range(8):   # 45 px face, 30 px per pass (0.12 s), then 60 px after a missed pass
        x = 10 + 30 * i + (30 if i >= 5 else 0)
        t = 0.12 * i + (0.12 if i >= 5 else 0)
        tracks, _ = tracker.update([(60, x + 45, 105, x)], t, i)
        ids.append(tracks[0].track_id)
    assert ids == [1] * 8
    assert tracker.tracks[1].velocity[0] == pytest.approx(250, rel=0.05)


def test_the_gate_does_not_link_a_face_that_appears_far_away_or_of_another_size() -> None:
    tracker = Tracker()
    tracker.update([(60, 105, 105, 60)], 0.0, 0)
    # 3.5 face widths away 0.12 s later: beyond 0.5 + 6 x 0.12 = 1.22 widths.
    far, new = tracker.update([(60, 265, 105, 220)], 0.12, 3)
    assert [t.track_id for t in far] == [2] and new == far
    # Close by but twice the size: another (nearer) person.
    big, _ = tracker.update([(60, 325, 150, 235)], 0.24, 6)
    assert big[0].track_id == 3


def test_two_people_walking_past_each_other_keep_their_tracks() -> None:
    tracker = Tracker()
    seen: list[tuple[int, int]] = []
    for i in range(10):   # one walks right, one left, 300 px apart vertically
        a, b = 10 + 30 * i, 600 - 30 * i
        tracks, _ = tracker.update([(60, a + 45, 105, a), (360, b + 45, 405, b)], 0.12 * i, i)
        seen.append((tracks[0].track_id, tracks[1].track_id))
    assert set(seen) == {(1, 2)}


# ---------------------------------------------------------------- camera geometry


def turned_clip(src: Path, out: Path, frames: int | None = None) -> Path:
    """``src`` turned 90° clockwise (a camera on its side), its first ``frames`` or all."""
    cap = cv2.VideoCapture(str(src))
    writer = None
    while frames is None or frames > 0:
        ok, frame = cap.read()
        if not ok:
            break
        turned = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 29.97,
                                     (turned.shape[1], turned.shape[0]))
        writer.write(turned)
        frames = None if frames is None else frames - 1
    cap.release()
    assert writer is not None
    writer.release()
    return out


@pytest.fixture(scope="module")
def sideways(examples: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 s of the Hamilton clip turned 90° clockwise: a camera on its side."""
    return turned_clip(examples / "short_hamilton_clip.mp4",
                       tmp_path_factory.mktemp("rotated") / "sideways.avi", frames=90)


@pytest.fixture(scope="module")
def miranda(examples: Path) -> gal.Gallery:
    g, report = gal.enrol([("miranda", examples / "lin-manuel-miranda.png")],
                          watchlist="missing")
    assert not report.rejected
    return g


#: 10 passes a second: in these 3 s Miranda's face is small and turning, and the default
#: 5 passes give too few looks to decide on (a cadence matter, not a geometry one).
BRISK = {"detection": {"fps": 10}}


def test_a_camera_on_its_side_sees_nobody_until_rotate_turns_it_back(
        sideways: Path, miranda: gal.Gallery) -> None:
    events, _ = _run({"hall": {"source": str(sideways), **BRISK}}, miranda)
    assert events == []
    events, _ = _run({"hall": {"source": str(sideways), "rotate": 90, **BRISK}}, miranda)
    assert [(e.person_id, e.watchlist) for e in events] == [("miranda", "missing")]
    whole = events[0].bbox
    # The same camera looking only at a region around the face reports the same box, in
    # pixels of the upright frame.
    top, left = whole[0], whole[3]
    crop = {"x": max(0, left - 150), "y": max(0, top - 150), "width": 400, "height": 400}
    events, _ = _run({"hall": {"source": str(sideways), "rotate": 90, "crop": crop, **BRISK}},
                     miranda)
    assert [e.person_id for e in events] == ["miranda"]
    assert all(abs(a - b) <= 12 for a, b in zip(events[0].bbox, whole, strict=True))


def test_a_top_level_rotate_is_every_cameras_default_and_a_cameras_own_wins() -> None:
    s = validate(EdgeSettings, {"rotate": 90, "cameras": {"hall": {"source": "0"},
                                                         "door": {"source": "1", "rotate": 0}}},
                 root="edge")
    assert (s.camera("hall").rotate, s.camera("door").rotate) == (90, 0)


def test_the_rotated_camera_case_command_announces_the_person(
        examples: Path, miranda: gal.Gallery, tmp_path: Path) -> None:
    """../shared/cases/rotated-camera: ``oneeye edge --source sideways --config rotate.yaml``
    where the file says only ``rotate: 90`` (the plain --source camera takes it), on the
    whole clip turned as the case's make.py turns it, at the default cadence."""
    sideways = turned_clip(examples / "short_hamilton_clip.mp4", tmp_path / "sideways.avi")
    gallery = tmp_path / "miranda.npz"
    gal.save(miranda, gallery)
    config = tmp_path / "rotate.yaml"
    config.write_text("rotate: 90\n")
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "oneeye.cli", "edge", "--source", str(sideways), "--gallery",
         str(gallery), "--config", str(config), "--publish", "none", "--events-out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["person_id"] for line in out.read_text().splitlines()] == ["miranda"]


def test_a_crop_beside_the_face_sees_nobody(sideways: Path, miranda: gal.Gallery) -> None:
    events, _ = _run({"hall": {"source": str(sideways), "rotate": 90,
                               "crop": {"x": 0, "y": 0, "width": 64, "height": 64}}}, miranda)
    assert events == []


@pytest.mark.parametrize("camera, path", [
    ({"source": "0", "rotate": 45}, "edge.cameras.door.rotate"),
    ({"source": "0", "rotate": "90"}, "edge.cameras.door.rotate"),
    ({"source": "0", "flip": True}, "edge.cameras.door.flip"),
    ({"source": "0", "crop": {"x": 0, "y": 0, "w": 100, "height": 100}},
     "edge.cameras.door.crop.w"),
    ({"source": "0", "crop": {"x": -1, "width": 100, "height": 100}}, "edge.cameras.door.crop.x"),
    ({"source": "0", "crop": {"width": 8, "height": 100}}, "edge.cameras.door.crop.width"),
])
def test_geometry_settings_are_strict_and_errors_name_their_key(camera: dict[str, object],
                                                                path: str) -> None:
    with pytest.raises(ConfigError, match=path.replace(".", r"\.")):
        validate(EdgeSettings, {"cameras": {"door": camera}}, root="edge")


def test_a_crop_outside_the_frame_is_refused_with_the_frame_size() -> None:
    from oneeye.edge.camera.geometry import Geometry
    from oneeye.edge.settings import CropSettings

    frame = np.zeros((480, 640, 3), np.uint8)
    with pytest.raises(ConfigError, match="upright 480x640 frame"):
        Geometry(90, CropSettings(x=600, y=0, width=100, height=100)).apply(frame)
    image, offset = Geometry(90, CropSettings(x=10, y=20, width=100, height=5000)).apply(frame)
    assert image.shape[:2] == (620, 100) and offset == (10, 20)   # clipped to the frame
