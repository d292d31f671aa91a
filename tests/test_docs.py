"""The README stays true: its configuration reference is generated from the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.paths import REPO


def test_configuration_reference_matches_the_settings_models() -> None:
    proc = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_readme_links_point_to_files_that_exist() -> None:
    import re

    text = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (REPO / target).exists(), f"README links to missing {target}"


def test_configuration_reference_holds_no_path_of_this_checkout() -> None:
    # CI checks the README in a clone elsewhere; an absolute default path from
    # the machine that ran `make docs` once made that check fail there.
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- config-reference:start -->")[1]
    block = block.split("<!-- config-reference:end -->")[0]
    assert str(REPO) not in block
    assert str(REPO.parent) not in block
    assert "<repo>/cloud/template.yaml" in block


def test_configuration_reference_ignores_the_callers_environment() -> None:
    import os

    env = dict(os.environ, ONEEYE_DATA="/somewhere/else", ONEEYE_LOCAL__SITE_ID="elsewhere")
    proc = subprocess.run([sys.executable, "scripts/gen_docs.py", "--check"], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_readme_config_error_example_is_what_the_cli_prints(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- config-error-example:start -->")[1]
    block = block.split("<!-- config-error-example:end -->")[0]
    expected = block.strip().removeprefix("```").removesuffix("```").strip("\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection:\n  upsampel: 2\n")
    gallery = tmp_path / "G.npz"
    gallery.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "oneeye.cli", "edge", "--source", str(tmp_path),
                           "--gallery", str(gallery), "--config", str(bad)], cwd=REPO,
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == expected


def test_cloud_readme_lists_every_lambda_variable() -> None:
    from oneeye.cloud.settings import FUNCTIONS

    text = (REPO / "cloud" / "README.md").read_text()
    for model in FUNCTIONS.values():
        for field in model.model_fields.values():
            assert f"| `{field.alias}` |" in text, field.alias
    for name in ("UPLOAD_URL_TTL_S", "UPLOAD_RATE_PER_MIN", "CUSTOMER_API_TIMEOUT_S",
                 "CUSTOMER_API_ATTEMPTS"):
        assert f"| `{name}` |" in text
