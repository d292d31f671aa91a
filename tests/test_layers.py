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


LAYERS = "OneEye layers"
NO_DASHBOARD = "The shared package never imports the dashboard app"


@pytest.mark.parametrize(("module", "statement", "contract", "named"), [
    # errors.py is the bottom layer: importing the edge's settings from it is upwards
    pytest.param("oneeye.errors", "import oneeye.edge.settings  # noqa", LAYERS,
                 "oneeye.errors -> oneeye.edge.settings", id="definition-imports-a-room"),
    # a lazy import inside a function is an import all the same
    pytest.param("oneeye.gallery.rule",
                 "def _sneaky() -> None:\n    from oneeye.local import stack  # noqa", LAYERS,
                 "oneeye.gallery.rule -> oneeye.local.stack", id="lazy-import-upwards"),
    # edge and cloud share a layer as independent rooms: they meet only over the wire
    pytest.param("oneeye.edge.comms.uplink", "import oneeye.cloud.common  # noqa", LAYERS,
                 "oneeye.edge.comms.uplink -> oneeye.cloud.common", id="edge-imports-cloud"),
    # only the (temporarily ignored) dashboard command may import the app; nothing else
    pytest.param("oneeye.commands.up", "import dashboard.settings  # noqa", NO_DASHBOARD,
                 "oneeye.commands.up -> dashboard.settings", id="oneeye-imports-dashboard"),
])
def test_a_forbidden_import_breaks_its_contract_by_name(tree_copy: Path, module: str,
                                                        statement: str, contract: str,
                                                        named: str) -> None:
    add_import(tree_copy, module, statement)
    result = lint_imports(tree_copy)
    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    assert named in result.stdout
