"""The layer contracts (``.importlinter``, run by ``make lint``) hold on the tree, and a
module that imports upwards, across the edge/cloud wall, or into the dashboard breaks
them by name.

The broken cases run the same config on a copy of ``oneeye/`` and ``dashboard/`` in a
temporary directory with one import added, so the real tree is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

CONFIG = REPO / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the repository's contracts on the packages under ``root`` (no grimp cache)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """``oneeye/`` and ``dashboard/`` (Python files only) copied under tmp_path."""
    for package in ("oneeye", "dashboard"):
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static", "templates"))
    return tmp_path


def add_import(root: Path, module: str, statement: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}\n")


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OneEye layers KEPT" in result.stdout
    assert "The shared package never imports the dashboard app KEPT" in result.stdout
    assert "0 broken" in result.stdout


def test_a_definition_importing_a_room_breaks_the_layers(tree_copy: Path) -> None:
    """errors.py is the bottom layer: importing the edge's settings from it is upwards."""
    add_import(tree_copy, "oneeye.errors", "import oneeye.edge.settings  # noqa")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "OneEye layers BROKEN" in result.stdout
    assert "oneeye.errors -> oneeye.edge.settings" in result.stdout


def test_a_function_level_import_cannot_hide_a_wrong_direction(tree_copy: Path) -> None:
    """A lazy import inside a function is an import all the same."""
    add_import(tree_copy, "oneeye.gallery.rule",
               "def _sneaky() -> None:\n    from oneeye.local import stack  # noqa")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "OneEye layers BROKEN" in result.stdout
    assert "oneeye.gallery.rule -> oneeye.local.stack" in result.stdout


def test_the_edge_may_not_import_the_cloud(tree_copy: Path) -> None:
    """edge and cloud share a layer as independent rooms: they meet only over the wire."""
    add_import(tree_copy, "oneeye.edge.comms.uplink", "import oneeye.cloud.common  # noqa")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "OneEye layers BROKEN" in result.stdout
    assert "oneeye.edge.comms.uplink -> oneeye.cloud.common" in result.stdout


def test_the_shared_package_may_not_import_the_dashboard(tree_copy: Path) -> None:
    """Only the (temporarily ignored) dashboard command may; any other module breaks it."""
    add_import(tree_copy, "oneeye.commands.up", "import dashboard.settings  # noqa")
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert "The shared package never imports the dashboard app BROKEN" in result.stdout
    assert "oneeye.commands.up -> dashboard.settings" in result.stdout
