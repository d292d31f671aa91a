"""The state table (``IDEMPOTENCY_TABLE``): five concepts, five key namespaces.

One DynamoDB table (pk ``event_id``, TTL ``expires_at``) holds small items of five
kinds, four of them short-lived. Each kind owns a namespace, the key's first ``:``-separated
field, so no kind can ever read or overwrite another's item (an event id such as
``counter:case:MP-2026`` becomes ``event:counter:case:MP-2026``)::

    event:{key}                       Idempotency   work done once per event / S3 object
    cooldown:{case_id}:{site_id}      Cooldowns     one email/SMS per case per site
    rate:{token_sha256[:16]}:{minute} RateWindows   uploads per token per minute
    counter:{name}                    Counters      case-id sequence numbers (no TTL)
    device:{thing}                    DeviceStates  online/offline, last seen, last fps (no
                                                    TTL; :mod:`oneeye.cloud.dal.device_state`)

Every item also carries ``kind`` (the namespace, or the handler for ``event``) for a
person reading the table. One table rather than five: each item is tiny, all five
are written by the same few functions, and one table is one TTL, one IAM resource
and one thing to back up; the namespaces give the separation.

Idempotency is a lease, not a flag: :meth:`Idempotency.claim` writes the key with a
short ``expires_at`` (the work's lease) under a condition, and
:meth:`Idempotency.complete` extends it to the retention TTL once the work is done.
A crash between the two (a Lambda timeout, a killed container) therefore does not
turn the retry into a silent no-op: the retry claims again once the lease has run
out. ``expires_at`` is also the table's TTL attribute, and the conditions compare it
with *now* because DynamoDB deletes expired items only eventually (up to days later).
"""

from __future__ import annotations

import logging
import time
from typing import Final, Literal

from oneeye import aws
from oneeye.errors import ConditionFailed
from oneeye.types import Clock

log = logging.getLogger(__name__)

Namespace = Literal["event", "cooldown", "rate", "counter", "device"]
#: The table's partition key (its name predates the namespaces; see cloud/README.md).
PK: Final = "event_id"

#: How long a finished event id is remembered (IoT/SQS redeliveries come within minutes).
DEFAULT_RETENTION_S = 7 * 24 * 3600
#: How long a claim protects work in progress before a retry may take over: 4× the longest
#: timeout of a handler that claims (15 s in cloud/template.yaml), so a live invocation is
#: never overtaken and a crashed one's event is retried within a minute.
DEFAULT_LEASE_S = 60


def state_key(namespace: Namespace, *parts: str | int) -> str:
    """``{namespace}:{part}:{part}…``, the only way a key of this table is spelled."""
    return ":".join((namespace, *(str(p) for p in parts)))


def _key(key: str) -> dict[str, dict[str, str]]:
    return {PK: {"S": key}}


def _claim(table: str, key: str, *, expires_at: int, now: int, kind: str) -> bool:
    """Write ``key`` unless a live (unexpired) item holds it; True when written."""
    try:
        with aws.errors():
            aws.client("dynamodb").put_item(
                TableName=table,
                Item={PK: {"S": key}, "expires_at": {"N": str(expires_at)},
                      "state": {"S": "claimed"}, "kind": {"S": kind}},
                ConditionExpression="attribute_not_exists(event_id) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
    except ConditionFailed:
        return False
    return True


def _delete(table: str, key: str) -> None:
    try:
        aws.client("dynamodb").delete_item(TableName=table, Key=_key(key))
    except Exception:  # the item expires anyway; the caller's original error matters more
        log.exception("could not delete state item %s", key)


class Idempotency:
    """Work done once per key (``event:{key}``): claim, then complete or release."""

    def __init__(self, table: str, *, clock: Clock = time.time) -> None:
        self.table = table
        self.clock = clock  # compared with leases' expires_at (tests move it, never sleep)

    def claim(self, key: str, *, lease_s: int = DEFAULT_LEASE_S, now: float | None = None,
              kind: str = "event") -> bool:
        """True if the caller now owns ``key``; False if it is done or being worked on."""
        now_s = int(now if now is not None else self.clock())
        return _claim(self.table, state_key("event", key), expires_at=now_s + lease_s,
                      now=now_s, kind=kind)

    def complete(self, key: str, *, retention_s: int = DEFAULT_RETENTION_S,
                 now: float | None = None) -> None:
        now_s = int(now if now is not None else self.clock())
        aws.client("dynamodb").update_item(
            TableName=self.table, Key=_key(state_key("event", key)),
            UpdateExpression="SET expires_at = :exp, #s = :done",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":exp": {"N": str(now_s + retention_s)},
                                       ":done": {"S": "done"}},
        )

    def is_done(self, key: str) -> bool:
        """Whether ``key``'s work completed (not merely claimed)."""
        item = aws.client("dynamodb").get_item(
            TableName=self.table, Key=_key(state_key("event", key)),
            ConsistentRead=True).get("Item")
        return bool(item) and item.get("state", {}).get("S") == "done"

    def release(self, key: str) -> None:
        """Give a claim back after a failure so the platform's retry can do the work."""
        _delete(self.table, state_key("event", key))


class Cooldowns:
    """At most one action per subject per window (``cooldown:{parts}``)."""

    def __init__(self, table: str, *, clock: Clock = time.time) -> None:
        self.table = table
        self.clock = clock

    def start(self, *parts: str, seconds: int) -> bool:
        """True (and the window starts now) unless a window for ``parts`` is still open."""
        now_s = int(self.clock())
        return _claim(self.table, state_key("cooldown", *parts), expires_at=now_s + seconds,
                      now=now_s, kind="cooldown")

    def cancel(self, *parts: str) -> None:
        """End the window early (the action it guarded failed and will be retried)."""
        _delete(self.table, state_key("cooldown", *parts))


class RateWindows:
    """Hits per subject per calendar minute (``rate:{subject}:{minute}``), capped."""

    def __init__(self, table: str) -> None:
        self.table = table

    def hit(self, subject: str, *, window: int, limit: int, expires_at: int) -> int | None:
        """Count one hit in ``window`` (minutes since the epoch); the new count, or None
        when ``limit`` hits were already counted (nothing is written then)."""
        try:
            with aws.errors():
                resp = aws.client("dynamodb").update_item(
                    TableName=self.table, Key=_key(state_key("rate", subject, window)),
                    UpdateExpression="ADD #n :one SET expires_at = :exp, kind = :kind",
                    ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                    ExpressionAttributeNames={"#n": "n"},
                    ExpressionAttributeValues={":one": {"N": "1"},
                                               ":limit": {"N": str(limit)},
                                               ":exp": {"N": str(expires_at)},
                                               ":kind": {"S": "rate"}},
                    ReturnValues="UPDATED_NEW",
                )
        except ConditionFailed:
            return None
        return int(resp["Attributes"]["n"]["N"])


class Counters:
    """Atomic sequence numbers (``counter:{name}``); never expire."""

    def __init__(self, table: str) -> None:
        self.table = table

    def next(self, name: str) -> int:
        """The next number of ``name`` (1, 2, …), unique across concurrent callers."""
        resp = aws.client("dynamodb").update_item(
            TableName=self.table, Key=_key(state_key("counter", name)),
            UpdateExpression="ADD #n :one SET kind = :kind",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":kind": {"S": "counter"}},
            ReturnValues="UPDATED_NEW")
        return int(resp["Attributes"]["n"]["N"])
