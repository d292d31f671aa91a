"""Where the suite finds the repository and its test data (``../shared/data``, never
downloaded; ``ONEEYE_DATA`` points elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ONEEYE_DATA", REPO.parent / "shared" / "data"))
