"""The IoT Core rules engine stand-in: template rules → MQTT subscriptions → handlers.

Only the SQL subset the template uses is accepted (anything else fails at start
with the rule's name, rather than silently matching everything)::

    SELECT * FROM 'oneeye/devices/+/matches' WHERE watchlist = 'customers'
    SELECT *, topic(3) AS device FROM 'a/+/b' WHERE x = 'y' AND n <> 2

Like IoT Core, the Lambda action is asynchronous: the router hands each matching
message to a thread pool and a failing handler is logged and dead-lettered
(``var/local/dead-letters.jsonl``), never retried in a loop.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oneeye.cloud.dal.state import DEFAULT_LEASE_S
from oneeye.errors import Abandoned, ConfigError, EventError, InProgress
from oneeye.events import loads
from oneeye.local.lambdas import Lambdas
from oneeye.local.template import IotRule

log = logging.getLogger(__name__)

_SQL = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+'(?P<topic>[^']+)'"
    r"(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_COND = re.compile(
    r"^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>=|<>|!=)\s*"
    r"(?:'(?P<s>[^']*)'|(?P<n>-?\d+(?:\.\d+)?)|(?P<b>true|false))\s*$", re.IGNORECASE)
_TOPIC_FN = re.compile(r"^topic\((?P<n>\d+)\)\s+AS\s+(?P<name>[A-Za-z_]\w*)$", re.IGNORECASE)
_MISSING = object()
ASYNC_RETRIES = 2
RETRY_DELAY_S = 1.0
#: An event claimed by an invocation that died is retried until its lease has passed.
IN_PROGRESS_RETRY_S = 5.0
IN_PROGRESS_GIVE_UP_S = 2 * DEFAULT_LEASE_S


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def holds(self, payload: dict[str, Any]) -> bool:
        actual: Any = payload
        for part in self.field.split("."):
            actual = actual.get(part, _MISSING) if isinstance(actual, dict) else _MISSING
        if actual is _MISSING:
            return False  # IoT SQL: comparisons with an undefined field are never true
        equal = bool(actual == self.value)
        return equal if self.op == "=" else not equal


@dataclass(frozen=True)
class Query:
    topic_filter: str
    conditions: tuple[Condition, ...]
    topic_fields: tuple[tuple[int, str], ...] = ()

    def matches_topic(self, topic: str) -> bool:
        return topic_matches(self.topic_filter, topic)

    def apply(self, topic: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The rule's output for a message, or None when the topic or WHERE does not match."""
        if not self.matches_topic(topic) or not all(c.holds(payload) for c in self.conditions):
            return None
        if not self.topic_fields:
            return payload
        out = dict(payload)
        levels = topic.split("/")
        for n, name in self.topic_fields:
            out[name] = levels[n - 1] if 0 < n <= len(levels) else None
        return out


def parse_sql(sql: str) -> Query:
    """Parse the supported subset or raise ConfigError saying what is unsupported."""
    m = _SQL.match(sql)
    if not m:
        raise ConfigError(f"unsupported IoT SQL (want SELECT * FROM 'filter' [WHERE …]): {sql!r}")
    topic_fields = []
    for item in (s.strip() for s in m.group("select").split(",")):
        if item == "*":
            continue
        t = _TOPIC_FN.match(item)
        if not t:
            raise ConfigError(f"unsupported SELECT item {item!r} in {sql!r} (only * and "
                              "topic(n) AS name)")
        topic_fields.append((int(t.group("n")), t.group("name")))
    if "*" not in [s.strip() for s in m.group("select").split(",")]:
        raise ConfigError(f"unsupported IoT SQL {sql!r}: the local router needs SELECT *")
    topic = m.group("topic")
    check_filter(topic)
    conditions = []
    where = m.group("where")
    if where:
        for part in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE):
            c = _COND.match(part)
            if not c:
                raise ConfigError(f"unsupported WHERE clause {part.strip()!r} in {sql!r} "
                                  "(only field = 'text' | number | true/false, joined by AND)")
            value: Any
            if c.group("s") is not None:
                value = c.group("s")
            elif c.group("n") is not None:
                n = c.group("n")
                value = float(n) if "." in n else int(n)
            else:
                value = c.group("b").lower() == "true"
            conditions.append(Condition(c.group("field"), "=" if c.group("op") == "=" else "<>",
                                        value))
    return Query(topic, tuple(conditions), tuple(topic_fields))


def check_filter(topic_filter: str) -> None:
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or \
                ("+" in level and level != "+"):
            raise ConfigError(f"invalid MQTT topic filter {topic_filter!r}")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT matching: ``+`` is one level, a trailing ``#`` any number (including none)."""
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and not topic_filter.startswith("$"):
        return False
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels):
            return False
        if f != "+" and f != t_levels[i]:
            return False
    return len(f_levels) == len(t_levels)


