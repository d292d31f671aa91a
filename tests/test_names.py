"""Names people type (issue 24 §8): every refusal of a camera, site, person or case name
says WHICH name and WHICH rule, at every entry point.

The grammar stays ASCII (``oneeye.types.ID_PATTERN``): ids are keys of MQTT topics, S3
keys, IoT thing attributes and URLs. ``Eingang-Süd`` on ``--source 'Eingang-Süd=<file>'``
was taken for part of a file name and failed with "no such video file"; now it is refused
as a camera name, with the rule and an ASCII spelling that passes (``Eingang-Sued``).
The same odd names go through the CLI's ``--source``, the edge settings' ``cameras`` map,
the fleet tool's ``--camera``/``--site`` and ``gallery build``'s person folders (here),
the dashboard's site names (``test_dashboard_desk.py``) and case ids at upload
(``test_amber_api.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from oneeye import gallery as gal
from oneeye import types
from oneeye.commands.edge import cameras_from_flags
from oneeye.config import validate
from oneeye.edge.device import fleet
from oneeye.edge.settings import DEFAULT_CAMERA_ID, EdgeSettings
from oneeye.errors import ConfigError
from oneeye.gallery.enrol import iter_photo_dir

ONEEYE = [sys.executable, "-m", "oneeye.cli"]

#: (name, the words of the rule it breaks, an ASCII spelling offered or None)
ODD = [
    ("Eingang-Süd", "'ü' is not allowed", "Eingang-Sued"),
    ("Zürich HB", "'ü', space are not allowed", "Zuerich-HB"),
    ("cam 1", "space is not allowed", "cam-1"),
    ("Łódź", "'Ł', 'ó', 'ź' are not allowed", "Lodz"),
    ("door#2", "'#' is not allowed", "door-2"),
    ("", "it is empty", None),
    ("-door", "it starts with '-'", "door"),
    ("d" * 129, "129 characters long (at most 128)", None),
]
#: Allowed by the grammar (banks key customers by e-mail-like ids).
FINE = ["door.left", "teller@branch-7", "MP-2026-0042", "a:b_c", "d" * 128]


@pytest.mark.parametrize(("name", "rule", "hint"), ODD)
def test_a_refusal_names_the_value_the_rule_and_a_spelling_that_passes(
        name: str, rule: str, hint: str | None) -> None:
    message = types.id_refusal("camera name", name)
    assert message is not None
    assert message.startswith("camera name " + repr(name if len(name) <= 60 else
                                                        name[:60] + "…"))
    assert rule in message and types.ID_RULE in message
    if hint is None:
        assert "e.g." not in message
    else:
        assert f"(e.g. {hint!r})" in message and types.is_id(hint)


@pytest.mark.parametrize("name", FINE)
def test_ids_with_dots_and_at_signs_are_accepted(name: str) -> None:
    assert types.id_refusal("camera name", name) is None


@pytest.mark.parametrize(("name", "rule", "hint"), ODD)
def test_source_flag_refuses_an_odd_camera_name_as_a_name(name: str, rule: str,
                                                          hint: str | None,
                                                          tmp_path: Path) -> None:
    video = tmp_path / "door.mp4"
    video.write_bytes(b"x")
    settings = EdgeSettings()
    with pytest.raises(click.BadParameter) as err:
        cameras_from_flags((f"{name}={video}",), settings)
    assert f"camera name {name[:60]!r}"[:40] in str(err.value) and rule in str(err.value)


@pytest.mark.parametrize("name", FINE)
def test_source_flag_takes_a_valid_name_and_leaves_urls_alone(name: str,
                                                             tmp_path: Path) -> None:
    settings = EdgeSettings()
    assert cameras_from_flags((f"{name}=clip.mp4",), settings) == {name: {"source": "clip.mp4"}}
    url = "rtsp://cam.local/stream?user=a"
    assert cameras_from_flags((url,), settings) == {DEFAULT_CAMERA_ID: {"source": url}}
    odd_file = tmp_path / "Süd=clip.mp4"          # an existing path is a path, '=' or not
    odd_file.write_bytes(b"x")
    assert cameras_from_flags((str(odd_file),), settings) == {
        DEFAULT_CAMERA_ID: {"source": str(odd_file)}}


def test_the_cli_says_it_is_the_camera_name_not_the_file(miranda_gallery: Path,
                                                         tmp_path: Path,
                                                         examples: Path) -> None:
    video = tmp_path / "clip.mp4"
    shutil.copy(examples / "short_hamilton_clip.mp4", video)
    proc = subprocess.run(
        [*ONEEYE, "edge", "--source", f"Eingang-Süd={video}", "--gallery",
         str(miranda_gallery), "--publish", "none"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "no such video file" not in proc.stderr
    assert "camera name 'Eingang-Süd'" in proc.stderr and "'ü' is not allowed" in proc.stderr
    assert "Eingang-Sued" in proc.stderr


@pytest.mark.parametrize(("name", "rule", "hint"), ODD)
def test_the_settings_cameras_map_refuses_an_odd_name(name: str, rule: str,
                                                      hint: str | None) -> None:
    with pytest.raises(ConfigError) as err:
        validate(EdgeSettings, {"cameras": {name: {"source": "x.mp4"}}}, root="edge")
    assert f"edge.cameras.{name}" in str(err.value) and rule in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(EdgeSettings, {"site_id": name}, root="edge")
    assert "edge.site_id" in str(err.value) and rule in str(err.value)


def test_the_fleet_tool_refuses_odd_camera_and_site_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = [f"--shadow-out={tmp_path / 's.json'}", f"--attributes-out={tmp_path / 'a.json'}"]
    assert fleet.main(["device", "--site", "branch-1", "--camera",
                       "Eingang-Süd=rtsp://cam.local/s", *out]) == 2
    err = capsys.readouterr().err
    assert "Eingang-Süd" in err and "'ü' is not allowed" in err and "Eingang-Sued" in err
    assert fleet.main(["device", "--site", "Zürich HB", "--camera", "door=rtsp://h/s", *out]) == 2
    err = capsys.readouterr().err
    assert "'Zürich HB'" in err and "space are not allowed" in err
    assert not (tmp_path / "s.json").exists()


def test_gallery_build_names_each_refused_person_folder(tmp_path: Path,
                                                        examples: Path) -> None:
    for person in ("Zoë Müller", "ok-person", "x" * 129):
        (tmp_path / "src" / person).mkdir(parents=True)
        shutil.copy(examples / "obama.jpg", tmp_path / "src" / person / "1.jpg")
    g, report = gal.enrol(iter_photo_dir(tmp_path / "src"), watchlist="customers")
    assert [p for p, _ in report.accepted] == ["ok-person"] and list(g.person_ids) == [
        "ok-person"]
    by_person = {r.person_id: r for r in report.rejected}
    assert by_person["Zoë Müller"].reason == "invalid_person_id"
    assert "person id 'Zoë Müller'" in by_person["Zoë Müller"].message
    assert "'ë', space, 'ü' are not allowed" in by_person["Zoë Müller"].message
    assert "(e.g. 'Zoe-Mueller')" in by_person["Zoë Müller"].message
    assert "129 characters long" in by_person["x" * 129].message
