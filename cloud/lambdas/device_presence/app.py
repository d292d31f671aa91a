"""IoT lifecycle rule and the sweep schedule → device_presence.

Logic: :mod:`oneeye.cloud.functions.device_presence`.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import device_presence

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("device_presence", device_presence.presence_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return device_presence.device_presence(event, DEPS.get())
