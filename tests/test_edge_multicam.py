"""Many cameras in one edge process: a dead camera never stops the others, a crowd on one
camera cannot queue ahead of another camera's face, cooldowns are per (person, camera),
events carry their camera, health reports every camera, and the settings/CLI that name them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from oneeye import gallery as gal
from oneeye import synth
from oneeye.config import validate
from oneeye.edge.detect.metrics import Metrics
from oneeye.edge.detect.pool import FairPool
from oneeye.edge.device.runner import load_holder, run_edge
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.settings import EdgeSettings
from oneeye.errors import ConfigError
from oneeye.events import MatchEvent
from tests.mqtt_support import Subscriber, make_broker, stop_broker
from tests.wait import wait_until

ALICE = "Ana_Guevara"
FPS = 10.0
ONEEYE = [sys.executable, "-m", "oneeye.cli"]


@pytest.fixture(scope="module")
def alice_gallery(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    photo = sorted((lfw / "gallery" / ALICE).glob("*.jpg"))[0]
    g, report = gal.enrol([(ALICE, photo)], watchlist="customers")
    assert not report.rejected
    path = tmp_path_factory.mktemp("gallery") / "customers.npz"
    gal.save(g, path)
    return path


@pytest.fixture(scope="module")
def door_video(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alice walks in once."""
    probe = sorted((lfw / "probes" / ALICE).glob("*.jpg"))[0]
    path = tmp_path_factory.mktemp("door") / "door.avi"
    synth.make_entrance_video(path, [synth.Visit(ALICE, probe, True, 2.0)], fps=FPS, seed=2)
    return path


