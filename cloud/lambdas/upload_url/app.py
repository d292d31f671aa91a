"""HttpApi ``POST /api/uploads`` → a presigned POST for a missing person's photo.

Logic: :mod:`oneeye.cloud.uploads` (auth, rate limit, case upsert, audit).
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import api, uploads
from oneeye.cloud.common import configure_lambda_logging

configure_lambda_logging()
_deps: uploads.UploadDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api.serve(event, _work, name="upload_url")


def _work(req: api.Request) -> dict[str, Any]:
    # Deps are built inside serve() so a missing setting is a logged 500, not a crash.
    global _deps
    _deps = _deps or uploads.uploads_from_env()
    return uploads.create_upload(req, _deps)
