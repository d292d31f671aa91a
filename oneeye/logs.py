"""Log configuration for entry points (library modules only call ``getLogger``).

Both formats pass every finished line (message and traceback) through
:func:`oneeye.types.redact_url`: the places that log a camera or broker URL already mask it,
and this is the net under them for a URL inside an exception text (an OpenCV or awscrt
error quoting its URL) — a log is shared for support, so it must never carry a password.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from oneeye.types import format_time, redact_url


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": format_time(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_url(record.getMessage()),
        }
        if record.exc_info:
            out["exc"] = redact_url(self.formatException(record.exc_info))
        return json.dumps(out)


class PlainFormatter(logging.Formatter):
    """``HH:MM:SSZ LEVEL logger: message`` in UTC, URL user-info masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)sZ %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self.converter = time.gmtime  # printed times are UTC, like every stored one

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))


def configure(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "amqtt", "transitions",
                  "engineio", "socketio", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
