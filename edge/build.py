"""Custom GDK build (``gdk component build`` runs this from edge/).

Bundles ``main.py``, the part of the ``oneeye`` package the device runs and a
requirements file into ``greengrass-build/artifacts/<name>/<version>/oneeye-edge.zip``
and copies the recipe to ``greengrass-build/recipes/``; ``gdk component publish`` then
uploads the zip and rewrites the artifact URI. Nothing is copied into the repository
itself (``greengrass-build/`` is gitignored). Usable without GDK: ``python3 edge/build.py``.

The artifact holds what the device runs and nothing else:

- the modules: every ``oneeye`` module that ``main.py`` imports, directly or through
  other modules (read from the source, so a new import is bundled without a list to
  keep; the cloud, the local stack, the CLI and the video synthesiser stay out);
- the requirements: the ``edge`` extra of ``pyproject.toml``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "scripts"))
from closure import modules  # noqa: E402  (scripts/ is not a package on the path)

ARTIFACT = "oneeye-edge.zip"
ENTRY = HERE / "main.py"


def component() -> tuple[str, str]:
    config = json.loads((HERE / "gdk-config.json").read_text())
    ((name, spec),) = config["component"].items()
    return name, spec["version"]


def requirements() -> list[str]:
    """The ``edge`` extra of ``pyproject.toml``: the device's third-party packages."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["edge"])


def build(out: Path = HERE / "greengrass-build") -> Path:
    name, version = component()
    artifacts = out / "artifacts" / name / version
    recipes = out / "recipes"
    for d in (artifacts, recipes):
        d.mkdir(parents=True, exist_ok=True)
    target = artifacts / ARTIFACT
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(ENTRY, "main.py")
        zf.writestr("requirements.txt", "\n".join(requirements()) + "\n")
        for path in modules(ENTRY):
            zf.write(path, path.relative_to(REPO).as_posix())
    shutil.copy(HERE / "recipe.yaml", recipes / "recipe.yaml")
    return target


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "greengrass-build")
    print(f"built {built} ({built.stat().st_size // 1024} KiB)")
