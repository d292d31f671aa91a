"""The agencies table (``AGENCIES_TABLE``, pk ``token_sha256``): token hashes → agency.

Items: ``token_sha256`` (S), ``agency`` (S), ``created_at`` (S, ISO 8601 UTC),
``revoked`` (BOOL), ``time_zone`` (S, IANA; absent on older items: UTC). Only hashes
are stored (:mod:`oneeye.cloud.agencies` makes and checks the tokens). Reads are
consistent: a revoke takes effect on the next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oneeye import aws


@dataclass(frozen=True)
class Agency:
    """One item of the table: an agency as one of its tokens names it."""

    name: str
    token_sha256: str
    created_at: str = ""
    revoked: bool = False
    #: The agency's IANA time zone: the times in its alerts are given in it (UTC beside).
    time_zone: str = "UTC"

    @property
    def token_id(self) -> str:
        """A short, non-secret label of the token for logs and audit records."""
        return self.token_sha256[:12]


class TokenTable:
    """Put, get, list and revoke token records (:class:`Agency`)."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        #: A DynamoDB client of its own (the local S3 stand-in asks its own server), else
        #: :func:`oneeye.aws.client`'s.
        self._dynamodb = dynamodb

    def _client(self) -> Any:
        return self._dynamodb if self._dynamodb is not None else aws.client("dynamodb")

    def put_new(self, record: Agency) -> None:
        """Store ``record``; raises (ConditionalCheckFailed) if its hash already exists."""
        self._client().put_item(
            TableName=self.table,
            Item={"token_sha256": {"S": record.token_sha256}, "agency": {"S": record.name},
                  "created_at": {"S": record.created_at},
                  "revoked": {"BOOL": record.revoked},
                  "time_zone": {"S": record.time_zone}},
            ConditionExpression="attribute_not_exists(token_sha256)",
        )

    def get(self, token_sha256: str) -> Agency | None:
        item = self._client().get_item(
            TableName=self.table, Key={"token_sha256": {"S": token_sha256}},
            ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def scan(self) -> list[Agency]:
        out: list[Agency] = []
        kwargs: dict[str, Any] = {"TableName": self.table}
        while True:
            resp = self._client().scan(**kwargs)
            out.extend(_record(item) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def set_revoked(self, token_sha256: str) -> None:
        self._client().update_item(
            TableName=self.table, Key={"token_sha256": {"S": token_sha256}},
            UpdateExpression="SET revoked = :t", ExpressionAttributeValues={":t": {"BOOL": True}})


def _record(item: dict[str, Any]) -> Agency:
    return Agency(token_sha256=item["token_sha256"]["S"], name=item["agency"]["S"],
                       created_at=item.get("created_at", {}).get("S", ""),
                  revoked=bool(item.get("revoked", {}).get("BOOL", False)),
                  time_zone=item.get("time_zone", {}).get("S", "UTC"))
