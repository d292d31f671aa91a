"""HttpApi ``GET /api/uploads/{upload_id}`` → pending | accepted | rejected with the reason.

Logic: :mod:`oneeye.cloud.functions.upload_status`.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api
from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import upload_status

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("upload_status", upload_status.status_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, lambda req: upload_status.upload_status(req, DEPS.get()),
                     name="upload_status")
