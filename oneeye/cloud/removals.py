"""``RemoveCommand``: the gallery indexer queue's removal message, one typed model.

Producers (closing a case: :func:`oneeye.cloud.functions.cases.close`; removing a
customer: :class:`oneeye.cloud.backoffice.Backoffice`) send
``{"action": "remove", "watchlist": …, "person_id": …}`` on the indexer's SQS queue,
beside S3's ``uploads/`` notifications; the indexer (:mod:`oneeye.cloud.functions.
gallery_indexer`) builds a version without the person. The wire shape is the one
messages already waiting on a queue have, so nothing in flight is lost by a deploy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from oneeye.errors import EventError
from oneeye.types import Id, Watchlist


class RemoveCommand(BaseModel):
    """Remove ``person_id`` (a case or customer id) from ``watchlist``'s gallery."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    action: Literal["remove"] = "remove"
    watchlist: Watchlist
    person_id: Id

    def to_json(self) -> str:
        return self.model_dump_json()

    @staticmethod
    def is_one(body: Any) -> bool:
        """Whether ``body`` (a decoded message) claims to be a removal command."""
        return isinstance(body, dict) and body.get("action") == "remove"

    @classmethod
    def parse(cls, body: Any) -> RemoveCommand:
        """The validated command; :class:`EventError` naming each bad field otherwise."""
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                               for e in exc.errors())
            raise EventError(f"invalid remove command: {fields}") from exc
