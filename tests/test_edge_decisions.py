"""How a face becomes one event: small faces in big frames, decisions on the fused track,
and an event that cannot be built leaves nothing marked (issue 11 §2–§3, issue 14 §5)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from oneeye import faces, synth
from oneeye import gallery as gal
from oneeye.edge.camera.sources import Frame
from oneeye.edge.detect.pipeline import Pipeline
from oneeye.edge.device.runner import load_holder, run_edge
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import EdgeSettings
from oneeye.events import MatchEvent
from tests.mqtt_support import Subscriber, make_broker, stop_broker

ALICE, BOB = "Ana_Guevara", "Bill_Gates"
FPS = 15.0
#: The frames are fed by hand; the camera only names them.
ONE_CAMERA = {"cam-1": {"source": "frames fed by the test"}}


def _photos(lfw: Path, person: str, split: str = "probes") -> list[Path]:
    return sorted((lfw / split / person).glob("*.jpg"))


@pytest.fixture(scope="module")
def enrolled(lfw: Path) -> gal.Gallery:
    g, report = gal.enrol([(p, _photos(lfw, p, "gallery")[0]) for p in (ALICE, BOB)],
                          watchlist="customers")
    assert not report.rejected
    return g


def _frames(images: Iterator[NDArray[np.uint8]] | list[NDArray[np.uint8]]) -> Iterator[Frame]:
    for i, image in enumerate(images):
        yield Frame(i, image, time.time(), i / FPS)


def _run(settings: EdgeSettings, matcher: gal.Matcher, images: list[NDArray[np.uint8]]
         ) -> tuple[list[MatchEvent], Pipeline]:
    events: list[MatchEvent] = []
    pipe = Pipeline(settings, settings.camera("cam-1"), GalleryHolder(matcher),
                    sinks=[events.append])
    for frame in _frames(images):
        pipe.process(frame)
    pipe.drain()
    return events, pipe


def test_a_36px_face_in_a_1080p_frame_is_detected_and_then_matched(
        lfw: Path, enrolled: gal.Gallery) -> None:
    head, width = synth.head(_photos(lfw, ALICE)[0], 36)
    bg = synth.background(1920, 1080)
    rng = np.random.default_rng(0)
    # Far from the camera, walking slowly across the frame.
    images = [synth.scene(bg, [(head, 1400 + 3 * i, 700, width)], rng=rng) for i in range(10)]
    settings = EdgeSettings(cameras=ONE_CAMERA,  # type: ignore[arg-type]
                            detection={"fps": 60})  # type: ignore[arg-type]

    seen = Pipeline(settings, settings.camera("cam-1"), GalleryHolder())
    boxes = [b for i, img in enumerate(images[:4]) for b in seen.detect(img, i / FPS)]
    assert boxes, "the 36 px face is not detected"
    assert all(30 <= b[1] - b[3] <= 48 and 1380 <= b[3] <= 1460 for b in boxes)

    events, _ = _run(settings, gal.Matcher([enrolled]), images)
    assert [(e.person_id, e.bbox[1] - e.bbox[3] < 50) for e in events] == [(ALICE, True)]


def test_detection_regions_make_an_empty_scene_cheap_and_still_faces_found(
        lfw: Path) -> None:
    """Nothing moves: after the first sweep, no pixel is searched until the next one —
    yet a face that stands still from the first frame is found by that sweep."""
    head, width = synth.head(_photos(lfw, BOB)[0], 80)
    bg = synth.background(1280, 720)
    rng = np.random.default_rng(1)
    still = synth.scene(bg, [(head, 300, 500, width)], rng=rng, noise=0)
    settings = EdgeSettings(cameras=ONE_CAMERA,  # type: ignore[arg-type]
                            detection={"sweep_s": 60, "sweep_bands": 3})  # type: ignore[arg-type]
    pipe = Pipeline(settings, settings.camera("cam-1"), GalleryHolder())
    found = [pipe.detect(still, t / FPS) for t in range(3)]
    assert any(found), "a face standing still is never found by the sweep"
    empty = Pipeline(settings, settings.camera("cam-1"), GalleryHolder())
    passes = [empty.detect(bg, t / FPS) for t in range(8)]
    assert passes == [[]] * 8
    assert empty.last_regions() == []   # the sweep is over and nothing moved


def test_a_track_is_announced_on_its_fused_looks_and_a_stranger_is_not(
        lfw: Path, enrolled: gal.Gallery) -> None:
    """Every single look of the visitor is just over the threshold; their mean is under it."""
    rule = gal.DEFAULT_RULES["customers"]
    photo_a, photo_b = _photos(lfw, ALICE)[:2]
    (head_a, w), (head_b, _) = synth.head(photo_a, 90), synth.head(photo_b, 90)
    stranger, ws = synth.head(sorted((lfw / "impostors").glob("*.jpg"))[0], 90)
    bg = synth.background(640, 480)
    rng = np.random.default_rng(2)
    # One person looking two ways (alternate photos), then a stranger, with a gap between.
    visit = [synth.scene(bg, [((head_a, head_b)[i % 2], 300 + i, 220, w)], rng=rng, noise=1)
             for i in range(12)]
    images = [*visit, *[bg] * 20,
              *[synth.scene(bg, [(stranger, 300 + i, 220, ws)], rng=rng, noise=1)
                for i in range(12)]]

    def encode(img: NDArray[np.uint8]) -> NDArray[np.float32]:
        rgb = faces.bgr_to_rgb(img)
        (enc,) = faces.encode(rgb, faces.detect(rgb))
        return enc

    singles = np.array([encode(img) for img in visit])
    e_a, e_b = singles[0::2].mean(axis=0), singles[1::2].mean(axis=0)
    # An enrolled encoding at 0.49 from the track's fused encoding, in a direction
    # orthogonal to how its looks differ: each look then sits at ≈ √(0.49² + |a−b|²/4).
    centre, diff = (e_a + e_b) / 2, (e_a - e_b) / np.linalg.norm(e_a - e_b)
    v = np.random.default_rng(3).normal(size=128)
    v -= (v @ diff) * diff
    enrolled_enc = centre + 0.49 * v / np.linalg.norm(v)
    g = enrolled.without_person(ALICE).with_person(ALICE, [enrolled_enc])
    single = g.distances(singles)[:, list(g.person_ids).index(ALICE)]
    assert single.min() > rule.max_distance, "precondition: every single look is rejected"

    events, pipe = _run(EdgeSettings(cameras=ONE_CAMERA,  # type: ignore[arg-type]
                            cooldown_s=0, detection={"fps": 60}),  # type: ignore[arg-type]
                        gal.Matcher([g]), images)
    assert [e.person_id for e in events] == [ALICE]
    assert events[0].distance <= rule.max_distance < single.min()
    assert events[0].source_frame is not None and events[0].source_frame < len(visit)
    assert pipe.metrics.tracks_total == 2             # the stranger was seen, not announced


def test_someone_stepping_into_a_track_is_not_fused_with_who_was_there(
        lfw: Path, enrolled: gal.Gallery) -> None:
    """An enrolled visitor seen for one look leaves; within the tracker's ``max_missed_s`` a
    stranger steps into the same spot, so the tracker continues the same track. The
    stranger's looks must not be averaged with the visitor's (their mean is about halfway:
    close enough to the visitor to be announced on the stranger's face)."""
    head_a, w = synth.head(_photos(lfw, ALICE)[0], 90)
    stranger, ws = synth.head(sorted((lfw / "impostors").glob("*.jpg"))[0], 90)
    bg = synth.background(640, 480)
    rng = np.random.default_rng(6)
    images = [synth.scene(bg, [(head_a, 300, 220, w)], rng=rng, noise=1), bg, bg,
              *[synth.scene(bg, [(stranger, 300 + i, 220, ws)], rng=rng, noise=1)
                for i in range(12)]]
    # Whole-frame detection: the visitor's single frame is searched (no motion warm-up).
    settings = EdgeSettings(cameras=ONE_CAMERA,  # type: ignore[arg-type]
                            cooldown_s=0,
                            detection={"fps": 60, "regions": False})  # type: ignore[arg-type]
    events, pipe = _run(settings, gal.Matcher([enrolled]), images)
    assert pipe.metrics.tracks_total == 1, "precondition: the tracker kept one track"
    assert pipe.metrics.identity_switches == 1
    assert events == []
    # Without the guard the same frames are announced as the visitor, on the stranger.
    unguarded = settings.model_copy(update={"recognition": settings.recognition.model_copy(
        update={"switch_distance": 2.0})})
    fused_events, _ = _run(unguarded, gal.Matcher([enrolled]), images)
    assert [e.person_id for e in fused_events] == [ALICE]


def test_an_event_that_cannot_be_built_marks_nothing_and_is_retried(
        lfw: Path, enrolled: gal.Gallery) -> None:
    """A gallery entry whose id the match contract refuses: no event, no cooldown, no
    "announced" mark — every later look of the track tries again."""
    (enc,) = [e for p, e in zip(enrolled.person_ids, enrolled.encodings, strict=True)
              if p == ALICE]
    bad = gal.Gallery(watchlist="customers", version=1, rule=enrolled.rule,
                      person_ids=np.array(["Ana Guevara"]), encodings=enc[None, :])
    head, w = synth.head(_photos(lfw, ALICE)[0], 90)
    bg = synth.background(640, 480)
    rng = np.random.default_rng(4)
    images = [synth.scene(bg, [(head, 300 + i, 220, w)], rng=rng) for i in range(16)]
    settings = EdgeSettings(cameras=ONE_CAMERA,  # type: ignore[arg-type]
                            detection={"fps": 60},  # type: ignore[arg-type]
                            recognition={"reverify_s": 0.1})  # type: ignore[arg-type]
    events, pipe = _run(settings, gal.Matcher([bad]), images)
    assert events == []
    assert pipe.metrics.events_failed >= 2      # retried: the first failure marked nothing


# ------------------------------------------------------------------ both watchlists (issue 20 §5)


def _walk_video(photo: Path, out: Path) -> Path:
    """../shared/cases/fast-walker-tracking/make.py's ``walk_25fps_150pxs``: ``photo`` scaled
    to 400 px crossing a grey 960×540 scene at 6 px per frame, 25 fps (one slow track)."""
    img = cv2.imread(str(photo))
    s = 400 / max(img.shape[:2])
    img = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)),
                     interpolation=cv2.INTER_AREA)
    h, w = 540, 960
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), 25, (w, h))
    for i in range(int((w - img.shape[1] - 20) / 6)):
        f = np.full((h, w, 3), 90, np.uint8)
        x = 10 + i * 6
        f[60:60 + img.shape[0], x:x + img.shape[1]] = img
        writer.write(f)
    writer.release()
    return out


