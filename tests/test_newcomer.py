"""The newcomer's first ten minutes, as a test: a fresh clone, exactly the README's command.

Slow on purpose: the clone installs its own .venv (pip's cache makes that minutes, not
tens of minutes), generates the demo video, brings the local stack up and runs the
edge for 90 s. It passes only if customer arrivals really reached the dashboard.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from oneeye.local.settings import PORT_FLAGS
from tests.net_support import free_port
from tests.paths import DATA, REPO

pytestmark = pytest.mark.slow


def test_fresh_clone_deploy_local_delivers_desk_events(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [ln.split("#")[0].strip() for ln in quick_start.splitlines() if ln.strip()
                and not ln.startswith("bash")]
    assert commands == ["./deploy.sh local", "make test"], commands

    # The README's layout: the repo with shared/ beside it.
    clone = tmp_path / "main"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(DATA)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ONEEYE_"))}
    env.pop("VIRTUAL_ENV", None)
    # Free ports instead of the defaults (8000, 18830 …): other runs share this machine.
    ports = {name: free_port() for name in PORT_FLAGS}
    env.update({f"ONEEYE_LOCAL__PORTS__{name.upper()}": str(p) for name, p in ports.items()})
    proc = subprocess.run(["./deploy.sh", "local", "--duration", "90"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1500, check=False)
    out = proc.stdout + proc.stderr
    (REPO / "tests" / "artifacts").mkdir(parents=True, exist_ok=True)
    (REPO / "tests" / "artifacts" / "newcomer.log").write_text(out)
    assert proc.returncode == 0, out[-4000:]
    assert (clone / ".venv" / "bin" / "oneeye").exists(), "deploy.sh did not install .venv"
    assert "OneEye local stack is up" in out
    assert f"http://127.0.0.1:{ports['dashboard']}" in out
    assert re.search(r"dashboard login\s+\S+ / \S+", out), "no demo login printed"
    found = re.search(r"desk events delivered this run: (.*)", out)
    assert found, out[-4000:]
    kinds = dict(kv.split("=") for kv in found.group(1).split() if "=" in kv)
    assert int(kinds.get("customer_arrived", 0)) >= 1, found.group(0)
