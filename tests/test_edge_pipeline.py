"""The edge pipeline on generated entrance videos: one event per visit, cooldown across
visits, strangers leave nothing, the event schema, snapshots, clean shutdown."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from oneeye import gallery as gal
from oneeye import synth
from oneeye.edge.camera.sources import FileSource, Frame
from oneeye.edge.detect.metrics import Metrics
from oneeye.edge.detect.pipeline import Pipeline
from oneeye.edge.device.runner import load_holder, run_edge
from oneeye.edge.settings import EdgeSettings
from oneeye.events import MATCH, MAX_EVENT_BYTES, MatchEvent, parse

# Reliable, distinct identities of lfw_dev (probes detected at the default scale).
ALICE, BOB = "Ana_Guevara", "Bill_Gates"
FPS = 10.0   # a low frame rate keeps the videos (and the tests) short


def _probe(lfw: Path, person: str) -> Path:
    return sorted((lfw / "probes" / person).glob("*.jpg"))[0]


def _stranger(lfw: Path, i: int) -> synth.Visit:
    photo = sorted((lfw / "impostors").glob("*.jpg"))[i]
    return synth.Visit(photo.stem, photo, False, 2.0)


@pytest.fixture(scope="module")
def galleries(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("galleries")
    photos = [(p, sorted((lfw / "gallery" / p).glob("*.jpg"))[0]) for p in (ALICE, BOB)]
    paths = {}
    for watchlist in ("customers", "missing"):
        g, report = gal.enrol(photos, watchlist=watchlist)
        assert not report.rejected
        paths[watchlist] = out / f"{watchlist}.npz"
        gal.save(g, paths[watchlist])
    return paths


@pytest.fixture(scope="module")
def visits_video(lfw: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, synth.GroundTruth]:
    """Alice, a stranger, Alice again (within a minute), Bob."""
    visits = [synth.Visit(ALICE, _probe(lfw, ALICE), True, 2.0), _stranger(lfw, 0),
              synth.Visit(ALICE, _probe(lfw, ALICE), True, 2.0),
              synth.Visit(BOB, _probe(lfw, BOB), True, 2.0)]
    path = tmp_path_factory.mktemp("video") / "entrance.avi"
    truth = synth.make_entrance_video(path, visits, fps=FPS, seed=1, gap_s=1.0)
    return path, truth


def _camera(video: Path) -> dict[str, Any]:
    """The one camera ``cam-1`` playing ``video``."""
    return {"cam-1": {"source": str(video)}}


def _run(video: Path, gallery: Path, camera_id: str = "cam-1",
         **settings: object) -> tuple[list[MatchEvent], Metrics]:
    s = EdgeSettings(cameras={camera_id: {"source": str(video)}},  # type: ignore[dict-item]
                     galleries=[gallery], **settings)  # type: ignore[arg-type]
    events: list[MatchEvent] = []
    cameras = run_edge(s, load_holder(s), sinks=[events.append])
    assert list(cameras) == [camera_id] and cameras[camera_id].source.state == "ended"
    return events, cameras[camera_id].metrics


@pytest.fixture(scope="module")
def customers_run(visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path]
                  ) -> tuple[list[MatchEvent], Metrics]:
    return _run(visits_video[0], galleries["customers"])


def _visit_of(truth: synth.GroundTruth, event: MatchEvent) -> synth.VisitTruth:
    assert event.source_frame is not None
    here = truth.visits_at(event.source_frame)
    assert len(here) == 1, f"event at frame {event.source_frame} outside every visit"
    return here[0]


def test_one_event_per_person_and_cooldown_across_visits(
        visits_video: tuple[Path, synth.GroundTruth],
        customers_run: tuple[list[MatchEvent], Metrics]) -> None:
    _, truth = visits_video
    events, metrics = customers_run
    # Alice's second visit falls inside the 60 s cooldown: announced once; Bob once.
    assert sorted(e.person_id for e in events) == [ALICE, BOB]
    for e in events:
        v = _visit_of(truth, e)
        assert v.person == e.person_id            # never the wrong person, never a stranger
    alice = next(e for e in events if e.person_id == ALICE)
    assert _visit_of(truth, alice) is truth.visits[0]
    assert metrics.events == 2
    snap = metrics.snapshot()
    assert snap.frames == truth.frames and snap.events == 2
    assert snap.open_tracks == 0
    assert set(snap.stage_ms) >= {"decode", "detect", "track", "encode", "match"}
    assert snap.latency_p50_ms is not None


def test_without_cooldown_each_visit_is_announced_once(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path]) -> None:
    video, truth = visits_video
    events, _ = _run(video, galleries["customers"], cooldown_s=0)
    per_visit = [sum(1 for e in events if _visit_of(truth, e) is v) for v in truth.visits]
    assert per_visit == [1, 0, 1, 1]              # stranger: none; each visit exactly one


def test_strangers_produce_no_event_and_nothing_on_disk(
        lfw: Path, galleries: dict[str, Path], tmp_path: Path) -> None:
    video = tmp_path / "strangers.avi"
    synth.make_entrance_video(video, [_stranger(lfw, 1), _stranger(lfw, 2)], fps=FPS, seed=2)
    out = tmp_path / "events.jsonl"
    before = {p for p in tmp_path.rglob("*")}
    events, metrics = _run(video, galleries["customers"], events_out=out)
    assert events == []
    assert metrics.encodes > 0                    # faces were seen and encoded, then dropped
    assert out.read_text() == ""
    assert {p for p in tmp_path.rglob("*")} - before == {out}


def test_event_schema_snapshot_policy_and_size(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path],
        customers_run: tuple[list[MatchEvent], Metrics], tmp_path: Path) -> None:
    video, truth = visits_video
    out = tmp_path / "events.jsonl"
    events, _ = _run(video, galleries["missing"], events_out=out, device_id="dev-7",
                     site_id="branch-42", camera_id="door")
    lines = out.read_text().splitlines()
    assert len(lines) == len(events) == 2
    for line in lines:
        assert len(line.encode()) < MAX_EVENT_BYTES
        ev = parse(line, expect=MATCH)
        assert isinstance(ev, MatchEvent)
        assert (ev.device_id, ev.site_id, ev.camera_id) == ("dev-7", "branch-42", "door")
        assert ev.watchlist == "missing" and ev.gallery_version == 1
        assert 0 <= ev.distance <= 0.5 and ev.margin >= 0.04
        assert ev.source_frame is not None and ev.media_time_s == pytest.approx(
            ev.source_frame / FPS, abs=1e-3)
        top, right, bottom, left = ev.bbox
        assert 0 <= left < right <= truth.size[0] and 0 <= top < bottom <= truth.size[1]
        assert ev.snapshot_jpeg is not None           # missing watchlist: snapshot on
        crop = cv2.imdecode(np.frombuffer(base64.b64decode(ev.snapshot_jpeg), np.uint8),
                            cv2.IMREAD_COLOR)
        assert crop is not None and min(crop.shape[:2]) >= 40
    cust, _ = customers_run
    assert cust and all(e.snapshot_jpeg is None for e in cust)   # customers: off


@pytest.fixture(scope="module")
def learning_gallery(galleries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                     ) -> Path:
    """The customers gallery stamped ``learning.enabled`` (the indexer's LEARN_WATCHLISTS)."""
    g = gal.load(galleries["customers"])
    assert not g.learning.enabled
    path = tmp_path_factory.mktemp("learning") / "customers.npz"
    gal.save(g.with_learning(replace(g.learning, enabled=True)), path)
    return path


def test_the_track_encoding_goes_out_only_for_accepted_matches_of_a_learning_gallery(
        visits_video: tuple[Path, synth.GroundTruth], learning_gallery: Path,
        customers_run: tuple[list[MatchEvent], Metrics]) -> None:
    video, truth = visits_video
    events, _ = _run(video, learning_gallery, cooldown_s=0)
    # The stranger's visit sends nothing at all, so no stranger's encoding ever leaves.
    per_visit = [sum(1 for e in events if _visit_of(truth, e) is v) for v in truth.visits]
    assert per_visit == [1, 0, 1, 1]
    g = gal.load(learning_gallery)
    for e in events:
        assert e.encoding is not None and len(e.encoding) == 128
        # the track's fused look: it is accepted as the very person the event names
        found = g.match(np.asarray(e.encoding, np.float32))
        assert found is not None and found.person_id == e.person_id
    # The same video on the gallery that does not learn: no encoding in any event.
    plain, _ = customers_run
    assert plain and all(e.encoding is None for e in plain)


def test_the_encoding_follows_the_matched_watchlist_not_any_loaded_gallery(
        visits_video: tuple[Path, synth.GroundTruth], learning_gallery: Path,
        galleries: dict[str, Path]) -> None:
    # Both people are on the (non-learning) missing list too: the missing match is the one
    # published, and it carries no encoding although the customers gallery learns.
    s = EdgeSettings(cameras=_camera(visits_video[0]),  # type: ignore[arg-type]
                     galleries=[galleries["missing"], learning_gallery])
    events: list[MatchEvent] = []
    run_edge(s, load_holder(s), sinks=[events.append])
    assert sorted(e.person_id for e in events) == [ALICE, BOB]
    assert all(e.watchlist == "missing" and e.encoding is None for e in events)


def test_settings_overrides_reach_the_decision(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path]) -> None:
    video, _ = visits_video
    events, _ = _run(video, galleries["customers"],
                     thresholds={"customers": {"max_distance": 0.05}})
    assert events == []                                  # nobody is that close


