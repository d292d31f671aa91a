"""IoT rule (customers matches) → enrich_match.

Logic: :mod:`oneeye.cloud.functions.enrich_match`.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import enrich_match

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("enrich_match", enrich_match.enrich_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return enrich_match.enrich_match(event, DEPS.get())
