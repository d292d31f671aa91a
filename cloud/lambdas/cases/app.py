"""HttpApi ``GET /api/cases`` and ``POST /api/cases/{case_id}/close``.

Logic: :mod:`oneeye.cloud.functions.cases` (closing queues the gallery removal command).
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api
from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import cases

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("cases", cases.cases_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, lambda req: cases.route(req, DEPS.get()), name="cases")
