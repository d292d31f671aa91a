"""What every event handler shares: the result shape, rejection, run-once.

Error policy (IoT rule → Lambda). An IoT topic rule invokes its Lambda
*asynchronously*: a raised exception makes Lambda retry the same event twice
more, then hand it to the function's on-failure destination (the template sends
it to the dead-letter queue). So:

- a message that can never succeed (not JSON, unknown schema, invalid fields)
  is **rejected**: logged at WARNING with the reason and returned as
  ``{"status": "rejected", ...}`` — no exception, so no pointless retries and
  no loop;
- a transient failure (SNS, DynamoDB, S3 unavailable) **raises** after the
  idempotency claim is released, so Lambda's retries do the work later and
  the on-failure destination keeps what still fails — nothing is lost;
- a second delivery of an event already done returns ``{"status": "duplicate"}``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from oneeye import events
from oneeye.cloud.dal import keys, store
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.devices import THING_FIELD, Registry, Sender, check_sender
from oneeye.cloud.skew import trusted_match
from oneeye.errors import ConfigError, EventError, InProgress
from oneeye.events import clip as clip  # desk messages are capped like health errors

log = logging.getLogger(__name__)

Result = dict[str, Any]
D = TypeVar("D")


class ColdStart(Generic[D]):
    """A function's dependencies, built once per container when its module is imported.

    ``build`` validates the function's settings (:mod:`oneeye.cloud.settings`) and makes
    its clients. Invalid settings are logged at cold start, naming the variable, and
    :meth:`get` raises the same :class:`ConfigError` on every invocation: an IoT or SQS
    event is then retried and finally dead-lettered (never lost), and an API answers
    500 ``misconfigured``. The import itself does not fail, so the cause is in the log
    once, not hidden behind ``Runtime.ImportModuleError``.
    """

    def __init__(self, name: str, build: Callable[[], D]) -> None:
        self.name = name
        self._deps: D | None = None
        self._error: ConfigError | None = None
        try:
            self._deps = build()
        except ConfigError as exc:
            log.error("%s: misconfigured: %s", name, exc)
            self._error = exc

    def get(self) -> D:
        if self._deps is None:
            raise self._error or ConfigError(f"{self.name}: dependencies not built")
        return self._deps


def configure_lambda_logging() -> None:
    """The function's log level on the root logger, but only inside Lambda.

    The template's ``LoggingConfig.ApplicationLogLevel`` arrives as
    ``AWS_LAMBDA_LOG_LEVEL``; without it the runtime leaves the root at WARNING,
    which would hide every decision a handler logs. Outside Lambda (the local
    stack imports the same app.py modules) the process's ``--log-level`` wins.
    """
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        level = os.environ.get("AWS_LAMBDA_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO"
        logging.getLogger().setLevel(level.upper())


def rejected(handler: str, reason: str, *, event_id: str | None = None) -> Result:
    log.warning("%s: rejected event %s: %s", handler, event_id or "(no id)", reason)
    out: Result = {"status": "rejected", "reason": reason}
    if event_id:
        out["event_id"] = event_id
    return out


def parse_match(message: Any, *, watchlist: str, handler: str,
                registry: Registry) -> events.MatchEvent | Result:
    """The validated match for ``watchlist`` from the device that sent it, or the rejection.

    ``observed_at`` is checked against the receive time (:func:`oneeye.cloud.skew.trusted_match`):
    a device clock beyond the tolerance is replaced by a trusted time, the device's kept.
    The sender is the thing named by the topic (``iot_thing``, added by the rule); a
    match whose device, site or camera is not that thing's (see
    :func:`oneeye.cloud.devices.check_sender`) is rejected.
    """
    try:
        match = events.parse(message, expect=events.MATCH)
    except EventError as exc:
        return rejected(handler, str(exc), event_id=event_id_of(message))
    assert isinstance(match, events.MatchEvent)
    match = trusted_match(match)   # a wrong device clock must not reach what people read
    if match.watchlist != watchlist:
        return rejected(handler, f"watchlist {match.watchlist!r} is not {watchlist!r}",
                        event_id=match.event_id)
    return sender_rejection(message, match, registry, handler) or match


@dataclass(frozen=True, kw_only=True)
class DeviceMessageDeps:
    """What every handler of device messages holds, built once per container."""

    #: Processed event ids: each event is handled once (:func:`run_once`).
    idempotency: Idempotency
    #: SNS topic of ``oneeye.desk/1`` events.
    desk_topic_arn: str
    #: Where each thing stands (IoT thing attributes); cached per container.
    registry: Registry = field(default_factory=Registry)


def once_per_match(message: Any, deps: DeviceMessageDeps, *, watchlist: str, handler: str,
                   work: Callable[[events.MatchEvent], Result]) -> Result:
    """Validate one match from its sender (:func:`parse_match`), then run ``work`` on it
    once per ``event_id`` (:func:`run_once`); a rejection is returned as it is."""
    match = parse_match(message, watchlist=watchlist, handler=handler, registry=deps.registry)
    if not isinstance(match, events.MatchEvent):
        return match
    return run_once(deps.idempotency, match.event_id, lambda: work(match), handler=handler)


def sender_rejection(message: Any, event: Sender, registry: Registry,
                     handler: str) -> Result | None:
    """The rejection of an edge event its publishing thing may not send, else None."""
    thing = message.get(THING_FIELD) if isinstance(message, dict) else None
    reason = check_sender(event, thing, registry)
    if reason is None:
        return None
    return rejected(handler, f"forged or misrouted sender: {reason}",
                    event_id=getattr(event, "event_id", None))


def run_once(idem: Idempotency, key: str, work: Callable[[], Result], *,
             handler: str) -> Result:
    """Run ``work`` unless ``key`` was already done elsewhere.

    Raises :class:`~oneeye.errors.InProgress` while another invocation holds the claim:
    it may have died, so the event is retried (after the claim's lease), never dropped.
    """
    if not idem.claim(key, kind=handler):
        if not idem.is_done(key):
            raise InProgress(f"{handler}: {key} is being handled by another invocation; "
                             "retry after its lease")
        log.info("%s: %s already processed; skipping duplicate delivery", handler, key)
        return {"status": "duplicate", "event_id": key}
    try:
        result = work()
    except BaseException:
        idem.release(key)
        raise
    idem.complete(key)
    return result


def event_id_of(message: Any) -> str | None:
    """The ``event_id`` of a raw message, for logging a rejection (may be absent)."""
    if isinstance(message, dict):
        value = message.get("event_id")
        return value if isinstance(value, str) and len(value) <= 64 else None
    return None




def store_snapshot(match: events.MatchEvent, bucket: store.Bucket, *, expires_s: int,
                   handler: str) -> str | None:
    """Keep a match's face crop (``snapshot_jpeg``, base64 JPEG) at ``snapshots/{event_id}.jpg``
    and return a presigned GET URL valid ``expires_s`` seconds; None when the match carries
    no crop, or one that is not base64 or not a JPEG (logged: the alert or card goes out
    without it)."""
    if not match.snapshot_jpeg:
        return None
    try:
        data = base64.b64decode(match.snapshot_jpeg, validate=True)
    except (binascii.Error, ValueError):
        log.warning("%s: %s carries an undecodable snapshot; going on without it", handler,
                    match.event_id)
        return None
    if not data.startswith(b"\xff\xd8"):
        log.warning("%s: %s snapshot is not a JPEG; going on without it", handler,
                    match.event_id)
        return None
    key = keys.snapshot(match.event_id)
    bucket.put(key, data, content_type="image/jpeg")
    return bucket.presign_get(key, expires_s=expires_s)
