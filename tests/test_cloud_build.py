"""cloud/build.py: each Lambda zip holds its handler and what that handler imports.

Each built folder is imported the way Lambda imports it: ``import app`` with only the
folder (and, standing in for the zip's installed requirements and the runtime's
boto3, the virtualenv's site-packages) on ``sys.path`` — no repository, no editable
install — so a module the closure missed fails here, not at the first invocation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ZIP_FUNCTIONS = ("amber_alert", "cases", "device_health", "device_presence", "enrich_match",
                 "upload_status", "upload_url")
#: Imports ``app`` from the folder alone; prints where ``oneeye`` came from.
_IMPORT_APP = (
    "import sys; sys.path[:] = [sys.argv[1], *sys.argv[2:], "
    "*[p for p in sys.path if p and 'site-packages' not in p]]; "
    "import app, oneeye; print(oneeye.__file__); print(callable(app.handler))"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lambdas")
    proc = subprocess.run([sys.executable, str(REPO / "cloud" / "build.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def test_every_zip_function_is_built(built: Path) -> None:
    assert sorted(p.name for p in built.iterdir()) == list(ZIP_FUNCTIONS)


@pytest.mark.parametrize("name", ZIP_FUNCTIONS)
def test_a_zip_holds_its_own_function_and_never_the_simulator(built: Path, name: str) -> None:
    d = built / name
    files = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    assert {"app.py", "requirements.txt", f"oneeye/cloud/functions/{name}.py"} <= files
    assert not any(f.startswith(("oneeye/local/", "oneeye/commands/", "oneeye/edge/"))
                   for f in files)
    others = {f"oneeye/cloud/functions/{n}.py" for n in ZIP_FUNCTIONS if n != name}
    assert not files & others  # another Lambda's module is not this one's business
    assert "oneeye/cloud/backoffice.py" not in files  # the dashboard's facade stays out
    assert not any("__pycache__" in f for f in files)
    assert "pydantic" in (d / "requirements.txt").read_text()


@pytest.mark.parametrize("name", ZIP_FUNCTIONS)
def test_a_built_handler_imports_from_its_folder_alone(built: Path, name: str) -> None:
    d = built / name
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {k: v for k, v in os.environ.items()
           if k != "PYTHONPATH" and not k.endswith(("_TABLE", "_ARN", "_URL", "BUCKET"))}
    # -S: no site module, so no .pth file (the editable install) puts the repository back.
    proc = subprocess.run([sys.executable, "-S", "-c", _IMPORT_APP, str(d), *paths],
                          capture_output=True, text=True, timeout=120, cwd=d, env=env)
    assert proc.returncode == 0, proc.stderr
    origin, handler = proc.stdout.split()
    assert Path(origin).is_relative_to(d) and handler == "True"