@pytest.fixture(scope="module")
def crowd_video(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve strangers at once, standing still, for 3 s."""
    photos = sorted((lfw / "impostors").glob("*.jpg"))[:12]
    frame = np.full((480, 640, 3), 90, np.uint8)
    for i, p in enumerate(photos):
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        face = cv2.resize(img[h // 5: h * 4 // 5, w // 5: w * 4 // 5], (140, 140))
        y, x = 20 + (i // 4) * 150, 20 + (i % 4) * 155
        frame[y:y + 140, x:x + 140] = face
    path = tmp_path_factory.mktemp("crowd") / "crowd.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (640, 480))
    for _ in range(int(3 * FPS)):
        writer.write(frame)
    writer.release()
    return path


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])   # nothing listens once the socket is closed


# ----------------------------------------------------------------------------- settings


def test_cameras_map_overlays_only_the_keys_a_camera_gives() -> None:
    s = EdgeSettings.model_validate({
        "realtime": True, "detection": {"upsample": 0, "fps": 7.5},
        "cameras": {"door": {"source": "rtsp://cam/door", "detection": {"upsample": 2}},
                    "lobby": {"source": "lobby.mp4", "realtime": False, "stall_s": 2}}})
    per = s.per_camera()
    assert list(per) == ["door", "lobby"]
    door, lobby = per["door"], per["lobby"]
    assert (door.camera_id, door.source, door.realtime) == ("door", "rtsp://cam/door", True)
    assert door.detection.upsample == 2 and door.detection.fps == 7.5
    assert lobby.detection.upsample == 0 and lobby.realtime is False and lobby.stall_s == 2
    assert door.recognition == s.recognition and (door.rotate, door.crop) == (0, None)


@pytest.mark.parametrize("old", [{"source": "clip.mp4"}, {"camera_id": "till-2"},
                                 {"source": "clip.mp4", "camera_id": "till-2"}])
def test_the_old_one_camera_form_is_refused_with_the_way_to_write_it(old: dict[str, str]
                                                                       ) -> None:
    with pytest.raises(ConfigError, match=r"top-level one-camera form .* was removed: declare "
                                          r"every camera under cameras, e\.g\. cameras: \{"
                                          + old.get("camera_id", "cam-1")):
        validate(EdgeSettings, old, root="edge")


def test_an_edge_without_cameras_refuses_to_start_and_says_how_to_name_one() -> None:
    with pytest.raises(ConfigError, match=r"no camera: declare cameras"):
        run_edge(EdgeSettings(), GalleryHolder())


@pytest.mark.parametrize("data, path", [
    ({"cameras": {"door": {"source": "0", "detection": {"upsampel": 1}}}},
     "edge.cameras.door.detection.upsampel"),
    ({"cameras": {"door": {"sauce": "0"}}}, "edge.cameras.door.sauce"),
    ({"cameras": {"door": {"source": "0", "stall_s": 0}}}, "edge.cameras.door.stall_s"),
    ({"cameras": {"door/1": {"source": "0"}}}, "edge.cameras.door/1"),
])
def test_a_bad_camera_names_its_key_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(path)):
        validate(EdgeSettings, data, root="edge")


def test_source_beside_cameras_is_the_old_form_too() -> None:
    with pytest.raises(ConfigError, match=r"one-camera form .* was removed"):
        validate(EdgeSettings, {"source": "0", "cameras": {"a": {"source": "1"}}})


# ----------------------------------------------------------------------------- scheduling


def _order_of_execution(pool: Executor, door: Executor, crowd_jobs: int) -> list[str]:
    """Block the only worker, queue a crowd's jobs then one door job, release: who ran when."""
    ran: list[str] = []
    gate = threading.Event()
    blocker = pool.submit(gate.wait)
    futures = [pool.submit(ran.append, f"crowd-{i}") for i in range(crowd_jobs)]
    futures.append(door.submit(ran.append, "door"))
    gate.set()
    blocker.result(10)
    for f in futures:
        f.result(10)
    return ran


def test_a_crowd_on_one_camera_cannot_queue_ahead_of_another_cameras_face() -> None:
    fifo = ThreadPoolExecutor(max_workers=1)
    baseline = _order_of_execution(fifo, fifo, 20)
    fifo.shutdown()
    fair = FairPool(workers=1)
    ran = _order_of_execution(fair.lane("crowd"), fair.lane("door"), 20)
    fair.shutdown()
    assert baseline.index("door") == 20        # first in, first out: behind the whole crowd
    assert ran.index("door") <= 1              # round-robin: behind at most one crowd job
    assert sorted(ran) == sorted(baseline)     # and every crowd job still ran


def test_a_crowded_camera_and_a_door_camera_in_one_process(
        alice_gallery: Path, door_video: Path, crowd_video: Path) -> None:
    s = EdgeSettings.model_validate({
        "galleries": [str(alice_gallery)], "workers": 1,
        "cameras": {"crowd": {"source": str(crowd_video)}, "door": {"source": str(door_video)}}})
    events: list[MatchEvent] = []
    cameras = run_edge(s, load_holder(s), sinks=[events.append])
    assert [(e.camera_id, e.person_id) for e in events] == [("door", ALICE)]
    assert cameras["crowd"].metrics.encodes >= 12   # the crowd was really encoded; nobody named
    assert cameras["door"].metrics.events == 1


def test_cooldown_is_per_person_and_camera(alice_gallery: Path, door_video: Path) -> None:
    s = EdgeSettings.model_validate({
        "galleries": [str(alice_gallery)], "cooldown_s": 600,
        "cameras": {"east": {"source": str(door_video)}, "west": {"source": str(door_video)}}})
    events: list[MatchEvent] = []
    run_edge(s, load_holder(s), sinks=[events.append])
    # Alice on two cameras within the cooldown: one event per camera, each with its camera.
    assert sorted((e.camera_id, e.person_id) for e in events) == [("east", ALICE),
                                                                 ("west", ALICE)]


# ----------------------------------------------------------------------------- failure


def test_a_dead_camera_does_not_stop_the_live_one_and_health_shows_it(
        alice_gallery: Path, door_video: Path, tmp_path: Path) -> None:
    broker = make_broker("amqtt", tmp_path).start()
    sub = Subscriber(broker.port)
    s = EdgeSettings.model_validate({
        "device_id": "edge-mc", "galleries": [str(alice_gallery)],
        "publish": {"url": broker.url, "timeout_s": 5},
        "outbox": {"path": str(tmp_path / "outbox.sqlite3")}, "health": {"interval_s": 1},
        "cameras": {"door": {"source": str(door_video), "realtime": True, "loop": True},
                    "dead": {"source": f"rtsp://127.0.0.1:{closed_port()}/live"}}})
    stop = threading.Event()
    run = threading.Thread(target=run_edge, args=(s, load_holder(s)),
                           kwargs={"stop_event": stop}, daemon=True)
    run.start()

    def health_with_dead_reconnecting() -> dict[str, Any] | None:
        for topic, payload in list(sub.messages):
            if topic.endswith("/health"):
                h = json.loads(payload)
                door, dead = h["cameras"]["door"], h["cameras"]["dead"]
                if dead["state"] == "reconnecting" and door["state"] == "ok" and "fps" in door:
                    return h  # type: ignore[no-any-return]
        return None

    try:
        match = wait_until(lambda: next((m for m in sub.matches() if m["camera_id"] == "door"),
                                        None), 120, "the live camera's event")
        assert match["person_id"] == ALICE
        health = wait_until(health_with_dead_reconnecting, 60,
                            "health showing the dead camera reconnecting")
        assert health["cameras"]["dead"].get("fps") is None    # it delivers nothing
        assert health["cameras"]["door"]["fps"] > 0
        assert health["camera_id"] == "dead" and health["camera_state"] == "reconnecting"
        assert all(m["camera_id"] == "door" for m in sub.matches())
    finally:
        stop.set()
        run.join(60)
        sub.close()
        stop_broker(broker)
    assert not run.is_alive()


# ----------------------------------------------------------------------------- metrics


def test_a_frozen_camera_has_no_fps_and_a_growing_frame_age() -> None:
    now = [100.0]
    m = Metrics(window_s=5.0, clock=lambda: now[0])
    for _ in range(50):                       # 10 fps for 5 s, each frame 40 ms old
        now[0] += 0.1
        m.frame(0.04)
    assert m.fps() == pytest.approx(10.0, rel=0.05)
    assert m.frame_age_ms() == pytest.approx(40.0)
    now[0] += 3.0                             # the camera freezes
    assert m.frame_age_ms() == pytest.approx(3040.0)
    assert m.fps() is not None and m.fps() < 5.0   # only frames really received count
    now[0] += 3.0
    assert m.fps() is None                    # nothing in the window: no fps, not a stale 10
    assert m.frame_age_ms() == pytest.approx(6040.0)
    stalled = Metrics(window_s=10.0, silent_after_s=2.0, clock=lambda: now[0])
    for _ in range(30):
        now[0] += 0.1
        stalled.frame(0.04)
    now[0] += 2.5                             # silent for longer than the source's stall_s
    assert stalled.fps() is None and stalled.frame_age_ms() == pytest.approx(2540.0)


# ----------------------------------------------------------------------------- CLI


def test_cli_runs_two_named_cameras(alice_gallery: Path, lfw: Path, tmp_path: Path) -> None:
    # Alice stays 6 s in view: even a loaded machine skipping most frames sees her.
    probe = sorted((lfw / "probes" / ALICE).glob("*.jpg"))[0]
    video = tmp_path / "hall.avi"
    synth.make_entrance_video(video, [synth.Visit(ALICE, probe, True, 6.0)], fps=FPS, seed=4)
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", f"a={video}", "--source", f"b={video}", "--realtime",
         "--gallery", str(alice_gallery), "--events-out", str(out), "--publish", "none"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((e["camera_id"], e["person_id"]) for e in events) == [("a", ALICE),
                                                                       ("b", ALICE)]
    assert re.search(r"^a: frames \d+", proc.stderr, re.M)
    assert re.search(r"^b: frames \d+", proc.stderr, re.M)


@pytest.mark.parametrize("flags, camera_id, cameras", [
    # A plain source replaces the settings' only camera's source (its settings stay) …
    (["rtsp://cam/live?user=x"], None, {"door": "rtsp://cam/live?user=x"}),
    # … or is the camera --camera-id names.
    (["rtsp://cam/live?user=x"], "till-2", {"till-2": "rtsp://cam/live?user=x"}),
    (["door=rtsp://cam/1", "lobby=2"], None, {"door": "rtsp://cam/1", "lobby": "2"}),
])
def test_source_flags_name_the_cameras(flags: list[str], camera_id: str | None,
                                       cameras: dict[str, str]) -> None:
    from oneeye.commands.edge import cameras_from_flags

    s = EdgeSettings.model_validate({"cameras": {"door": {"source": "0", "stall_s": 2}}})
    got = cameras_from_flags(tuple(flags), s, camera_id)
    assert {k: v["source"] for k, v in got.items()} == cameras
    if "door" in got:
        assert got["door"]["stall_s"] == 2      # the settings' overrides for that camera stay


def test_a_file_named_like_a_camera_is_a_plain_source(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from oneeye.commands.edge import cameras_from_flags

    monkeypatch.chdir(tmp_path)
    Path("hall=2.mp4").write_bytes(b"")
    assert cameras_from_flags(("hall=2.mp4",), EdgeSettings()) == {
        "cam-1": {"source": "hall=2.mp4"}}
    with pytest.raises(Exception, match="given twice"):
        cameras_from_flags(("a=1", "a=2"), EdgeSettings())
