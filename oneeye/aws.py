"""The one factory for boto3 clients.

Every AWS call in OneEye goes through :func:`client`, so the local stack only has
to set ``AWS_ENDPOINT_URL`` (a moto server) and everything — Lambdas, CLI,
edge gallery sync — talks to it through the same code as in AWS.
Per-service endpoints (``AWS_ENDPOINT_URL_S3`` …) are honoured too.

It is also the boundary for AWS's errors: :func:`errors` turns the botocore
``ClientError`` codes callers act on into :class:`~oneeye.errors.NotFound`,
:class:`~oneeye.errors.ConditionFailed` and :class:`~oneeye.errors.AlreadyExists`,
so no caller sniffs ``exc.response`` itself. Other errors (throttling, access
denied, a service down) pass through unchanged: they are not answers, and the
caller's retry policy applies.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from oneeye.errors import AlreadyExists, AwsError, ConditionFailed, NotFound

DEFAULT_REGION = "us-east-1"

_lock = threading.Lock()
_cache: dict[tuple[str, str | None, str], Any] = {}


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def endpoint_url(service: str) -> str | None:
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def client(service: str, *, region_name: str | None = None, fresh: bool = False) -> Any:
    """A cached boto3 client honouring the endpoint and region environment.

    Clients are thread-safe; the cache key includes the endpoint so tests that
    switch ``AWS_ENDPOINT_URL`` get a new client.
    """
    import boto3
    from botocore.config import Config

    reg = region_name or region()
    url = endpoint_url(service)
    key = (service, url, reg)
    with _lock:
        if not fresh and key in _cache:
            return _cache[key]
        cfg = Config(
            region_name=reg,
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 4, "mode": "standard"},
            s3={"addressing_style": "path"} if url else None,
            signature_version="s3v4" if service == "s3" else None,
        )
        made = boto3.session.Session().client(service, region_name=reg, endpoint_url=url,
                                               config=cfg)
        _cache[key] = made
        return made


def clear_cache() -> None:
    with _lock:
        _cache.clear()


#: AWS error codes (S3, DynamoDB, SQS, IoT, Secrets Manager) that mean each answer.
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound",
                        "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue"})
_CONDITION_FAILED = frozenset({"ConditionalCheckFailedException", "PreconditionFailed", "412"})
_ALREADY_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists",
                             "ResourceInUseException", "ResourceAlreadyExistsException",
                             "QueueAlreadyExists"})


def mapped(exc: BaseException) -> AwsError | None:
    """The :class:`~oneeye.errors.AwsError` a botocore ``ClientError`` means, or None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = str(response.get("Error", {}).get("Code") or "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = f"{code or status}: {exc}"
    if code in _NOT_FOUND:
        return NotFound(code, message)
    if code in _CONDITION_FAILED:
        return ConditionFailed(code, message)
    if code in _ALREADY_EXISTS:
        return AlreadyExists(code, message)
    if status == 404:  # S3 HEAD answers carry no body, so no code beyond the status
        return NotFound(code or "404", message)
    return None


def failures() -> tuple[type[Exception], ...]:
    """What a failed AWS call raises, for ``except aws.failures():``.

    botocore's ``ClientError`` (AWS answered no: access denied, throttled, a code
    :func:`errors` does not map) and ``BotoCoreError`` (no answer: network,
    credentials, timeouts, a body cut off while read). Anything else is a bug.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


@contextmanager
def errors() -> Iterator[None]:
    """Raise ``NotFound`` / ``ConditionFailed`` / ``AlreadyExists`` for the AWS calls inside.

    ::

        with aws.errors():
            s3.head_object(Bucket=b, Key=k)     # a missing key raises NotFound
    """
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        answer = mapped(exc)
        if answer is None:
            raise
        raise answer from exc
