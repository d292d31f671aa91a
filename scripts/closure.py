"""The ``oneeye`` modules an entry script imports, read from the source (no import runs).

Shared by the two packagers, ``edge/build.py`` (the Greengrass artifact) and
``cloud/build.py`` (each Lambda zip): a package holds what its entry point imports,
directly or through other modules, and nothing else, so a new import is packaged
without a list to keep and the local stack, the CLI or the other side never ride along.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module_file(name: str, repo: Path) -> Path | None:
    base = repo.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def modules(entry: Path, repo: Path = REPO) -> list[Path]:
    """Every ``oneeye`` source file ``entry`` imports, transitively (function-level
    imports included), with the ``__init__.py`` of each package on the way."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] != "oneeye":
                    continue
                for i in range(1, len(parts) + 1):
                    found = _module_file(".".join(parts[:i]), repo)
                    if found is not None:
                        todo.append(found)
    return sorted(p for p in seen if p != entry)
