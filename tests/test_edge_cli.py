"""``oneeye edge`` as a user runs it: a subprocess on the Hamilton clip, bad input, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from oneeye.events import MATCH, MatchEvent, parse
from tests.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
ONEEYE = [sys.executable, "-m", "oneeye.cli"]


def test_hamilton_clip_announces_miranda_exactly_once(examples: Path, miranda_gallery: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", str(examples / "short_hamilton_clip.mp4"),
         "--gallery", str(miranda_gallery), "--events-out", str(out), "--publish", "none",
         "--device-id", "branch-cam-1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 1, lines
    ev = parse(lines[0], expect=MATCH)
    assert isinstance(ev, MatchEvent)
    assert ev.person_id == "lin-manuel-miranda" and ev.device_id == "branch-cam-1"
    assert ev.source_frame is not None and 0 <= ev.source_frame < 275
    assert ev.snapshot_jpeg is None                 # customers: no snapshot by default
    assert "frames 275" in proc.stderr and "events 1" in proc.stderr   # the exit summary


def test_missing_source_is_a_clear_error(miranda_gallery: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", str(tmp_path / "nope.mp4"), "--gallery",
         str(miranda_gallery)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "nope.mp4: no such video file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_setting_names_the_key(miranda_gallery: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("detection:\n  fps: 0\n")
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", "x.mp4", "--gallery", str(miranda_gallery),
         "--config", str(cfg)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "detection.fps" in proc.stderr


def test_sigterm_stops_cleanly_and_keeps_the_event(examples: Path, miranda_gallery: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [*ONEEYE, "edge", "--source", str(examples / "short_hamilton_clip.mp4"),
         "--gallery", str(miranda_gallery), "--events-out", str(out), "--realtime", "--loop"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        # Wait for the announcement, then ask the process to stop.
        wait_until(lambda: proc.poll() is not None or (out.exists() and out.read_text()), 120,
                   "the edge's first event in events.jsonl", interval_s=0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopping (SIGTERM)" in err
    events = [json.loads(line) for line in out.read_text().splitlines()]
    # Looping the clip comes back to him within the cooldown: still one event.
    assert [e["person_id"] for e in events] == ["lin-manuel-miranda"]
