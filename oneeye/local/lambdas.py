"""Load and call the Lambda handlers named in the template, in this process.

Each ``cloud/lambdas/<name>/app.py`` is imported under a unique module name
(they are all called ``app``) so several coexist. The context object carries
the attributes handlers commonly read; nothing else of the Lambda runtime is
imitated.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oneeye.errors import ConfigError
from oneeye.local.template import Function

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    timeout_s: float = 30.0
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


class Lambdas:
    """Handlers by logical id, imported once on first use (thread-safe)."""

    def __init__(self, functions: dict[str, Function]) -> None:
        self._functions = functions
        self._loaded: dict[str, Handler] = {}
        self._lock = threading.Lock()

    def handler(self, function_id: str) -> Handler:
        with self._lock:
            if function_id not in self._loaded:
                self._loaded[function_id] = _import(self._functions[function_id])
            return self._loaded[function_id]

    def invoke(self, function_id: str, event: Any) -> Any:
        """Call the handler; exceptions propagate (callers decide retry vs dead letter)."""
        fn = self.handler(function_id)
        ctx = LambdaContext(function_id)
        t0 = time.perf_counter()
        try:
            return fn(event, ctx)
        finally:
            log.debug("%s took %.1f ms", function_id, (time.perf_counter() - t0) * 1000)


def _import(fn: Function) -> Handler:
    if not fn.module_file.is_file():
        raise ConfigError(f"function {fn.logical_id}: handler file {fn.module_file} not found")
    name = f"oneeye_lambda_{fn.logical_id}"
    spec = importlib.util.spec_from_file_location(name, fn.module_file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"function {fn.logical_id}: cannot import {fn.module_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, fn.function, None)
    if not callable(handler):
        raise ConfigError(f"function {fn.logical_id}: {fn.module_file} has no {fn.function}()")
    return handler  # type: ignore[no-any-return]
