"""Media time is the container's presentation time, not frame index / fps (issue 24 §5).

Phones and many cameras write variable-frame-rate files: the rate drops when the light
does, and the container's fps is only an average. ``oneeye analyze``, the edge's file
source (and its events) and the benchmarks' latencies all take a frame's time from the
container's timestamps (``CAP_PROP_POS_MSEC`` after each read). Two VFR files: the
``vfr-media-time`` case (the Hamilton clip, 82 frames at 29.97 fps then 193 at ~10 fps)
and a generated one that slows, speeds up and slows again.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from oneeye import media
from oneeye.edge.camera.sources import FileSource
from oneeye.events import MATCH, MatchEvent, parse
from tests.media_support import counter_frames, video_frames, write_vfr_mp4

ONEEYE = [sys.executable, "-m", "oneeye.cli"]


@pytest.fixture(scope="module")
def hamilton_vfr(examples: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, list[float]]:
    """The case's file: 82 frames at 29.97 fps, then 193 at a third of that."""
    out = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    times = write_vfr_mp4(out, video_frames(examples / "short_hamilton_clip.mp4"),
                          [(82, 1), (193, 3)])
    return out, times


@pytest.fixture(scope="module")
def slow_fast_slow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """40 frames: 10 at ~6 fps, 20 at 29.97 fps, 10 at ~3 fps (dusk, light, dusk)."""
    out = tmp_path_factory.mktemp("vfr") / "sfs.mp4"
    return out, write_vfr_mp4(out, counter_frames(40), [(10, 5), (20, 1), (10, 10)])


def test_the_case_file_is_variable_rate(hamilton_vfr: tuple[Path, list[float]]) -> None:
    _, times = hamilton_vfr
    assert times[9] == pytest.approx(0.300, abs=1e-3)      # the edge said 0.722
    assert times[91] == pytest.approx(3.637, abs=1e-3)     # analyze said 7.30
    assert times[274] == pytest.approx(21.955, abs=1e-3)


@pytest.mark.parametrize("name", ["hamilton_vfr", "slow_fast_slow"])
def test_analyze_reports_each_frames_presentation_time(name: str,
                                                       request: pytest.FixtureRequest) -> None:
    path, times = request.getfixturevalue(name)
    frames = list(media.iter_media(path))
    assert [f.index for f in frames] == list(range(len(times)))
    assert [f.media_time_s for f in frames] == pytest.approx(times, abs=1e-3)
    assert media.frame_times(path) == pytest.approx(times, abs=1e-3)


def test_fps_max_samples_evenly_in_real_time(hamilton_vfr: tuple[Path, list[float]]) -> None:
    """--fps-max 1 keeps the first frame at or after one second past the last one kept
    (by index it kept every 13th frame: 0.43 s apart at first, 1.3 s later)."""
    path, times = hamilton_vfr
    expected, due = [], 0.0
    for i, t in enumerate(times):
        if t + 1e-9 >= due:
            expected.append(i)
            due = t + 1.0
    kept = list(media.iter_media(path, fps_max=1.0))
    assert [f.index for f in kept] == expected
    gaps = [b.media_time_s - a.media_time_s for a, b in itertools.pairwise(kept)]
    slow_period = 3 * 1001 / 30000
    assert all(1.0 - 1e-6 <= g <= 1.0 + slow_period for g in gaps), gaps


@pytest.mark.parametrize("name", ["hamilton_vfr", "slow_fast_slow"])
def test_the_edge_file_source_stamps_presentation_time(name: str,
                                                       request: pytest.FixtureRequest) -> None:
    path, times = request.getfixturevalue(name)
    frames = list(FileSource(path).frames())
    assert [f.media_time_s for f in frames] == pytest.approx(times, abs=1e-3)


def test_a_looped_file_goes_on_in_media_time(slow_fast_slow: tuple[Path, list[float]]) -> None:
    path, times = slow_fast_slow
    src = FileSource(path, loop=True)
    got = []
    for frame in src.frames():
        got.append(frame.media_time_s)
        if len(got) == 2 * len(times):
            src.close()
    # the second pass starts one frame (at the container's average rate) after the first
    start2 = times[-1] + 1 / src.fps
    assert got[:len(times)] == pytest.approx(times, abs=1e-3)
    assert got[len(times):] == pytest.approx([start2 + t for t in times], abs=1e-3)


def test_an_edge_event_carries_the_frames_presentation_time(
        hamilton_vfr: tuple[Path, list[float]], miranda_gallery: Path, tmp_path: Path) -> None:
    path, times = hamilton_vfr
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", str(path), "--gallery", str(miranda_gallery),
         "--events-out", str(out), "--publish", "none"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [parse(line, expect=MATCH) for line in out.read_text().splitlines()]
    assert events, proc.stderr
    for ev in events:
        assert isinstance(ev, MatchEvent) and ev.source_frame is not None
        assert ev.media_time_s == pytest.approx(times[ev.source_frame], abs=1e-3)


def test_analyze_cli_prints_presentation_times(hamilton_vfr: tuple[Path, list[float]],
                                               tmp_path: Path) -> None:
    path, times = hamilton_vfr
    proc = subprocess.run([*ONEEYE, "analyze", str(path), "--fps-max", "0.5"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert rows
    for row in rows:
        assert row["media_time_s"] == pytest.approx(times[row["frame"]], abs=1e-3)


def test_a_file_without_timestamps_keeps_index_over_fps() -> None:
    """Backends without timestamps report 0 (or -1) for every frame: one frame period each."""
    clock = media.MediaClock(10.0)
    assert [clock.stamp(v) for v in (0.0, 0.0, -1.0, float("nan"), 0.0)] == pytest.approx(
        [0.0, 0.1, 0.2, 0.3, 0.4])
    backwards = media.MediaClock(25.0)
    assert [backwards.stamp(v) for v in (0.0, 400.0, 200.0, 480.0)] == pytest.approx(
        [0.0, 0.4, 0.44, 0.48])