def test_a_missing_person_who_is_also_a_customer_is_published_as_the_missing_match(
        data_dir: Path, tmp_path: Path) -> None:
    """../shared/cases/both-watchlists on the device path: obama.jpg is customer C-1001 (the
    closer photo), obama2.jpg is missing case-0042. The edge, with both galleries, publishes
    the ``missing`` match to a real broker; the customer arrival does not hide it."""
    train = data_dir / "ageitgey_face_recognition/examples/knn_examples/train"
    customers, report = gal.enrol([("C-1001", train / "obama/obama.jpg"),
                                   ("C-1003", train / "biden/biden.jpg"),
                                   ("C-1004", train / "kit_harington/john1.jpeg")],
                                  watchlist="customers")
    assert not report.rejected
    missing, report = gal.enrol([("case-0042", train / "obama/obama2.jpg")], watchlist="missing")
    assert not report.rejected
    paths = []
    for g in (customers, missing):
        paths.append(tmp_path / f"{g.watchlist}.npz")
        gal.save(g, paths[-1])
    video = _walk_video(data_dir / "ageitgey_face_recognition/tests/test_images/obama3.jpg",
                        tmp_path / "walk.avi")
    # The case's premise: on this face the customer photo is closer than the missing one.
    still = faces.load_image(data_dir / "ageitgey_face_recognition/tests/test_images/obama3.jpg")
    probe = faces.encode(still, faces.detect(still))
    c, m = customers.nearest(probe[0])[0], missing.nearest(probe[0])[0]
    assert c.person_id == "C-1001" and c.distance < m.distance and missing.decide([m])[0]

    broker = make_broker("amqtt", tmp_path).start()
    sub = Subscriber(broker.port)
    try:
        s = EdgeSettings.model_validate({
            "device_id": "edge-bw", "galleries": [str(p) for p in paths],
            "publish": {"url": broker.url, "timeout_s": 5},
            "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
            "cameras": {"cam-1": {"source": str(video)}}})
        run_edge(s, load_holder(s))
        assert sub.wait_for(lambda sb: any(e["watchlist"] == "missing" for e in sb.matches()),
                            30), f"no missing match published: {sub.matches()}"
        published = [(e["person_id"], e["watchlist"]) for e in sub.matches()]
        assert published == [("case-0042", "missing")]
    finally:
        sub.close()
        stop_broker(broker)

