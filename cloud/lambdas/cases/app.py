"""HttpApi ``GET /api/cases`` and ``POST /api/cases/{case_id}/close``.

Logic: :mod:`oneeye.cloud.cases` (closing queues the gallery removal command).
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api, cases
from oneeye.cloud.common import configure_lambda_logging

configure_lambda_logging()
_deps: cases.CasesDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, _work, name="cases")


def _work(req: api.Request) -> dict[str, Any]:
    # Deps are built inside serve() so a missing setting is a logged 500, not a crash.
    global _deps
    _deps = _deps or cases.cases_from_env()
    return cases.route(req, _deps)
