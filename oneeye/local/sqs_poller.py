"""Long-poll an SQS queue on the moto server and hand each message to a function.

The Lambda SQS event source stand-in: with ``as_lambda_event`` the message is
wrapped exactly as Lambda does (``{"Records": [{"eventSource": "aws:sqs",
"body": …}]}``, batch size 1) and the handler is the same function AWS runs.
Success deletes the message; an exception leaves it on the queue and makes it
visible again after a short backoff (SQS's redrive policy still moves a message
that keeps failing to the dead-letter queue).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from oneeye import aws

log = logging.getLogger(__name__)


def lambda_event(queue_arn: str, region: str, msg: dict[str, Any]) -> dict[str, Any]:
    body = msg["Body"]
    return {"Records": [{
        "messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"], "body": body,
        "attributes": msg.get("Attributes", {}), "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region}]}


class SqsPoller:
    def __init__(self, queue_url: str, handle: Callable[[dict[str, Any]], object], *,
                 name: str, as_lambda_event: bool = False, wait_s: int = 1,
                 retry_after_s: int = 2) -> None:
        self.queue_url = queue_url
        self.name = name
        self._handle = handle
        self._as_lambda = as_lambda_event
        self._wait_s = wait_s
        self._retry_after_s = retry_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqs-{name}", daemon=True)
        self._sqs = aws.client("sqs")
        attrs = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = str(attrs["Attributes"]["QueueArn"])
        self.handled = 0
        self.failed = 0

    def start(self) -> SqsPoller:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                                 WaitTimeSeconds=self._wait_s,
                                                 AttributeNames=["All"])
            except Exception as exc:  # moto stopping, or a transient error: retry
                if self._stop.is_set():
                    return
                log.warning("%s: receive failed: %s", self.name, exc)
                self._stop.wait(1.0)
                continue
            for msg in resp.get("Messages", []):
                self._one(msg)

    def _one(self, msg: dict[str, Any]) -> None:
        event = lambda_event(self.queue_arn, aws.region(), msg) if self._as_lambda else msg
        try:
            self._handle(event)
        except Exception as exc:  # the handler decides; a raise means "retry later"
            self.failed += 1
            log.warning("%s: message %s failed, retry in %d s: %s", self.name,
                        msg["MessageId"], self._retry_after_s, exc, exc_info=True)
            try:
                self._sqs.change_message_visibility(QueueUrl=self.queue_url,
                                                    ReceiptHandle=msg["ReceiptHandle"],
                                                    VisibilityTimeout=self._retry_after_s)
            except Exception:  # the default visibility timeout retries it a bit later
                log.debug("could not shorten visibility of %s", msg["MessageId"], exc_info=True)
            return
        self.handled += 1
        try:
            self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
        except Exception as exc:  # handled but not deleted: it comes back; handlers are idempotent
            log.warning("%s: could not delete %s: %s", self.name, msg["MessageId"], exc)
