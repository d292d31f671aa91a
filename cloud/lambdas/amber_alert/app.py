"""IoT rule (missing-person matches) → amber_alert.

Logic: :mod:`oneeye.cloud.functions.amber_alert`.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import amber_alert

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("amber_alert", amber_alert.amber_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return amber_alert.amber_alert(event, DEPS.get())
