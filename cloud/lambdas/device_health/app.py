"""IoT rule (device health) → device_health. Logic: :mod:`oneeye.cloud.functions.device_health`."""

from __future__ import annotations

from typing import Any

from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import device_health

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("device_health", device_health.health_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return device_health.device_health(event, DEPS.get())