@dataclass(frozen=True)
class CompiledRule:
    rule: IotRule
    query: Query


def compile_rules(rules: list[IotRule]) -> list[CompiledRule]:
    out = []
    for rule in rules:
        if rule.disabled:
            continue
        try:
            out.append(CompiledRule(rule, parse_sql(rule.sql)))
        except ConfigError as exc:
            raise ConfigError(f"IoT rule {rule.name}: {exc}") from exc
    return out


class RulesRouter:
    """Subscribes to every rule's topic filter and invokes the rule's handler."""

    def __init__(self, rules: list[CompiledRule], lambdas: Lambdas, *,
                 dead_letters: Path, workers: int = 4) -> None:
        self.rules = rules
        self._lambdas = lambdas
        self._dead_letters = dead_letters
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="rule")
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.invoked = 0
        self.failed = 0

    def filters(self) -> list[str]:
        return sorted({r.query.topic_filter for r in self.rules})

    def route(self, topic: str, payload: bytes,
              on_done: Callable[[], object] | None = None) -> int:
        """Dispatch one MQTT message; returns how many rules fired.

        ``on_done`` runs once every fired rule has finished (handled or dead-lettered),
        or at once when none fired: the durable inbox deletes the message then. It
        never runs for a message that :meth:`close` cut short.
        """
        try:
            data = loads(payload)
        except EventError:
            log.warning("rules: non-JSON payload on %s ignored (%d bytes)", topic, len(payload))
            data = None
        if data is not None and not isinstance(data, dict):
            log.warning("rules: payload on %s is not a JSON object; ignored", topic)
            data = None
        outputs = [] if data is None else [
            (r, out) for r in self.rules if (out := r.query.apply(topic, data)) is not None]
        futures = [self._pool.submit(self._invoke, r, topic, out) for r, out in outputs]
        if on_done is not None:
            _when_all(futures, on_done)
        return len(futures)

    def _invoke(self, r: CompiledRule, topic: str, event: dict[str, Any]) -> None:
        # Asynchronous Lambda invocation retries a raising handler twice, then
        # hands the event to the on-failure destination: the same here. A retry that
        # close() cuts short is abandoned (raises), not dead-lettered: the message
        # stays in the inbox and the next router tries it afresh.
        attempt, waited = 0, 0.0
        last: Exception = RuntimeError("not invoked")
        while attempt <= ASYNC_RETRIES:
            try:
                self._lambdas.invoke(r.rule.function_id, event)
                with self._lock:
                    self.invoked += 1
                return
            except InProgress as exc:  # a crashed invocation's claim: wait out its lease
                last = exc
                if waited >= IN_PROGRESS_GIVE_UP_S:
                    break
                self._pause(IN_PROGRESS_RETRY_S, r, topic)
                waited += IN_PROGRESS_RETRY_S
            except Exception as exc:  # a handler failure must not stop the router
                last = exc
                log.warning("rule %s → %s failed on %s (attempt %d): %s", r.rule.name,
                            r.rule.function_id, topic, attempt + 1, exc,
                            exc_info=attempt == ASYNC_RETRIES)
                if attempt == ASYNC_RETRIES:
                    break
                self._pause(RETRY_DELAY_S * 2**attempt, r, topic)
                attempt += 1
        with self._lock:
            self.failed += 1
        self._dead_letter(r, topic, event, last)

    def _pause(self, seconds: float, r: CompiledRule, topic: str) -> None:
        """Wait before a retry; raise :class:`Abandoned` if the router closes meanwhile."""
        if self._closing.wait(seconds):
            raise Abandoned(f"rule {r.rule.name} on {topic}: router closed before a retry")

    def _dead_letter(self, r: CompiledRule, topic: str, event: dict[str, Any],
                     exc: Exception) -> None:
        line = json.dumps({"rule": r.rule.name, "function": r.rule.function_id, "topic": topic,
                           "error": f"{type(exc).__name__}: {exc}", "event": event})
        with self._lock, self._dead_letters.open("a") as f:
            f.write(line + "\n")

    def close(self) -> None:
        """Stop: invocations not started are cancelled and retries cut short (their
        messages are not reported done); waits for the handlers that are running."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _when_all(futures: list[Future[None]], callback: Callable[[], object]) -> None:
    """Call ``callback`` once every future has finished (at once if there are none), and
    only if none was cancelled or raised: an unfinished message is not done."""
    if not futures:
        callback()
        return
    left = [len(futures)]
    finished = [True]
    lock = threading.Lock()

    def one_done(f: Future[None]) -> None:
        ok = not f.cancelled() and f.exception() is None
        with lock:
            left[0] -= 1
            finished[0] = finished[0] and ok
            last = left[0] == 0
        if last and finished[0]:
            callback()

    for f in futures:
        f.add_done_callback(one_done)
