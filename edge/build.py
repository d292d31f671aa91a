"""Custom GDK build (``gdk component build`` runs this from edge/).

Bundles the one ``oneeye`` package, ``main.py`` and a requirements file into
``greengrass-build/artifacts/<name>/<version>/oneeye-edge.zip`` and copies the recipe
to ``greengrass-build/recipes/``; ``gdk component publish`` then uploads the zip
and rewrites the artifact URI. Nothing is copied into the repository itself
(``greengrass-build/`` is gitignored). Usable without GDK: ``python3 edge/build.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ARTIFACT = "oneeye-edge.zip"
#: What the edge imports at run time (the cloud/dashboard extras stay out of the device).
REQUIREMENTS = [
    "numpy>=1.26", "Pillow>=10", "opencv-python-headless>=4.8", "dlib-bin>=19.24",
    "face_recognition_models>=0.3.0", "Click>=8", "pydantic>=2.6", "PyYAML>=6",
    "boto3>=1.34", "awsiotsdk>=1.21", "awscrt>=0.20",
]
EXCLUDE_DIRS = {"__pycache__", "local", "commands"}


def component() -> tuple[str, str]:
    config = json.loads((HERE / "gdk-config.json").read_text())
    ((name, spec),) = config["component"].items()
    return name, spec["version"]


def build(out: Path = HERE / "greengrass-build") -> Path:
    name, version = component()
    artifacts = out / "artifacts" / name / version
    recipes = out / "recipes"
    for d in (artifacts, recipes):
        d.mkdir(parents=True, exist_ok=True)
    target = artifacts / ARTIFACT
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(HERE / "main.py", "main.py")
        zf.writestr("requirements.txt", "\n".join(REQUIREMENTS) + "\n")
        for path in sorted((REPO / "oneeye").rglob("*")):
            rel = path.relative_to(REPO)
            if path.is_dir() or EXCLUDE_DIRS & set(rel.parts) or path.suffix == ".pyc":
                continue
            zf.write(path, str(rel))
    shutil.copy(HERE / "recipe.yaml", recipes / "recipe.yaml")
    return target


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "greengrass-build")
    print(f"built {built} ({built.stat().st_size // 1024} KiB)")
