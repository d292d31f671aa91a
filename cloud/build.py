#!/usr/bin/env python3
"""Assemble each zip Lambda into build/lambdas/<name>/ (the template's CodeUri).

Every function gets its thin ``app.py``, the ``oneeye`` modules that handler imports
(directly or through other modules, read from the source by ``scripts/closure.py``,
as the edge artifact is: never the local stack, the CLI or another function's
module) and a ``requirements.txt`` that ``sam build`` installs for the Lambda
platform. Then run, from cloud/:
``sam build && sam deploy --guided`` (``./deploy.sh aws`` does both).

gallery_indexer is not assembled here: it is a container image built by
``sam build`` from cloud/lambdas/gallery_indexer/Dockerfile with the repository
as its context.

Usage: python cloud/build.py [--out build/lambdas] [NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from closure import modules  # noqa: E402  (scripts/ is not a package on the path)

LAMBDAS = REPO / "cloud" / "lambdas"
IMAGE_FUNCTIONS = {"gallery_indexer"}
#: boto3 is in the Lambda runtime; pydantic (and its compiled core) is not.
BASE_REQUIREMENTS = ["pydantic>=2.6,<3", "PyYAML>=6"]


def zip_functions() -> list[str]:
    return sorted(p.name for p in LAMBDAS.iterdir()
                  if (p / "app.py").is_file() and p.name not in IMAGE_FUNCTIONS)


def build(name: str, out: Path) -> Path:
    src = LAMBDAS / name
    if not (src / "app.py").is_file():
        raise SystemExit(f"error: no handler at {src / 'app.py'}")
    dest = out / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(src / "app.py", dest / "app.py")
    for path in modules(src / "app.py"):
        target = dest / path.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    reqs = list(BASE_REQUIREMENTS)
    extra = src / "requirements.txt"
    if extra.is_file():
        reqs += [ln.strip() for ln in extra.read_text().splitlines()
                 if ln.strip() and not ln.startswith("#")]
    (dest / "requirements.txt").write_text("\n".join(dict.fromkeys(reqs)) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "lambdas")
    parser.add_argument("names", nargs="*", help="functions to build (default: all zip ones)")
    args = parser.parse_args(argv)
    names = args.names or zip_functions()
    for name in names:
        if name in IMAGE_FUNCTIONS:
            print(f"skip {name}: container image, built by sam build", file=sys.stderr)
            continue
        dest = build(name, args.out)
        print(f"built {name} -> {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
