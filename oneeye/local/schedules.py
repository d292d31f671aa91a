"""The template's ``Schedule`` events on timers: EventBridge's stand-in in the local stack.

Each ``rate(…)`` schedule of ``cloud/template.yaml`` (read by :mod:`oneeye.local.template`)
invokes its function with the event's ``Input`` every ``every_s`` seconds, first one
period after start, as EventBridge does. In the local stack that is the device sweep
(``device_presence``, ``{"action": "sweep"}`` every minute) and the daily refresh of the
signed gallery pointers. A failing run is logged and the next one comes on time:
EventBridge does not queue missed runs either.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from oneeye.local.template import Schedule

log = logging.getLogger(__name__)


class Invoker(Protocol):
    def invoke(self, function_id: str, event: Any) -> Any: ...


class Schedules:
    """One daemon thread per schedule; :meth:`stop` ends them all."""

    def __init__(self, schedules: list[Schedule], lambdas: Invoker) -> None:
        self.schedules = schedules
        self._lambdas = lambdas
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Schedules:
        for s in self.schedules:
            t = threading.Thread(target=self._loop, args=(s,), name=f"schedule-{s.name}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
            log.info("schedule %s: %s every %.0f s", s.name, s.function_id, s.every_s)
        return self

    def run(self, schedule: Schedule) -> Any:
        """One run of ``schedule`` now (what each tick does)."""
        return self._lambdas.invoke(schedule.function_id, dict(schedule.input))

    def _loop(self, schedule: Schedule) -> None:
        while not self._stop.wait(schedule.every_s):
            try:
                self.run(schedule)
            except Exception:  # the next tick tries again, as EventBridge would
                log.exception("schedule %s failed", schedule.name)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._threads.clear()
