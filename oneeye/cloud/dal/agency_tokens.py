"""The agencies table (``AGENCIES_TABLE``, pk ``token_sha256``): token hashes → agency.

Items: ``token_sha256`` (S), ``agency`` (S), ``created_at`` (S, ISO 8601 UTC),
``revoked`` (BOOL). Only hashes are stored (:mod:`oneeye.cloud.agencies` makes and
checks the tokens). Reads are consistent: a revoke takes effect on the next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oneeye import aws


@dataclass(frozen=True)
class TokenRecord:
    """One item of the table."""

    token_sha256: str
    agency: str
    created_at: str = ""
    revoked: bool = False


class TokenTable:
    """Put, get, list and revoke token records."""

    def __init__(self, table: str, *, dynamodb: Any = None) -> None:
        self.table = table
        #: A DynamoDB client of its own (the local S3 stand-in asks its own server), else
        #: :func:`oneeye.aws.client`'s.
        self._dynamodb = dynamodb

    def _client(self) -> Any:
        return self._dynamodb if self._dynamodb is not None else aws.client("dynamodb")

    def put_new(self, record: TokenRecord) -> None:
        """Store ``record``; raises (ConditionalCheckFailed) if its hash already exists."""
        self._client().put_item(
            TableName=self.table,
            Item={"token_sha256": {"S": record.token_sha256}, "agency": {"S": record.agency},
                  "created_at": {"S": record.created_at},
                  "revoked": {"BOOL": record.revoked}},
            ConditionExpression="attribute_not_exists(token_sha256)",
        )

    def get(self, token_sha256: str) -> TokenRecord | None:
        item = self._client().get_item(
            TableName=self.table, Key={"token_sha256": {"S": token_sha256}},
            ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def scan(self) -> list[TokenRecord]:
        out: list[TokenRecord] = []
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


def _record(item: dict[str, Any]) -> TokenRecord:
    return TokenRecord(token_sha256=item["token_sha256"]["S"], agency=item["agency"]["S"],
                       created_at=item.get("created_at", {}).get("S", ""),
                       revoked=bool(item.get("revoked", {}).get("BOOL", False)))
