"""IoT rule (device health) → device_health. Logic: :mod:`oneeye.cloud.desk`."""

from __future__ import annotations

import logging
from typing import Any

from oneeye.cloud import desk

logging.getLogger().setLevel(logging.INFO)
_deps: desk.DeskDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _deps
    _deps = _deps or desk.health_from_env()
    return desk.device_health(event, _deps)
