"""Create the cloud resources of ``cloud/template.yaml`` on an AWS-compatible endpoint.

For the local stack's moto server and the tests: the same bucket (encrypted,
public access blocked, CORS for the upload page, ``uploads/`` → indexer queue
notification), topics (desk, alerts, branch IT), the SES sender identity, tables (state with TTL
``expires_at`` and the device sweep index, cases,
agencies) and queues (indexer + its dead-letter queue) as the template, made
through :func:`oneeye.aws.client`. Idempotent: running it twice changes nothing.

:func:`ensure_resources` returns the Lambdas' environment (the plan's names),
so a caller does ``os.environ.update(ensure_resources())``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from oneeye import aws
from oneeye.cloud.dal.device_state import SWEEP_INDEX
from oneeye.errors import AlreadyExists

log = logging.getLogger(__name__)

#: Matches the template's RedrivePolicy and the indexer's VisibilityTimeout.
INDEXER_MAX_RECEIVES = 5
INDEXER_VISIBILITY_S = 360
#: The SES sender identity of the local stack and the tests.
LOCAL_EMAIL_FROM = "no-reply@oneeye.local"


def ensure_resources(name: str = "oneeye-local", *, cors_origins: list[str] | None = None
                     ) -> dict[str, str]:
    """Create (or find) every resource; return ``{ENV_VAR_NAME: value}``."""
    dlq_url, dlq_arn = _queue(f"{name}-indexer-dlq", {"MessageRetentionPeriod": "1209600"})
    queue_url, queue_arn = _queue(f"{name}-indexer", {
        "VisibilityTimeout": str(INDEXER_VISIBILITY_S),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": INDEXER_MAX_RECEIVES}),
    })
    rules_dlq_url, _ = _queue(f"{name}-rules-dlq", {"MessageRetentionPeriod": "1209600"})
    bucket = _bucket(f"{name}-data", queue_arn, cors_origins or ["*"])
    sns = aws.client("sns")
    desk = sns.create_topic(Name=f"{name}-desk")["TopicArn"]
    alerts = sns.create_topic(Name=f"{name}-alerts")["TopicArn"]
    it_alerts = sns.create_topic(Name=f"{name}-it-alerts")["TopicArn"]
    idem = _table(f"{name}-idempotency", "event_id", ttl="expires_at")
    _sweep_index(idem)
    cases = _table(f"{name}-cases", "case_id")
    agencies = _table(f"{name}-agencies", "token_sha256")
    # The case contact's email goes out through SES from this identity (in AWS: the
    # template's AlertEmailFrom, verified by the operator; here verified at once).
    aws.client("ses").verify_email_identity(EmailAddress=LOCAL_EMAIL_FROM)
    return {
        "ONEEYE_BUCKET": bucket,
        "DESK_TOPIC_ARN": str(desk),
        "ALERTS_TOPIC_ARN": str(alerts),
        "IT_ALERT_TOPIC_ARN": str(it_alerts),
        "IDEMPOTENCY_TABLE": idem,
        "CASES_TABLE": cases,
        "AGENCIES_TABLE": agencies,
        "INDEXER_QUEUE_URL": queue_url,
        "INDEXER_DLQ_URL": dlq_url,
        "RULES_DLQ_URL": rules_dlq_url,
        "ALERT_COOLDOWN_S": "600",
        "SNAPSHOT_URL_TTL_S": "86400",
        "ALERT_EMAIL_FROM": LOCAL_EMAIL_FROM,
    }


def _queue(name: str, attributes: dict[str, str]) -> tuple[str, str]:
    sqs = aws.client("sqs")
    url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, str(arn["Attributes"]["QueueArn"])


def _bucket(name: str, queue_arn: str, cors_origins: list[str]) -> str:
    s3 = aws.client("s3")
    try:
        with aws.errors():
            if aws.region() == "us-east-1":
                s3.create_bucket(Bucket=name)
            else:
                s3.create_bucket(Bucket=name,
                                 CreateBucketConfiguration={"LocationConstraint": aws.region()})
    except AlreadyExists:
        pass
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["POST", "GET"], "AllowedOrigins": cors_origins,
        "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3000}]})
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={
        "QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
        }]})
    return name


def _table(name: str, key: str, *, ttl: str | None = None) -> str:
    ddb = aws.client("dynamodb")
    try:
        with aws.errors():
            ddb.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                SSESpecification={"Enabled": True},
            )
    except AlreadyExists:
        pass
    if ttl:
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": ttl})
    return name


def _sweep_index(table: str) -> None:
    """The state table's sparse index of online devices (:data:`SWEEP_INDEX`), added to a
    table made before it existed (the local stack keeps its moto state across runs)."""
    ddb = aws.client("dynamodb")
    indexes = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes") or []
    if any(i["IndexName"] == SWEEP_INDEX for i in indexes):
        return
    ddb.update_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "sweep", "AttributeType": "S"},
                              {"AttributeName": "last_seen", "AttributeType": "N"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": SWEEP_INDEX,
            "KeySchema": [{"AttributeName": "sweep", "KeyType": "HASH"},
                          {"AttributeName": "last_seen", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}}])


def describe(env: dict[str, str]) -> dict[str, Any]:
    """A short summary for logs (no secrets here: names and ARNs only)."""
    return {k: v for k, v in env.items() if k.endswith(("_ARN", "_TABLE", "_URL", "BUCKET"))}
