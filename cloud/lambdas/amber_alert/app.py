"""IoT rule (missing-person matches) → amber_alert. Logic: :mod:`oneeye.cloud.amber`."""

from __future__ import annotations

from typing import Any

from oneeye.cloud import amber
from oneeye.cloud.common import configure_lambda_logging

configure_lambda_logging()
_deps: amber.AmberDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _deps
    _deps = _deps or amber.amber_from_env()
    return amber.amber_alert(event, _deps)
