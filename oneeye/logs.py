"""Log configuration for entry points (library modules only call ``getLogger``)."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from oneeye.types import format_time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": format_time(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def configure(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        human = logging.Formatter("%(asctime)sZ %(levelname)-7s %(name)s: %(message)s",
                                  "%H:%M:%S")
        human.converter = time.gmtime  # printed times are UTC, like every stored one
        handler.setFormatter(human)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "amqtt", "transitions",
                  "engineio", "socketio", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
