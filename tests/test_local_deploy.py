"""deploy.sh: help, and it never reaches AWS without the explicit flags and tools."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"PATH": path} if path is not None else {})}
    return subprocess.run([str(REPO / "deploy.sh"), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=REPO, check=False)


def test_help_lists_the_three_commands() -> None:
    res = run("--help")
    assert res.returncode == 0
    for cmd in ("./deploy.sh local", "./deploy.sh aws --stack NAME", "./deploy.sh check"):
        assert cmd in res.stdout


@pytest.mark.parametrize("args", [
    (), ("bogus",), ("aws",), ("aws", "--stack", "s"), ("aws", "--stack", "s", "--region", "r"),
    ("aws", "--stack", "s", "--region", "r", "--thing-group", "g"),   # no customer API URL
    ("aws", "--stack", "s", "--unknown", "x"),
])
def test_aws_needs_every_explicit_flag(args: tuple[str, ...]) -> None:
    res = run(*args)
    assert res.returncode == 2
    assert "==>" not in res.stderr  # no step started


def test_aws_without_the_sam_cli_fails_clearly(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "python3"):  # a PATH without sam/aws/gdk
        real = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                              text=True, check=True).stdout.strip()
        (bin_dir / tool).symlink_to(real)
    res = run("aws", "--stack", "s", "--region", "eu-west-1", "--thing-group", "g",
              "--customer-api-url", "https://bank.example", path=str(bin_dir))
    assert res.returncode == 2
    assert "'sam' CLI not found" in res.stderr and "==>" not in res.stderr
