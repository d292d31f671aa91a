"""``oneeye NAME …`` commands of other packages: the ``oneeye.commands`` entry points.

``oneeye dashboard`` lives in ``dashboard/cli.py``; the ``oneeye`` package finds it by
name and imports it only when it runs, so ``oneeye`` never imports the dashboard.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib

import click
import pytest
from click.testing import CliRunner

from oneeye.cli import BUNDLED_PLUGINS, PLUGIN_GROUP, cli, load_command, plugin_commands
from oneeye.errors import ConfigError
from tests.paths import REPO


def test_the_dashboard_command_is_found_by_name() -> None:
    assert plugin_commands()["dashboard"] == "dashboard.cli:dashboard_group"
    group = load_command(plugin_commands()["dashboard"])
    assert isinstance(group, click.Group) and group.name == "dashboard"
    assert {"run", "add-user"} <= set(group.commands)


def test_the_entry_point_and_the_bundled_fallback_name_the_same_command() -> None:
    """An install made before the entry point existed still finds the command, and the
    same one a fresh install registers."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][PLUGIN_GROUP] == BUNDLED_PLUGINS


@pytest.mark.parametrize("target", ["oneeye.cli:main", "oneeye.cli:nothing_here", "oneeye.cli"])
def test_a_plugin_that_is_not_a_click_command_is_a_clear_error(target: str) -> None:
    with pytest.raises(ConfigError, match="not a click command"):
        load_command(target)


def test_oneeye_help_lists_the_dashboard_and_runs_it() -> None:
    runner = CliRunner()
    listing = runner.invoke(cli, ["--help"])
    assert listing.exit_code == 0 and "dashboard" in listing.output
    help_of_run = runner.invoke(cli, ["dashboard", "run", "--help"])
    assert help_of_run.exit_code == 0 and "--database-url" in help_of_run.output
    unknown = runner.invoke(cli, ["no-such-command"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output


def test_loading_the_oneeye_cli_imports_no_dashboard() -> None:
    code = ("import sys, oneeye.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dashboard'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
