"""The foundation CLI, run as a real subprocess: output shape and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ONEEYE = [sys.executable, "-m", "oneeye.cli"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*ONEEYE, *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def lfw_gallery(tmp_path_factory: pytest.TempPathFactory, lfw: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("g") / "customers.npz"
    # --jitters 1: this checks the command's plumbing; bench/accuracy.py measures the defaults.
    proc = run("gallery", "build", str(lfw / "gallery"), "--watchlist", "customers",
               "--out", str(out), "--json", "--jitters", "1")
    return out, json.loads(proc.stdout)


def test_gallery_build_on_lfw_dev(lfw_gallery: tuple[Path, dict], lfw: Path) -> None:
    out, summary = lfw_gallery
    people = {p.name for p in (lfw / "gallery").iterdir() if p.is_dir()}
    assert summary["manifest"]["identities"] + len(summary["not_enrolled"]) == len(people)
    assert summary["manifest"]["identities"] >= 0.9 * len(people)
    assert len(summary["accepted"]) + len(summary["rejected"]) == summary["photos"]
    for r in summary["rejected"]:
        assert r["reason"] in {"no_face", "several_faces", "face_too_small", "too_blurred",
                               "unreadable"} and r["message"]
    assert out.exists() and out.with_suffix(".json").exists()


def test_gallery_show(lfw_gallery: tuple[Path, dict]) -> None:
    out, summary = lfw_gallery
    info = json.loads(run("gallery", "show", str(out), "--json").stdout)
    assert info["identities"] == summary["manifest"]["identities"]
    assert info["watchlist"] == "customers" and info["version"] == 1
    text = run("gallery", "show", str(out)).stdout
    assert "max_distance" in text and "photos" in text


def test_identify_on_lfw_probes_and_impostors(lfw_gallery: tuple[Path, dict], lfw: Path,
                                              tmp_path: Path) -> None:
    out, _ = lfw_gallery
    probe_dir = next(p for p in sorted((lfw / "probes").iterdir()) if p.is_dir())
    probes = sorted(probe_dir.glob("*.jpg"))[:2]
    impostor = sorted((lfw / "impostors").glob("*.jpg"))[0]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    proc = run("identify", "--gallery", str(out), *map(str, probes), str(impostor),
               str(corrupt))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["image"] for line in lines] == [*map(str, probes), str(impostor), str(corrupt)]
    assert "error" in lines[-1] and "corrupt" in lines[-1]["error"]
    for line in lines[:-1]:
        for face in line["faces"]:
            assert set(face) == {"bbox", "person_id", "watchlist", "distance", "margin"}
            assert len(face["bbox"]) == 4
    named = [f["person_id"] for f in lines[0]["faces"] + lines[1]["faces"]]
    assert probe_dir.name in named


def test_identify_usage_errors_exit_nonzero(tmp_path: Path) -> None:
    assert run("identify", "x.jpg", check=False).returncode == 2  # no --gallery
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    proc = run("identify", "--gallery", str(bad), "x.jpg", check=False)
    assert proc.returncode == 2 and "manifest" in proc.stderr


def test_gallery_build_empty_dir_is_an_error(tmp_path: Path) -> None:
    proc = run("gallery", "build", str(tmp_path), "--watchlist", "missing", "--out",
               str(tmp_path / "g.npz"), check=False)
    assert proc.returncode == 2 and "no photos found" in proc.stderr


def test_analyze_video_samples_frames(examples: Path) -> None:
    proc = run("analyze", str(examples / "short_hamilton_clip.mp4"), "--fps-max", "1",
               "--encodings")
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all("frame" in ln for ln in lines)   # no gallery: no tracks decided
    assert 8 <= len(lines) <= 11  # 275 frames at 29.97 fps, one per second
    assert [ln["frame"] for ln in lines] == sorted(ln["frame"] for ln in lines)
    faces = [f for ln in lines for f in ln["faces"]]
    assert faces and all(len(f["encoding"]) == 128 and len(f["landmarks"]) == 5 for f in faces)
    from oneeye.media import expected_frames  # the progress bar's total

    assert expected_frames(examples / "short_hamilton_clip.mp4", fps_max=1) == len(lines)
    assert "analysing" not in proc.stderr  # not a TTY: no progress bar


def test_identify_and_analyze_decide_like_the_device_with_its_config(
        lfw_gallery: tuple[Path, dict], lfw: Path, tmp_path: Path) -> None:
    out, _ = lfw_gallery
    probe_dir = next(p for p in sorted((lfw / "probes").iterdir()) if p.is_dir())
    probe = sorted(probe_dir.glob("*.jpg"))[0]
    device = tmp_path / "edge.yaml"
    device.write_text(f"galleries: [{out}]\n")
    strict = tmp_path / "strict.yaml"   # a device whose override nobody passes
    strict.write_text(f"galleries: [{out}]\nthresholds:\n  customers: {{max_distance: 0.05}}\n")

    def named(*args: str) -> list[str | None]:
        lines = [json.loads(line) for line in run(*args).stdout.splitlines()]
        return [f.get("person_id", (f.get("match") or {}).get("person_id"))
                for ln in lines for f in ln["faces"]]

    assert probe_dir.name in named("identify", "--config", str(device), str(probe))
    assert named("identify", "--config", str(strict), str(probe)) == [None]
    assert probe_dir.name in named("analyze", str(probe), "--config", str(device))
    assert named("analyze", str(probe), "--config", str(strict)) == [None]


@pytest.fixture(scope="module")
def replay_galleries(examples: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> dict[str, Path]:
    """miranda (in the Hamilton clip) and strangers to it (obama, biden)."""
    out = tmp_path_factory.mktemp("replay")
    for name, people in (("miranda", {"miranda": "lin-manuel-miranda.png"}),
                         ("strangers", {"obama": "obama.jpg", "biden": "biden.jpg"})):
        for person, photo in people.items():
            (out / name / person).mkdir(parents=True)
            (out / name / person / photo).write_bytes((examples / photo).read_bytes())
        run("gallery", "build", str(out / name), "--watchlist", "missing", "--out",
            str(out / f"{name}.npz"))
    return {name: out / f"{name}.npz" for name in ("miranda", "strangers")}


def _replay(*args: str) -> tuple[list[dict], list[dict]]:
    """(frame lines, track lines) of ``oneeye analyze``."""
    lines = [json.loads(line) for line in run("analyze", *args).stdout.splitlines()]
    return [ln for ln in lines if "frame" in ln], [ln for ln in lines if "track" in ln]


def test_analyze_decides_a_video_per_track_like_the_device(
        examples: Path, replay_galleries: dict[str, Path]) -> None:
    clip = str(examples / "short_hamilton_clip.mp4")
    frames, tracks = _replay(clip, "--fps-max", "5", "--gallery",
                             str(replay_galleries["miranda"]))
    accepted = [t for t in tracks if t["decision"] == "accepted"]
    # (Miranda leaves and returns within the clip: the device opens a track per stay, and
    # its per-person cooldown announces only the first.)
    assert accepted and {t["person_id"] for t in accepted} == {"miranda"}
    looks = [f for ln in frames for f in ln["faces"]]
    assert looks and all(isinstance(f["track"], int) for f in looks)
    # Every look keeps its own distance; the name appears only once the track is accepted
    # (the device needs min_looks looks first), and only on that track.
    assert all(f["match"]["distance"] is not None for f in looks)
    named = [f for f in looks if f["match"]["person_id"] is not None]
    assert named and {f["track"] for f in named} == {t["track"] for t in accepted}
    first = next(f for f in looks if f["track"] == accepted[0]["track"])
    assert first["match"]["person_id"] is None


def test_analyze_names_nobody_in_a_clip_of_strangers(
        examples: Path, replay_galleries: dict[str, Path]) -> None:
    frames, tracks = _replay(str(examples / "short_hamilton_clip.mp4"), "--fps-max", "5",
                             "--gallery", str(replay_galleries["strangers"]))
    assert tracks and all(t["decision"] != "accepted" and "person_id" not in t for t in tracks)
    looks = [f for ln in frames for f in ln["faces"]]
    assert looks and all(f["match"]["person_id"] is None for f in looks)
    assert all(f["match"]["distance"] is not None for f in looks)


def test_analyze_reads_every_frame_of_an_animated_gif(
        examples: Path, replay_galleries: dict[str, Path], tmp_path: Path) -> None:
    """An animated GIF is a video (not "a still", read as its first frame): every frame is
    analysed, at the times its frame durations give, and decided per track."""
    import cv2
    from PIL import Image

    cap = cv2.VideoCapture(str(examples / "short_hamilton_clip.mp4"))
    pictures = []
    for _ in range(24):
        ok, bgr = cap.read()
        assert ok
        pictures.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    cap.release()
    gif = tmp_path / "clip.gif"
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=80, loop=0)
    frames, tracks = _replay(str(gif), "--gallery", str(replay_galleries["miranda"]))
    assert [ln["frame"] for ln in frames] == list(range(24))
    assert frames[5]["media_time_s"] == pytest.approx(0.4)
    assert {t["person_id"] for t in tracks if t["decision"] == "accepted"} == {"miranda"}
