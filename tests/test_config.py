"""config.py: strict settings with key-path errors, env and file layering."""

from __future__ import annotations

from pathlib import Path

import pytest

from oneeye.config import load_settings, reference_markdown
from oneeye.edge.settings import EdgeSettings
from oneeye.errors import ConfigError


def test_defaults_validate() -> None:
    s = load_settings(EdgeSettings)
    assert s.cooldown_s == 60 and s.snapshot == {"customers": False, "missing": True}
    assert s.topic("matches") == "oneeye/devices/edge-local/matches"


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("detection:\n  upsampel: 1\n")
    with pytest.raises(ConfigError, match=r"edge\.detection\.upsampel"):
        load_settings(EdgeSettings, path=cfg, root="edge")


def test_out_of_bounds_value_names_key_and_bound(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.json"
    cfg.write_text('{"cooldown_s": -5}')
    with pytest.raises(ConfigError, match=r"cooldown_s: Input should be greater than or equal"):
        load_settings(EdgeSettings, path=cfg)


def test_layering_file_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    cfg.write_text("site_id: from-file\ncooldown_s: 1\ndevice_id: from-file\n")
    env = {"ONEEYE_EDGE__COOLDOWN_S": "2", "ONEEYE_EDGE__DETECTION__UPSAMPLE": "0",
           "ONEEYE_EDGE__DEVICE_ID": "from-env"}
    s = load_settings(EdgeSettings, path=cfg, env_prefix="ONEEYE_EDGE", environ=env,
                      overrides={"device_id": "from-flag", "site_id": None})
    assert (s.site_id, s.cooldown_s, s.device_id) == ("from-file", 2, "from-flag")
    assert s.detection.upsample == 0


def test_bad_publish_url_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"publish\.url"):
        load_settings(EdgeSettings, overrides={"publish": {"url": "http://x"}})
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(EdgeSettings, path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(EdgeSettings, path=bad)


def test_settings_file_that_is_not_utf8_or_is_a_directory(tmp_path: Path) -> None:
    latin1 = tmp_path / "edge.yaml"
    latin1.write_bytes("site_id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"edge\.yaml: settings file is not UTF-8 text"):
        load_settings(EdgeSettings, path=latin1)
    with pytest.raises(ConfigError, match=r"cannot read settings file \(Is a directory\)"):
        load_settings(EdgeSettings, path=tmp_path)


def test_field_docstrings_are_the_reference_descriptions() -> None:
    """Settings fields are documented by the docstring under them; the reference shows it."""
    table = reference_markdown(EdgeSettings, prefix="")
    row = next(line for line in table.splitlines() if line.startswith("| `detection.sweep_s` |"))
    assert "start a scan of the whole frame this often" in row and "\n" not in row


def test_reference_table_lists_nested_keys() -> None:
    table = reference_markdown(EdgeSettings, prefix="edge.")
    assert "| `edge.detection.upsample` |" in table and "| `edge.cooldown_s` |" in table
