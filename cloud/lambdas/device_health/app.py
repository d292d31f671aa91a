"""IoT rule (device health) → device_health. Logic: :mod:`oneeye.cloud.desk`."""

from __future__ import annotations

from typing import Any

from oneeye.cloud import desk
from oneeye.cloud.common import configure_lambda_logging

configure_lambda_logging()
_deps: desk.DeskDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _deps
    _deps = _deps or desk.health_from_env()
    return desk.device_health(event, _deps)
