"""Render every diagrams/*.dot to SVG and PNG with Graphviz (`make diagrams`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    dot = shutil.which("dot")
    if dot is None:
        print("error: Graphviz 'dot' not found; install Debian's 'graphviz' package",
              file=sys.stderr)
        return 1
    for source in sorted(HERE.glob("*.dot")):
        for fmt in ("svg", "png"):
            out = source.with_suffix(f".{fmt}")
            subprocess.run([dot, f"-T{fmt}", "-Gdpi=110", str(source), "-o", str(out)], check=True)
            print(f"rendered {out.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
