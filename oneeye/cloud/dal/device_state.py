"""Device state in the cloud: one ``device:{thing}`` item per device in the state table.

The item is the one truth of whether a device is online (the dashboard only applies
the ``device_offline`` / ``device_online`` transitions it is sent)::

    event_id      device:{thing}      (the table's key; namespace ``device``)
    kind          device
    site_id       the thing's site (registry attribute)
    state         online | offline
    last_seen     epoch s, the *cloud's* receive time of the last health report
                  (device clocks may be off; the sweep compares cloud times only)
    fps, camera_state, health   the last report (``oneeye.health/1`` JSON)
    status_at     epoch s of the last ``device_status`` sent to the desk (the cadence)
    presence_at   epoch ms of the last lifecycle event applied (AWS IoT's ``timestamp``:
                  older or repeated lifecycle events are ignored, they may arrive
                  out of order)
    sweep         ``online#{0..3}`` while online, absent while offline: the sparse
                  index ``DeviceSweep`` (sort key ``last_seen``) lists exactly the
                  online devices, so the sweep queries them by age, never scans

Why the state table rather than the things registry: a health report writes the item
(333 writes/s at 10,000 devices, cloud/README.md), and transitions need a *conditional*
write so that one of a heartbeat, a lifecycle event and the sweep records each change
exactly once. DynamoDB does both; ``iot:UpdateThing`` is rate-limited for control-plane
use and has no condition. No ``expires_at``: a device item lives as long as the device.

Every transition is a conditional ``UpdateItem`` returning the old item; the caller
that gets one back is the one that announces it (:mod:`oneeye.cloud.functions.device_presence`).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Final, Literal

from oneeye import aws
from oneeye.cloud.dal.state import PK, state_key
from oneeye.errors import ConditionFailed
from oneeye.types import Clock

DeviceState = Literal["online", "offline"]
#: The sparse index of online devices by ``last_seen`` (cloud/template.yaml, resources.py).
SWEEP_INDEX: Final = "DeviceSweep"
#: Partitions of that index: 4 keeps each under DynamoDB's 1,000 writes/s per partition key
#: at 10,000 devices (a heartbeat moves the sort key: a delete and a put, ~170/s per shard).
SWEEP_SHARDS: Final = 4


@dataclass(frozen=True)
class DeviceRecord:
    """One device item as read back (see the module docstring for the fields)."""

    thing: str
    site_id: str
    state: DeviceState
    last_seen: float
    fps: float | None = None
    camera_state: str | None = None
    status_at: float | None = None
    presence_at: int | None = None


def _shard(thing: str) -> str:
    return f"online#{zlib.crc32(thing.encode()) % SWEEP_SHARDS}"


def _record(item: dict[str, Any] | None) -> DeviceRecord | None:
    if not item or "state" not in item:
        return None

    def num(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    presence = num("presence_at")
    return DeviceRecord(
        thing=item[PK]["S"].split(":", 1)[1], site_id=item.get("site_id", {}).get("S", ""),
        state="offline" if item["state"]["S"] == "offline" else "online",
        last_seen=num("last_seen") or 0.0, fps=num("fps"),
        camera_state=item.get("camera_state", {}).get("S"), status_at=num("status_at"),
        presence_at=int(presence) if presence is not None else None)


class DeviceStates:
    """The ``device:`` items of ``table``; ``clock`` (epoch s) is the cloud's time, which
    tests move instead of sleeping."""

    def __init__(self, table: str, *, clock: Clock = time.time) -> None:
        self.table = table
        self.clock = clock

    def _key(self, thing: str) -> dict[str, dict[str, str]]:
        return {PK: {"S": state_key("device", thing)}}

    def get(self, thing: str) -> DeviceRecord | None:
        item = aws.client("dynamodb").get_item(TableName=self.table, Key=self._key(thing),
                                                ConsistentRead=True).get("Item")
        return _record(item)

    def heard(self, thing: str, site_id: str, *, fps: float, camera_state: str,
              health_json: str) -> DeviceRecord | None:
        """A health report arrived now: the device is online, seen now. Returns the item
        as it was before (None for a device never heard of), so the caller announces
        ``device_online`` when it was offline; only one concurrent caller sees that."""
        resp = aws.client("dynamodb").update_item(
            TableName=self.table, Key=self._key(thing),
            UpdateExpression=("SET kind = :kind, site_id = :site, #s = :online, last_seen = :now,"
                              " fps = :fps, camera_state = :cam, health = :health, sweep = :shard"),
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":kind": {"S": "device"}, ":site": {"S": site_id}, ":online": {"S": "online"},
                ":now": {"N": str(self.clock())}, ":fps": {"N": str(fps)},
                ":cam": {"S": camera_state}, ":health": {"S": health_json},
                ":shard": {"S": _shard(thing)}},
            ReturnValues="ALL_OLD")
        return _record(resp.get("Attributes"))

    def transition(self, thing: str, to: DeviceState, *, site_id: str,
                   stale_before: float | None = None, presence_at: int | None = None,
                   create: bool = False) -> DeviceRecord | None:
        """Set ``thing`` to ``to`` if it is in the other state; the item before the change,
        or None when nothing changed (already ``to``; seen since ``stale_before``; or a
        lifecycle event older than ``presence_at`` already applied).

        ``create``: a device never heard of is recorded too (in state ``to``), which
        returns None as well: a first connection is no transition.
        """
        other = "offline" if to == "online" else "online"
        names = {"#s": "state"}
        values: dict[str, dict[str, str]] = {":to": {"S": to}, ":from": {"S": other},
                                             ":kind": {"S": "device"}, ":site": {"S": site_id}}
        sets = ["#s = :to", "kind = :kind", "site_id = :site"]
        condition = "#s = :from"
        if create:
            condition = "(attribute_not_exists(#s) OR #s = :from)"
            sets.append("last_seen = if_not_exists(last_seen, :now)")
            values[":now"] = {"N": str(self.clock())}
        if to == "online":
            sets.append("sweep = :shard")
            values[":shard"] = {"S": _shard(thing)}
        if stale_before is not None:
            condition += " AND last_seen < :cut"
            values[":cut"] = {"N": str(stale_before)}
        if presence_at is not None:
            condition += " AND (attribute_not_exists(presence_at) OR presence_at < :p)"
            sets.append("presence_at = :p")
            values[":p"] = {"N": str(presence_at)}
        update = "SET " + ", ".join(sets) + (" REMOVE sweep" if to == "offline" else "")
        try:
            with aws.errors():
                resp = aws.client("dynamodb").update_item(
                    TableName=self.table, Key=self._key(thing), UpdateExpression=update,
                    ConditionExpression=condition, ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values, ReturnValues="ALL_OLD")
        except ConditionFailed:
            return None
        return _record(resp.get("Attributes"))

    def undo(self, thing: str, before: DeviceRecord) -> None:
        """Put back the state a transition replaced (its announcement failed and will be
        retried: the retry must find the change still to do), with the lifecycle stamp
        it had, so a retried lifecycle event is not taken for an old one."""
        values: dict[str, dict[str, str]] = {":s": {"S": before.state}}
        update = "SET #s = :s"
        if before.state == "online":
            update += ", sweep = :shard"
            values[":shard"] = {"S": _shard(thing)}
        if before.presence_at is not None:
            update += ", presence_at = :p"
            values[":p"] = {"N": str(before.presence_at)}
        removed = [n for n, gone in (("sweep", before.state == "offline"),
                                     ("presence_at", before.presence_at is None)) if gone]
        if removed:
            update += " REMOVE " + ", ".join(removed)
        aws.client("dynamodb").update_item(
            TableName=self.table, Key=self._key(thing), UpdateExpression=update,
            ExpressionAttributeNames={"#s": "state"}, ExpressionAttributeValues=values)

    def status_due(self, thing: str, every_s: float) -> bool:
        """True (and the cadence restarts now) when no ``device_status`` went to the desk
        for ``thing`` in the last ``every_s`` seconds; one caller wins per window."""
        now = self.clock()
        try:
            with aws.errors():
                aws.client("dynamodb").update_item(
                    TableName=self.table, Key=self._key(thing),
                    UpdateExpression="SET status_at = :now",
                    ConditionExpression="attribute_not_exists(status_at) OR status_at <= :cut",
                    ExpressionAttributeValues={":now": {"N": str(now)},
                                               ":cut": {"N": str(now - every_s)}})
        except ConditionFailed:
            return False
        return True

    def stale(self, before: float) -> list[DeviceRecord]:
        """Devices still online whose last report (cloud time) is older than ``before``,
        from the sparse ``DeviceSweep`` index (every shard, every page)."""
        out: list[DeviceRecord] = []
        ddb = aws.client("dynamodb")
        for n in range(SWEEP_SHARDS):
            kwargs: dict[str, Any] = {
                "TableName": self.table, "IndexName": SWEEP_INDEX,
                "KeyConditionExpression": "sweep = :shard AND last_seen < :cut",
                "ExpressionAttributeValues": {":shard": {"S": f"online#{n}"},
                                              ":cut": {"N": str(before)}}}
            while True:
                page = ddb.query(**kwargs)
                out += [r for item in page.get("Items", []) if (r := _record(item))]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return out
