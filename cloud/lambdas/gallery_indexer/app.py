"""SQS (S3 uploads/ notifications, removal commands) → gallery_indexer.

Logic: :mod:`oneeye.cloud.indexer`. A raised exception leaves the message on the
queue for a retry (then the dead-letter queue); rejected photos return normally.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud import indexer
from oneeye.cloud.common import configure_lambda_logging

configure_lambda_logging()
_deps: indexer.IndexerDeps | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _deps
    _deps = _deps or indexer.indexer_from_env()
    return {"results": indexer.handle(event, _deps)}
