"""What the dashboard asks of the cloud: photos, verdicts, cases, and the IT email.

The one module the dashboard imports from :mod:`oneeye.cloud` (the layer contracts
allow nothing else), so a change behind it (a table, a key, a queue) never reaches
the dashboard's code. It offers:

- customers' enrolment photos: put one where the gallery indexer enrols it, read the
  indexer's verdict, count photos per customer, remove a customer (photos deleted and
  a :class:`~oneeye.cloud.removals.RemoveCommand` queued);
- an agency's cases with their photo counts, and closing one
  (:func:`oneeye.cloud.functions.cases.close`);
- the agencies (:meth:`Backoffice.agencies`): the ids an agency user of the dashboard
  may belong to, from the agencies table (``oneeye agency add``);
- :func:`notify_it`: a plain message on an SNS topic (branch IT's email), filterable
  by ``site_id``.

Validation of what a person typed (ids, file types) stays in the dashboard; this
module takes checked values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from oneeye.cloud.agencies import Agencies
from oneeye.cloud.dal import keys, store
from oneeye.cloud.functions.cases import close
from oneeye.cloud.removals import RemoveCommand
from oneeye.ids import new_id
from oneeye.types import Watchlist


@dataclass(frozen=True)
class Backoffice:
    """The bucket, cases table and indexer queue of one OneEye cloud."""

    bucket: str
    cases_table: str
    indexer_queue_url: str
    agencies_table: str = ""

    def _bucket(self) -> store.Bucket:
        return store.Bucket(self.bucket)

    def add_customer_photo(self, customer_id: str, data: bytes, ext: str) -> str:
        """Put one checked JPEG/PNG (``ext`` ``jpg`` or ``png``) where the indexer enrols
        it; returns its upload id, the key of its verdict (:meth:`photo_status`)."""
        stem = new_id()
        self._bucket().put(keys.upload("customers", customer_id, stem, ext), data,
                           content_type=f"image/{'jpeg' if ext == 'jpg' else ext}")
        return f"{customer_id}-{stem}"  # the indexer's upload id for a key without metadata

    def photo_status(self, upload_id: str) -> dict[str, Any]:
        """The indexer's verdict, or ``{"state": "pending"}`` before it has one."""
        status = self._bucket().get_json(keys.status(upload_id))
        return status if isinstance(status, dict) else {"state": "pending"}

    def customer_photos(self) -> dict[str, int]:
        """Customer id → number of enrolment photos in the bucket."""
        return self._photo_counts("customers")

    def remove_customer(self, customer_id: str) -> str:
        """Delete the customer's photos and queue their removal from the gallery; returns
        the command's SQS message id."""
        bucket = self._bucket()
        for key in bucket.keys(keys.uploads_of("customers", customer_id)):
            bucket.delete(key)
        command = RemoveCommand(watchlist="customers", person_id=customer_id)
        return store.send(self.indexer_queue_url, command.to_json())

    def agency_cases(self, agency: str) -> list[dict[str, Any]]:
        """The agency's cases, newest first, each with its ``photos`` count."""
        photos = self._photo_counts("missing")
        items = store.Cases(self.cases_table).scan(agency=agency)
        items.sort(key=lambda c: str(c.get("created_at", "")), reverse=True)
        return [{**c, "photos": photos.get(str(c["case_id"]), 0)} for c in items]

    def close_case(self, case_id: str, agency: str, closed_by: str) -> bool:
        """Close a case of ``agency`` and queue its removal; False when it has no such
        case (another agency's case looks absent: ids do not leak)."""
        cases = store.Cases(self.cases_table)
        case = cases.get(case_id)
        if case is None or case.get("agency") != agency:
            return False
        close(cases, self.indexer_queue_url, case_id, closed_by=closed_by)
        return True

    def agencies(self) -> list[str]:
        """The ids of the agencies with at least one unrevoked token, sorted. An agency's
        id is the name its records carry (``oneeye agency add NAME``; its cases'
        ``agency``). Raises ValueError when no agencies table is configured."""
        if not self.agencies_table:
            raise ValueError("no agencies table configured (cloud.agencies_table)")
        return sorted({a.name for a in Agencies(self.agencies_table).list() if not a.revoked})

    def _photo_counts(self, watchlist: Watchlist) -> dict[str, int]:
        people = (keys.person_of(k) for k in self._bucket().keys(keys.uploads_of(watchlist)))
        return dict(Counter(p for p in people if p is not None))


def notify_it(topic_arn: str, message: str, *, site_id: str, subject: str) -> str:
    """Publish ``message`` on ``topic_arn`` (SNS subjects: ASCII, < 100 characters);
    returns the SNS message id."""
    return store.publish(topic_arn, message, site_id=site_id, subject=subject[:99])
