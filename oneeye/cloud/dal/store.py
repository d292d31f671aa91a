"""Data access of the Lambdas: DynamoDB (idempotency, cases), S3, SNS.

Logic modules never touch boto3 directly; they get these small objects, built
from each function's settings (:mod:`oneeye.cloud.settings`) once per container.
Clients come from the one factory, :func:`oneeye.aws.client`.

Idempotency is a lease, not a flag: :meth:`Idempotency.claim` writes the key
with a short ``expires_at`` (the work's lease) under a condition, and
:meth:`Idempotency.complete` extends it to the retention TTL once the work is
done. A crash between the two (a Lambda timeout, a killed container) therefore
does not turn the retry into a silent no-op: the retry claims again once the
lease has run out. ``expires_at`` is also the table's TTL attribute, and the
condition compares it with *now* because DynamoDB deletes expired items only
eventually (up to days later).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from oneeye import aws
from oneeye.errors import ConditionFailed, NotFound
from oneeye.types import Clock, utc_now

log = logging.getLogger(__name__)

#: How long a finished event id is remembered (IoT/SQS redeliveries come within minutes).
DEFAULT_RETENTION_S = 7 * 24 * 3600
#: How long a claim protects work in progress before a retry may take over: 4× the longest
#: timeout of a handler that claims (15 s in cloud/template.yaml), so a live invocation is
#: never overtaken and a crashed one's event is retried within a minute.
DEFAULT_LEASE_S = 60
#: The "who was told" entries a case keeps (newest last; ~250 bytes each, an item ≤ 400 KB).
TOLD_KEEP = 200


class Idempotency:
    """Conditional puts on the idempotency table (pk ``event_id``, TTL ``expires_at``)."""

    def __init__(self, table: str, *, clock: Clock = time.time) -> None:
        self.table = table
        self.clock = clock  # compared with leases' expires_at (tests move it, never sleep)

    def claim(self, key: str, *, lease_s: int = DEFAULT_LEASE_S, now: float | None = None,
              kind: str = "event") -> bool:
        """True if the caller now owns ``key``; False if it is done or being worked on."""
        now_s = int(now if now is not None else self.clock())
        try:
            with aws.errors():
                aws.client("dynamodb").put_item(
                    TableName=self.table,
                    Item={"event_id": {"S": key}, "expires_at": {"N": str(now_s + lease_s)},
                          "state": {"S": "claimed"}, "kind": {"S": kind}},
                    ConditionExpression="attribute_not_exists(event_id) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now_s)}},
                )
        except ConditionFailed:
            return False
        return True

    def complete(self, key: str, *, retention_s: int = DEFAULT_RETENTION_S,
                 now: float | None = None) -> None:
        now_s = int(now if now is not None else self.clock())
        aws.client("dynamodb").update_item(
            TableName=self.table, Key={"event_id": {"S": key}},
            UpdateExpression="SET expires_at = :exp, #s = :done",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":exp": {"N": str(now_s + retention_s)},
                                       ":done": {"S": "done"}},
        )

    def is_done(self, key: str) -> bool:
        """Whether ``key``'s work completed (not merely claimed)."""
        item = aws.client("dynamodb").get_item(
            TableName=self.table, Key={"event_id": {"S": key}}, ConsistentRead=True).get("Item")
        return bool(item) and item.get("state", {}).get("S") == "done"

    def release(self, key: str) -> None:
        """Give a claim back after a failure so the platform's retry can do the work."""
        try:
            aws.client("dynamodb").delete_item(TableName=self.table, Key={"event_id": {"S": key}})
        except Exception:  # the lease expires anyway; the original error matters more
            log.exception("could not release idempotency key %s", key)


class Cases:
    """The cases table (pk ``case_id``) as plain dicts of strings and numbers."""

    def __init__(self, table: str) -> None:
        self.table = table

    def get(self, case_id: str) -> dict[str, Any] | None:
        resp = aws.client("dynamodb").get_item(
            TableName=self.table, Key={"case_id": {"S": case_id}}, ConsistentRead=True)
        item = resp.get("Item")
        return _plain(item) if item else None

    def upsert(self, case_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Set ``fields`` (None values skipped) and ``updated_at``; ``created_at`` once."""
        now = utc_now()
        values = {k: v for k, v in fields.items() if v is not None and k != "case_id"}
        values["updated_at"] = now
        names = {f"#k{i}": k for i, k in enumerate(values)}
        exprs = [f"#k{i} = :v{i}" for i in range(len(values))]
        attr_values = {f":v{i}": _attr(v) for i, v in enumerate(values.values())}
        attr_values[":created"] = {"S": now}
        names["#created"] = "created_at"
        exprs.append("#created = if_not_exists(#created, :created)")
        resp = aws.client("dynamodb").update_item(
            TableName=self.table, Key={"case_id": {"S": case_id}},
            UpdateExpression="SET " + ", ".join(exprs),
            ExpressionAttributeNames=names, ExpressionAttributeValues=attr_values,
            ReturnValues="ALL_NEW",
        )
        return _plain(resp["Attributes"])


    def append_told(self, case_id: str, entries: list[dict[str, Any]],
                    keep: int = TOLD_KEEP) -> list[dict[str, Any]]:
        """Append "who was told" ``entries`` to the case's ``told`` list; the oldest beyond
        ``keep`` are dropped (an item holds at most 400 KB). Returns the list as stored."""
        if not entries:
            return list((self.get(case_id) or {}).get("told") or [])
        client = aws.client("dynamodb")
        resp = client.update_item(
            TableName=self.table, Key={"case_id": {"S": case_id}},
            UpdateExpression="SET told = list_append(if_not_exists(told, :empty), :new)",
            ExpressionAttributeValues={":empty": {"L": []},
                                       ":new": {"L": [_value(e) for e in entries]}},
            ReturnValues="UPDATED_NEW")
        told = list(_plain(resp["Attributes"]).get("told") or [])
        if len(told) > keep:
            extra = len(told) - keep
            try:
                with aws.errors():
                    client.update_item(
                        TableName=self.table, Key={"case_id": {"S": case_id}},
                        UpdateExpression="REMOVE " + ", ".join(f"told[{i}]" for i in range(extra)),
                        # another sighting appended meanwhile: leave the trim to the next one
                        ConditionExpression="size(told) = :n",
                        ExpressionAttributeValues={":n": {"N": str(len(told))}})
                told = told[extra:]
            except ConditionFailed:
                pass
        return told


def _value(value: Any) -> dict[str, Any]:
    """A plain value (None, bool, number, text, list, dict) as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): _value(v) for k, v in value.items()}}
    return {"S": str(value)}


