"""HttpApi ``POST /api/uploads`` → a presigned POST for a missing person's photo.

Logic: :mod:`oneeye.cloud.functions.upload_url` (auth, rate limit, case upsert, audit).
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api
from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import upload_url

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("upload_url", upload_url.url_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, lambda req: upload_url.create_upload(req, DEPS.get()),
                     name="upload_url")
