"""Data access of the Lambdas: the cases table, the bucket, SNS and SQS.

Logic modules never touch boto3 directly; they get these small objects (and those
of :mod:`~oneeye.cloud.dal.state`, :mod:`~oneeye.cloud.dal.agency_tokens`,
:mod:`~oneeye.cloud.dal.things`), built from each function's settings
(:mod:`oneeye.cloud.settings`) once per container. Clients come from the one
factory, :func:`oneeye.aws.client`, so the same calls answer from AWS, the local
stack's moto server and the tests. Keys of the bucket come from
:mod:`oneeye.cloud.dal.keys`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from oneeye import aws
from oneeye.errors import ConditionFailed, NotFound
from oneeye.types import utc_now

log = logging.getLogger(__name__)

#: The "who was told" entries a case keeps (newest last; ~250 bytes each, an item ≤ 400 KB).
TOLD_KEEP = 200


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

    def scan(self, *, agency: str | None = None) -> list[dict[str, Any]]:
        """Every case (of ``agency``, if given), in no particular order."""
        kwargs: dict[str, Any] = {"TableName": self.table}
        if agency is not None:
            kwargs.update(FilterExpression="agency = :a",
                          ExpressionAttributeValues={":a": {"S": agency}})
        out: list[dict[str, Any]] = []
        while True:
            resp = aws.client("dynamodb").scan(**kwargs)
            out.extend(_plain(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


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

    def presign_post(self, key: str, *, content_type: str, max_bytes: int,
                     metadata: dict[str, str], expires_s: int) -> dict[str, Any]:
        """A presigned POST (``{"url", "fields"}``) whose policy pins ``key``, exactly
        ``content_type``, 1 … ``max_bytes`` bytes and each ``x-amz-meta-*`` field."""
        fields = {"Content-Type": content_type, **metadata}
        conditions: list[Any] = [{"Content-Type": content_type},
                                 ["content-length-range", 1, max_bytes]]
        conditions.extend({k: v} for k, v in metadata.items())
        return dict(aws.client("s3").generate_presigned_post(
            Bucket=self.name, Key=key, Fields=fields, Conditions=conditions,
            ExpiresIn=expires_s))

    def keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, in S3's (lexicographic) order."""
        s3 = aws.client("s3")
        kwargs: dict[str, Any] = {"Bucket": self.name, "Prefix": prefix}
        out: list[str] = []
        while True:
            resp = s3.list_objects_v2(**kwargs)
            out.extend(o["Key"] for o in resp.get("Contents", []))
            if not resp.get("IsTruncated"):
                return out
            kwargs["ContinuationToken"] = resp["NextContinuationToken"]


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


def send(queue_url: str, body: str) -> str:
    """Send one SQS message; returns its message id."""
    return str(aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"])


def secret(secret_id: str) -> str:
    """The string value of a Secrets Manager secret."""
    return str(aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


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