class _StopAfter(FileSource):
    """A file source that asks the pipeline to stop right after yielding frame ``at``."""

    def __init__(self, path: Path, at: int, stop: threading.Event) -> None:
        super().__init__(path)
        self.at, self.stop = at, stop

    def frames(self) -> Iterator[Frame]:
        for f in super().frames():
            if f.index == self.at:
                self.stop.set()   # the pipeline processes this frame, then stops
            yield f


def test_stop_drains_pending_encodings_nothing_lost(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path],
        tmp_path: Path) -> None:
    video, truth = visits_video
    mid = (truth.visits[0].first_frame + truth.visits[0].last_frame) // 2
    s = EdgeSettings(cameras=_camera(video), galleries=[galleries["customers"]],
                     recognition={"min_looks": 1},  # type: ignore[arg-type]
                     detection={"fps": 60})  # type: ignore[arg-type]
    events: list[MatchEvent] = []
    pipe = Pipeline(s, s.camera("cam-1"), load_holder(s), sinks=[events.append])
    # Feed frames by hand from mid-visit (a clear face) until its encoding is in flight.
    src = FileSource(video)
    for f in src.frames():
        if f.index < mid:
            continue
        pipe.process(f)
        if pipe.encodings_in_flight():
            break
    src.close()
    assert events == []                                  # the encoding is still in flight
    pipe.drain()
    assert [e.person_id for e in events] == [ALICE]      # drained, decided, delivered


