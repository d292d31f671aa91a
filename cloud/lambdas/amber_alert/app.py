"""IoT rule (missing-person matches) → amber_alert. Logic: :mod:`oneeye.cloud.amber`."""

from __future__ import annotations

import logging
from typing import Any

from oneeye.cloud import amber

logging.getLogger().setLevel(logging.INFO)
_deps: amber.AmberDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _deps
    _deps = _deps or amber.amber_from_env()
    return amber.amber_alert(event, _deps)
