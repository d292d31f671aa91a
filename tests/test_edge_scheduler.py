"""The detection budget of one edge: a shared scheduler serves cameras with undecided faces
first, decided tracks and still scenes after, never starving them; encodings of undecided
faces go before re-checks of decided ones; a track's attempts are capped; only its best
looks are encoded; the detection cadence is in time (``detection.fps``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from oneeye.edge.camera.sources import FileSource
from oneeye.edge.detect.pipeline import Pipeline, among_best, look_score
from oneeye.edge.detect.pool import FairPool
from oneeye.edge.detect.scheduler import DetectScheduler, Need, Ticket
from oneeye.edge.device.runner import load_holder
from oneeye.edge.settings import EdgeSettings
from oneeye.faces import FaceQuality


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def busy_scheduler(slots: int = 1) -> tuple[DetectScheduler, FakeClock]:
    """A scheduler whose every slot is taken by a camera named busy-N."""
    clock = FakeClock()
    sched = DetectScheduler(slots, max_wait_s=1.0, clock=clock)
    for i in range(slots):
        assert sched.ask(f"busy-{i}", Need.QUIET).granted
    return sched, clock


# ----------------------------------------------------------------------------- scheduler


def test_a_camera_with_a_new_face_is_served_before_one_with_only_decided_tracks() -> None:
    sched, clock = busy_scheduler()
    decided = sched.ask("lobby", Need.QUIET)          # only decided tracks, asked first
    clock.t += 0.1
    new = sched.ask("door", Need.UNDECIDED)           # a new face, asked later
    assert not decided.granted and not new.granted    # the detector is busy
    assert sched.waiting() == ["door", "lobby"]
    clock.t += 0.1
    sched.release("busy-0")
    assert sched.running() == ["door"] and new.granted and not decided.granted
    sched.release("door")
    assert sched.running() == ["lobby"] and decided.granted


def test_motion_outside_the_tracks_goes_after_undecided_faces_and_before_quiet_scenes() -> None:
    sched, _ = busy_scheduler()          # all three ask at the same time
    sched.ask("still", Need.QUIET)
    sched.ask("arriving", Need.MOTION)
    sched.ask("deciding", Need.UNDECIDED)
    assert sched.waiting() == ["deciding", "arriving", "still"]


def test_cameras_with_the_same_need_are_served_in_the_order_they_asked() -> None:
    sched, clock = busy_scheduler()
    for cam in ("c", "a", "b"):
        sched.ask(cam, Need.UNDECIDED)
        clock.t += 0.01
    served = []
    holder = "busy-0"
    for _ in range(3):
        sched.release(holder)
        (holder,) = sched.running()
        served.append(holder)
    assert served == ["c", "a", "b"]


def test_a_quiet_camera_waits_but_is_not_starved_past_max_wait() -> None:
    sched, clock = busy_scheduler()
    sched.ask("lobby", Need.QUIET)
    clock.t += 0.5
    sched.ask("door", Need.UNDECIDED)
    assert sched.waiting() == ["door", "lobby"]       # 0.5 s: still behind the new face
    clock.t += 0.6                                    # lobby has waited 1.1 s > max_wait_s
    sched.ask("hall", Need.UNDECIDED)
    assert sched.waiting() == ["lobby", "door", "hall"]
    sched.release("busy-0")
    assert sched.running() == ["lobby"]


def test_asking_again_updates_the_need_and_keeps_the_place_in_time() -> None:
    sched, clock = busy_scheduler()
    sched.ask("lobby", Need.QUIET)
    clock.t += 0.1
    sched.ask("door", Need.UNDECIDED)
    clock.t += 0.1
    sched.ask("lobby", Need.UNDECIDED)                # a face appeared while it waited
    assert sched.waiting() == ["lobby", "door"]       # same need now: lobby asked first


def test_free_slots_are_granted_at_once_and_a_stopped_camera_gives_its_ask_back() -> None:
    clock = FakeClock()
    sched = DetectScheduler(2, clock=clock)
    assert sched.ask("a", Need.QUIET).granted and sched.ask("b", Need.QUIET).granted
    waiting = sched.ask("c", Need.UNDECIDED)
    assert not waiting.granted
    sched.release("c")                                # c stops before its turn
    assert sched.waiting() == []
    sched.release("a")
    assert sched.running() == ["b"]
    with pytest.raises(ValueError, match="slots"):
        DetectScheduler(0)


def test_a_slot_a_frozen_camera_does_not_take_up_goes_to_the_next_camera() -> None:
    sched, clock = busy_scheduler()
    sched.ask("frozen", Need.UNDECIDED)
    sched.release("busy-0")                           # granted while its stream froze
    assert sched.running() == ["frozen"]
    sched.ask("door", Need.UNDECIDED)
    clock.t += 0.5
    sched.ask("door", Need.UNDECIDED)                 # door asks again at its next frame
    assert sched.running() == ["frozen"]              # within max_wait_s: still frozen's
    clock.t += 0.6
    assert sched.ask("door", Need.UNDECIDED).granted  # frozen never took it up
    assert sched.running() == ["door"]
    assert not sched.ask("frozen", Need.UNDECIDED).granted   # back in the queue


def test_a_blocking_ask_returns_when_the_slot_is_released() -> None:
    sched = DetectScheduler(1)
    sched.seat("busy").ready(Need.QUIET)
    seat = sched.seat("file")
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(seat.ready(Need.UNDECIDED, block=True)))
    t.start()
    assert sched.waiting() == ["file"] or got   # (it may already be waiting)
    sched.release("busy")
    t.join(10)
    assert got == [True] and sched.running() == ["file"]


def test_a_live_camera_takes_a_slot_freed_within_its_frame_period_at_once() -> None:
    """A paced camera does not block on its turn (it must keep up with its frames) but
    waits one frame period for it: a slot freed meanwhile is claimed on the frame it holds,
    not left idle until its next frame. A slot that stays busy lets it go back in time."""
    sched = DetectScheduler(1)
    sched.seat("busy").ready(Need.QUIET)
    seat = sched.seat("door")
    assert seat.ready(Need.UNDECIDED, wait_s=0.05) is False      # still busy: back to frames
    assert sched.waiting() == ["door"]
    waiting = threading.Event()
    wait = sched.wait

    def watched(ticket: Ticket, timeout: float) -> bool:
        waiting.set()                    # the camera is waiting for its turn
        return wait(ticket, timeout)

    sched.wait = watched  # type: ignore[method-assign]
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(seat.ready(Need.UNDECIDED, wait_s=30)))
    t.start()
    assert waiting.wait(10)
    sched.release("busy")
    t.join(10)
    assert got == [True] and sched.running() == ["door"]
    seat.release()
    assert sched.running() == [] and sched.waiting() == []


# ----------------------------------------------------------------------------- pool


def test_an_undecided_face_is_encoded_before_a_decided_tracks_recheck() -> None:
    pool = FairPool(workers=1)
    gate = threading.Event()
    ran: list[str] = []
    blocker = pool.lane("lobby").submit(gate.wait, 10)   # the worker is busy
    lobby, door = pool.lane("lobby"), pool.lane("door")
    rechecks = [lobby.submit_ranked(Need.QUIET, ran.append, f"recheck-{i}") for i in range(3)]
    face = door.submit_ranked(Need.UNDECIDED, ran.append, "new face")
    gate.set()
    for f in [blocker, *rechecks, face]:
        f.result(10)
    pool.shutdown()
    assert ran == ["new face", "recheck-0", "recheck-1", "recheck-2"]


# ----------------------------------------------------------------------------- settings


def test_every_n_frames_is_refused_with_how_to_move_to_fps() -> None:
    with pytest.raises(ValidationError) as err:
        EdgeSettings.model_validate({"detection": {"every_n_frames": 3}})
    assert "fps" in str(err.value) and "3 at 15 fps: fps 5" in str(err.value)
    assert EdgeSettings().detection.fps == 5.0


def test_look_score_prefers_larger_and_sharper_faces() -> None:
    assert look_score(FaceQuality(size_px=96, blur=60)) == 1.0
    assert look_score(FaceQuality(size_px=48, blur=60)) == 0.5
    assert look_score(FaceQuality(size_px=96, blur=15)) == 0.25
    assert look_score(FaceQuality(size_px=200, blur=500)) == 1.0


# ----------------------------------------------------------------------------- pipeline


def _pipeline(examples: Path, gallery: Path, **over: object) -> tuple[Pipeline, FileSource]:
    clip = examples / "short_hamilton_clip.mp4"
    s = EdgeSettings.model_validate({"galleries": [str(gallery)],
                                     "cameras": {"stage": {"source": str(clip)}}, **over})
    return Pipeline(s, s.camera("stage"), load_holder(s), sinks=[lambda e: None]), \
        FileSource(clip)


def test_detection_cadence_is_in_time_not_frames(examples: Path, miranda_gallery: Path) -> None:
    # The Hamilton clip is ~29.97 fps: fps 5 searches every 6th frame (as Frigate's
    # detect fps); 10 every 3rd.
    for fps, every in ((5, 6), (10, 3)):
        pipe, src = _pipeline(examples, miranda_gallery, detection={"fps": fps})
        for i, frame in enumerate(src.frames()):
            if i == 60:
                break
            pipe.process(frame)
        src.close()
        pipe.drain()
        assert pipe.metrics.detections == pytest.approx(60 / every, abs=1)


def test_the_real_pipeline_asks_undecided_first_then_quiet_once_decided(
        examples: Path, miranda_gallery: Path) -> None:
    pipe, src = _pipeline(examples, miranda_gallery, recognition={"reverify_s": 0})
    needs: list[Need] = []
    for frame in src.frames():
        pipe.process(frame)
        needs.append(pipe.need([]))
    src.close()
    pipe.drain()
    assert pipe.metrics.events == 1                   # Miranda named once
    first_undecided = needs.index(Need.UNDECIDED)     # a face was found: it ranks first
    assert Need.QUIET in needs[first_undecided:]      # and once decided, it waits
    assert needs[0] == Need.QUIET                     # nothing tracked, no motion given


def test_a_named_track_is_rechecked_at_most_max_reverify_times(
        examples: Path, miranda_gallery: Path) -> None:
    # Attempts enough to reach Miranda's name before a track is given up as unknown.
    capped, src = _pipeline(examples, miranda_gallery, detection={"fps": 30},
                            recognition={"max_reverify": 0, "reverify_s": 0.1,
                                         "max_encodes_per_track": 100})
    capped.run(src)
    free, src2 = _pipeline(examples, miranda_gallery, detection={"fps": 30},
                           recognition={"max_reverify": 50, "reverify_s": 0.1,
                                        "max_encodes_per_track": 100})
    free.run(src2)
    assert capped.metrics.events == free.metrics.events == 1
    # With no re-checks after the decision, the clip costs fewer encodings.
    assert capped.metrics.encodes < free.metrics.encodes


def test_only_looks_near_the_tracks_best_are_encoded_and_the_best_fades() -> None:
    best, worth = 0.0, []
    for score in (0.5, 1.0, 0.4, 0.4, 0.4, 0.4):
        ok, best = among_best(score, best, ratio=0.6)
        worth.append(ok)
    # A face coming closer: each look is the best so far. Then 0.4 after a 1.0 look (a
    # blurred step, a turn away) is not worth an attempt; the best fades 10 % a pass
    # (0.9, 0.81, 0.73, 0.66), so at the fourth such pass 0.4 >= 0.6 x 0.66 is tried again:
    # a track whose one sharp look passed is not shut out for good.
    assert worth == [True, True, False, False, False, True]
    assert among_best(0.1, 1.0, ratio=0.0)[0]         # ratio 0: every usable look


def test_a_picky_best_look_ratio_still_names_the_person(examples: Path,
                                                        miranda_gallery: Path) -> None:
    picky, src = _pipeline(examples, miranda_gallery, recognition={"best_look_ratio": 1.0})
    picky.run(src)
    assert picky.metrics.events == 1


def test_every_stage_reports_its_cpu_including_the_sources_decoder_thread(
        examples: Path, miranda_gallery: Path) -> None:
    pipe, src = _pipeline(examples, miranda_gallery)
    metrics = pipe.run(src)
    cpu = metrics.cpu_s()
    # The file is decoded in the source's own reader thread: its CPU is counted as decode.
    assert src.decode_cpu_s > 0 and cpu["decode"] >= src.decode_cpu_s
    for stage in ("motion", "detect", "track", "landmarks", "encode", "match", "publish"):
        assert cpu[stage] > 0, stage
