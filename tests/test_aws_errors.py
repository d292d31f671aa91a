"""AWS's answers become OneEye errors at one boundary, against a real moto server."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from oneeye import aws
from oneeye.errors import AlreadyExists, AwsError, ConditionFailed, NotFound, OneEyeError
from oneeye.ids import new_id


def test_missing_objects_and_tables_are_not_found(cloud_env: dict[str, str]) -> None:
    s3, bucket = aws.client("s3"), cloud_env["ONEEYE_BUCKET"]
    for call in (lambda: s3.get_object(Bucket=bucket, Key="nope"),
                 lambda: s3.head_object(Bucket=bucket, Key="nope"),  # a 404 without a body
                 lambda: aws.client("dynamodb").get_item(
                     TableName=f"absent-{new_id()[-8:]}", Key={"k": {"S": "x"}})):
        with pytest.raises(NotFound) as err, aws.errors():
            call()
        assert isinstance(err.value, OneEyeError) and err.value.code
        assert isinstance(err.value.__cause__, ClientError)  # the original stays attached


def test_a_false_condition_is_condition_failed(cloud_env: dict[str, str]) -> None:
    ddb, table = aws.client("dynamodb"), cloud_env["IDEMPOTENCY_TABLE"]
    item = {"event_id": {"S": new_id()}}
    ddb.put_item(TableName=table, Item=item)
    with pytest.raises(ConditionFailed, match="ConditionalCheckFailedException"), aws.errors():
        ddb.put_item(TableName=table, Item=item,
                     ConditionExpression="attribute_not_exists(event_id)")


def test_creating_what_exists_is_already_exists(cloud_env: dict[str, str]) -> None:
    with pytest.raises(AlreadyExists), aws.errors():
        aws.client("dynamodb").create_table(
            TableName=cloud_env["IDEMPOTENCY_TABLE"], BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "event_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "event_id", "KeyType": "HASH"}])


def test_other_errors_pass_through_unchanged(cloud_env: dict[str, str]) -> None:
    # Not an answer a caller acts on (here: a malformed request): the caller's policy applies.
    with pytest.raises(ClientError) as err, aws.errors():
        aws.client("dynamodb").put_item(TableName=cloud_env["IDEMPOTENCY_TABLE"],
                                        Item={"wrong_key": {"S": "x"}})
    assert not isinstance(err.value, AwsError)
    assert aws.mapped(ValueError("not from botocore")) is None


def test_a_call_with_no_answer_is_one_of_the_named_failures(cloud_env: dict[str, str]) -> None:
    # A port nobody listens on: botocore raises its own error, not a ClientError.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s3 = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    with pytest.raises(aws.failures()) as err:
        s3.get_object(Bucket=cloud_env["ONEEYE_BUCKET"], Key="k")
    assert isinstance(err.value, BotoCoreError)
    assert ClientError in aws.failures()  # an answer of "no" is a failure too