def _attr(value: Any) -> dict[str, str]:
    if isinstance(value, bool):
        return {"S": str(value).lower()}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": str(value)}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain_value(typed) for key, typed in item.items()
            if any(t in typed for t in ("S", "N", "BOOL", "L", "M", "NULL"))}


def _plain_value(typed: dict[str, Any]) -> Any:
    if "S" in typed:
        return typed["S"]
    if "N" in typed:
        num = typed["N"]
        return int(num) if num.lstrip("-").isdigit() else float(num)
    if "BOOL" in typed:
        return typed["BOOL"]
    if "L" in typed:
        return [_plain_value(v) for v in typed["L"]]
    if "M" in typed:
        return _plain(typed["M"])
    return None


@dataclass(frozen=True)
class StoredObject:
    """One object of the bucket, read whole."""

    key: str
    #: The whole body: objects here are small (photos up to ``UPLOAD_MAX_BYTES``, JSON).
    data: bytes
    etag: str
    #: The object's user metadata (``x-amz-meta-*``, names lower-cased by S3).
    metadata: dict[str, str]


class Bucket:
    """The one OneEye bucket (``uploads/``, ``gallery/``, ``status/``, ``snapshots/``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            with aws.errors():
                return dict(aws.client("s3").head_object(Bucket=self.name, Key=key))
        except NotFound:
            return None

    def get(self, key: str) -> StoredObject | None:
        try:
            with aws.errors():
                resp = aws.client("s3").get_object(Bucket=self.name, Key=key)
        except NotFound:
            return None
        return StoredObject(key=key, data=resp["Body"].read(),
                            etag=str(resp.get("ETag", "")).strip('"'),
                            metadata=dict(resp.get("Metadata") or {}))

    def get_json(self, key: str) -> Any:
        obj = self.get(key)
        return None if obj is None else json.loads(obj.data)

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream",
            cache_control: str | None = None) -> None:
        extra: dict[str, Any] = {"CacheControl": cache_control} if cache_control else {}
        aws.client("s3").put_object(Bucket=self.name, Key=key, Body=data,
                                    ContentType=content_type, **extra)

    def put_json(self, key: str, value: Any, *, cache_control: str | None = None) -> None:
        self.put(key, json.dumps(value, separators=(",", ":")).encode(),
                 content_type="application/json", cache_control=cache_control)

    def delete(self, key: str) -> None:
        aws.client("s3").delete_object(Bucket=self.name, Key=key)

    def presign_get(self, key: str, *, expires_s: int) -> str:
        return str(aws.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=expires_s))


def publish(topic_arn: str, message: str, *, site_id: str | None = None,
            subject: str | None = None, structured: bool = False) -> str:
    """Publish to SNS; ``site_id`` becomes the String attribute subscriptions filter on."""
    kwargs: dict[str, Any] = {"TopicArn": topic_arn, "Message": message}
    if site_id is not None:
        kwargs["MessageAttributes"] = {"site_id": {"DataType": "String", "StringValue": site_id}}
    if subject:
        kwargs["Subject"] = subject
    if structured:
        kwargs["MessageStructure"] = "json"
    return str(aws.client("sns").publish(**kwargs)["MessageId"])


def send_sms(phone_e164: str, text: str, *, event_id: str) -> str:
    """SNS direct publish to one phone number (no topic); returns the MessageId.

    ``Transactional`` (an alert, not marketing: delivered ahead of promotional traffic and
    to numbers that opted out of marketing). ``event_id`` rides as a message attribute so the
    local alert outbox can tie the SMS to its sighting. Raises ClientError as boto3 does.
    """
    return str(aws.client("sns").publish(PhoneNumber=phone_e164, Message=text, MessageAttributes={
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        "event_id": {"DataType": "String", "StringValue": event_id}})["MessageId"])


def send_email(source: str, to: str, subject: str, body: str) -> str:
    """SES ``SendEmail`` of a plain-text message from the verified identity ``source``."""
    return str(aws.client("ses").send_email(
        Source=source, Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                 "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}})["MessageId"])
