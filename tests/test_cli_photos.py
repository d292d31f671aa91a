"""Commands that read photos: every file is used or reported, and progress shows only on a TTY.

Runs the real ``oneeye`` CLI as a subprocess on the gallery-phone-formats field case.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ONEEYE = [sys.executable, "-m", "oneeye.cli"]
CASE = Path(__file__).resolve().parents[2] / "shared" / "cases" / "gallery-phone-formats"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64


def run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*ONEEYE, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def phone_formats(tmp_path: Path) -> Path:
    """The field case's three people, plus what a real folder also holds."""
    src = tmp_path / "src"
    shutil.copytree(CASE / "src", src)
    (src / "C-1005").mkdir()
    (src / "C-1005" / "IMG_0002.HEIC").write_bytes(HEIC)     # iPhone default format
    (src / "C-1005" / "notes.txt").write_text("prefers branch 12")
    (src / "README.txt").write_text("photos by customer id")
    return src


def test_gallery_build_enrols_every_phone_format_and_reports_the_rest(
        phone_formats: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.npz"
    proc = run("gallery", "build", str(phone_formats), "--watchlist", "customers",
               "--out", str(out), "--json", "--jitters", "1")
    summary = json.loads(proc.stdout)
    assert summary["manifest"]["identities"] == 3
    assert sorted(a["person_id"] for a in summary["accepted"]) == ["C-1001", "C-1003", "C-1004"]
    assert [(r["person_id"], r["reason"]) for r in summary["rejected"]] == [
        ("C-1005", "unreadable")]
    assert "HEIC is not supported; export as JPEG" in summary["rejected"][0]["message"]
    assert {(Path(s["path"]).name, s["reason"]) for s in summary["skipped"]} == {
        ("notes.txt", "not_an_image_name"), ("README.txt", "not_in_person_folder")}
    assert summary["not_enrolled"] == ["C-1005"]
    assert proc.stderr == ""  # not a TTY: no progress bar, nothing else


def test_gallery_build_human_output_names_every_file_and_person(
        phone_formats: Path, tmp_path: Path) -> None:
    proc = run("gallery", "build", str(phone_formats), "--watchlist", "customers",
               "--out", str(tmp_path / "g.npz"), "--jitters", "1")
    text = proc.stdout
    assert "3 identities" in text and "1 rejected, 2 other files skipped" in text
    assert "IMG_0002.HEIC: unreadable" in text and "HEIC is not supported" in text
    assert "skipped " + str(phone_formats / "C-1005" / "notes.txt") in text
    assert "skipped " + str(phone_formats / "README.txt") in text
    assert "not enrolled (no usable photo): C-1005" in text
    assert "enrolling" not in proc.stderr


def test_progress_bar_shows_on_a_terminal(phone_formats: Path, tmp_path: Path) -> None:
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    proc = subprocess.Popen([*ONEEYE, "gallery", "build", str(phone_formats), "--watchlist",
                             "customers", "--out", str(tmp_path / "g.npz"), "--jitters", "1"],
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen: list[bytes] = []

    def drain() -> None:  # keep the pty from filling up while the command runs
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stdout, _ = proc.communicate(timeout=600)
    reader.join(timeout=30)
    os.close(master)
    err = b"".join(seen).decode(errors="replace")
    assert proc.returncode == 0
    assert "enrolling" in err and "4/4" in err
    assert b"enrolling" not in stdout  # results only on stdout


def test_identify_reports_each_unusable_image(tmp_path: Path) -> None:
    gallery = tmp_path / "g.npz"
    run("gallery", "build", str(CASE / "src"), "--watchlist", "customers", "--out",
        str(gallery), "--jitters", "1")
    heic = tmp_path / "IMG_0003.heic"
    heic.write_bytes(HEIC)
    photos = sorted((CASE / "src").glob("*/*"))
    proc = run("identify", "--gallery", str(gallery), *map(str, photos), str(heic))
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["faces"][0]["person_id"] for line in lines[:3]] == ["C-1001", "C-1003",
                                                                     "C-1004"]
    assert lines[3]["reason"] == "unsupported_format"
    assert "HEIC is not supported" in lines[3]["error"]
    assert "1 of 4 images skipped" in proc.stderr


def test_analyze_reads_a_phone_format_still_as_one_frame() -> None:
    photo = CASE / "src" / "C-1001" / "portrait.webp"
    proc = run("analyze", str(photo))
    (line,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert line["frame"] == 0 and len(line["faces"]) == 1
