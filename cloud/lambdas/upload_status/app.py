"""HttpApi ``GET /api/uploads/{upload_id}`` → pending | accepted | rejected with the reason.

Logic: :mod:`oneeye.cloud.functions.uploads`.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api
from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import uploads

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("upload_status", lambda: uploads.uploads_from_env(status_only=True))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, lambda req: uploads.upload_status(req, DEPS.get()),
                     name="upload_status")
