"""SQS (S3 uploads/ notifications, removal commands) → gallery_indexer.

Logic: :mod:`oneeye.cloud.functions.gallery_indexer`. A raised exception leaves the message on
the queue for a retry (then the dead-letter queue); rejected photos return normally.
"""

from __future__ import annotations

from typing import Any

from oneeye.cloud.common import ColdStart, configure_lambda_logging
from oneeye.cloud.functions import gallery_indexer

configure_lambda_logging()
# Cold start: settings validated, clients built, once per container.
DEPS = ColdStart("gallery_indexer", gallery_indexer.indexer_from_env)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"results": gallery_indexer.handle(event, DEPS.get())}