def test_stop_event_during_a_run_still_delivers_the_decision(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path],
        tmp_path: Path) -> None:
    video, truth = visits_video
    stop = threading.Event()
    s = EdgeSettings(cameras=_camera(video), galleries=[galleries["customers"]],
                     recognition={"min_looks": 1})  # type: ignore[arg-type]
    events: list[MatchEvent] = []
    pipe = Pipeline(s, s.camera("cam-1"), load_holder(s), sinks=[events.append])
    # The detection pass at the visit's first frames submits an encode; stop right there.
    at = truth.visits[0].first_frame + 4
    pipe.run(_StopAfter(video, at, stop), stop_event=stop)
    assert [e.person_id for e in events] == [ALICE]
    assert events[0].source_frame is not None and events[0].source_frame <= at


def test_gallery_swap_takes_effect_for_the_next_frames(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path]) -> None:
    video, truth = visits_video
    s = EdgeSettings(cameras=_camera(video), galleries=[galleries["customers"]])
    holder = load_holder(s)
    g = holder.current().galleries["customers"]
    events: list[MatchEvent] = []
    pipe = Pipeline(s, s.camera("cam-1"), holder, sinks=[events.append])
    src = FileSource(video)
    swapped = False
    for f in src.frames():
        if not swapped and f.index > truth.visits[1].first_frame:
            holder.swap(g.without_person(BOB))      # Bob removed before his visit
            swapped = True
        pipe.process(f)
    pipe.drain()
    assert [e.person_id for e in events] == [ALICE]


