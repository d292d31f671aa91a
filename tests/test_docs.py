"""The README stays true: its configuration reference is generated from the models."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


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
