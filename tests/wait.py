"""The suite's one way to wait: poll a condition until it holds or a deadline passes.

Tests never sleep a fixed time before asserting. They wait for the observable thing the
assertion is about (a message received, a row written, a state reached) with
:func:`wait_until`, whose timeout is a generous upper bound for a loaded CI machine and
costs nothing when the condition already holds. Time that a test needs to *pass* (leases,
cooldowns, backoffs) is injected as a clock into the code under test instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float = 30.0, what: str = "a condition",
               *, interval_s: float = 0.02, context: Callable[[], str] | None = None) -> T:
    """Call ``predicate`` every ``interval_s`` until it returns something truthy; return that.

    ``predicate`` is called at least once, even with a zero timeout. On timeout raises
    ``AssertionError("timed out after N s waiting for <what>")``, followed by
    ``context()`` (e.g. a process log tail) when given, so the failure says what was awaited.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{extra}")
        time.sleep(interval_s)


class ManualClock:
    """A clock for code under test (``oneeye.types.Clock``) that a test moves forward.

    It follows real time from where it started, plus every :meth:`advance`, so code that
    measures short intervals still sees time pass while a test jumps hours ahead.
    """

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.offset_s += seconds