def test_stop_while_the_camera_is_down_returns_promptly(galleries: dict[str, Path]) -> None:
    from oneeye.edge.camera.stream import LiveSource

    def dead(spec: str | int) -> object:
        raise OSError("camera unplugged")

    s = EdgeSettings(cameras={"cam-1": {"source": "rtsp://camera.invalid/live"}},  # type: ignore[dict-item]
                     galleries=[galleries["customers"]])
    src = LiveSource("rtsp://camera.invalid/live", opener=dead, backoff_s=0.05)  # type: ignore[arg-type]
    stop = threading.Event()
    pipe = Pipeline(s, s.camera("cam-1"), load_holder(s), metrics=Metrics())
    threading.Timer(0.3, stop.set).start()
    done = threading.Event()
    t = threading.Thread(target=lambda: (pipe.run(src, stop_event=stop), done.set()))
    t.start()
    t.join(timeout=30)
    assert done.is_set(), "pipeline did not stop while the camera was down"
    assert pipe.metrics.frames == 0
    assert src.state in ("connecting", "reconnecting")
    assert pipe.metrics.fps() is None and pipe.metrics.frame_age_ms() is None


def test_preview_serves_annotated_frames_on_loopback_only(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path],
        port: int) -> None:
    import urllib.request

    from oneeye.edge.device.preview import Preview

    with pytest.raises(ValueError, match="loopback"):
        Preview(port, host="0.0.0.0")
    video, _ = visits_video
    preview = Preview(port).start()
    try:
        s = EdgeSettings(cameras=_camera(video), galleries=[galleries["customers"]])
        pipe = Pipeline(s, s.camera("cam-1"), load_holder(s), on_frame=preview.update)
        src = FileSource(video)
        for f in src.frames():
            pipe.process(f)
            if f.index == 10:
                break
        src.close()
        pipe.drain()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/jpeg"
            img = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (480, 640, 3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = r.read(200)
        assert head.startswith(b"--oneeyeframe\r\nContent-Type: image/jpeg")
    finally:
        preview.close()


def test_run_edge_wires_the_uplink_and_closes_it_after_the_drain(
        visits_video: tuple[Path, synth.GroundTruth], galleries: dict[str, Path],
        tmp_path: Path) -> None:
    calls: list[str] = []

    class FakeUplink:
        def __init__(self, settings: EdgeSettings, vitals: object) -> None:
            self.vitals = vitals

        def start(self) -> None:
            calls.append("start")

        def submit(self, event: MatchEvent) -> None:
            calls.append(f"submit {event.person_id}")

        def subscribe(self, topic: str, callback: object) -> None:
            calls.append(f"subscribe {topic}")

        def close(self, timeout: float = 5.0) -> None:
            health = self.vitals()  # type: ignore[operator]
            calls.append(f"close with camera {health.cameras['cam-1'].state}")

    video, _ = visits_video
    s = EdgeSettings(cameras=_camera(video), galleries=[galleries["customers"]],
                     publish={"url": "mqtt://127.0.0.1:1883"},  # type: ignore[arg-type]
                     events_out=tmp_path / "e.jsonl")
    run_edge(s, load_holder(s), uplink_factory=FakeUplink)  # type: ignore[arg-type]
    assert calls == ["start", f"submit {ALICE}", f"submit {BOB}", "close with camera ended"]
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 2
