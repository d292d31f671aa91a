"""What the dashboard asks of the cloud: photos, verdicts, cases, and the IT email.

The one module the dashboard imports from :mod:`oneeye.cloud` (the layer contracts
allow nothing else), so a change behind it (a table, a key, a queue) never reaches
the dashboard's code. It offers:

- customers' enrolment photos: put one where the gallery indexer enrols it, read the
  indexer's verdict, count and list photos per customer, read one, remove a customer
  (photos deleted and a :class:`~oneeye.cloud.indexer_commands.RemoveCommand` queued);
- the customer directory (:class:`~oneeye.cloud.customers.CustomerApi`, when configured):
  whether an id is a customer, and their name for the management screens;
- an agency's cases with their photo counts, one case, and closing one
  (:func:`oneeye.cloud.functions.cases.close`);
- the agencies (:meth:`Backoffice.agencies`): the ids an agency user of the dashboard
  may belong to, from the agencies table (``oneeye agency add``);
- :func:`notify_it`: a plain message on an SNS topic (branch IT's email), filterable
  by ``site_id``;
- learning (:mod:`oneeye.cloud.indexer_commands`): :meth:`Backoffice.learn` queues a verdict's
  template, :meth:`Backoffice.templates` lists a person's templates and those held for
  review, :meth:`Backoffice.remove_template` and :meth:`Backoffice.review_template` queue
  one template's removal or a held one's acceptance / dismissal.

Validation of what a person typed (ids, file types) stays in the dashboard; this
module takes checked values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from oneeye.cloud.agencies import Agencies
from oneeye.cloud.customers import CustomerApi, CustomerCard
from oneeye.cloud.dal import gallery_store, keys, store
from oneeye.cloud.functions.cases import close
from oneeye.cloud.indexer_commands import (
    LearnCommand,
    RemoveCommand,
    RemoveTemplateCommand,
    ReviewCommand,
)
from oneeye.ids import new_id
from oneeye.types import Watchlist, utc_now


@dataclass(frozen=True)
class Backoffice:
    """The bucket, cases table and indexer queue of one OneEye cloud."""

    bucket: str
    cases_table: str
    indexer_queue_url: str
    #: The bank's customer directory; empty: ids are not checked and no names are shown.
    customer_api_url: str = ""
    #: Its key (``x-api-key``), if it asks for one.
    customer_api_key: str | None = None
    agencies_table: str = ""

    def _bucket(self) -> store.Bucket:
        return store.Bucket(self.bucket)

    def add_customer_photo(self, customer_id: str, data: bytes, ext: str) -> str:
        """Put one checked JPEG/PNG (``ext`` ``jpg`` or ``png``) where the indexer enrols
        it; returns its upload id, the key of its verdict (:meth:`photo_status`)."""
        upload = keys.UploadKey("customers", customer_id, new_id())
        self._bucket().put(keys.upload(upload.watchlist, customer_id, upload.stem, ext), data,
                           content_type=f"image/{'jpeg' if ext == 'jpg' else ext}")
        return keys.upload_id(upload)

    def photo_status(self, upload_id: str) -> dict[str, Any]:
        """The indexer's verdict, or ``{"state": "pending"}`` before it has one."""
        status = self._bucket().get_json(keys.status(upload_id))
        return status if isinstance(status, dict) else {"state": "pending"}

    def customer_photos(self) -> dict[str, int]:
        """Customer id → number of enrolment photos in the bucket."""
        return self._photo_counts("customers")

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The directory's card of ``customer_id`` (``{id, name, photo_url, …}``), or None
        when no directory is configured. Raises :class:`~oneeye.errors.CustomerNotFound`
        (not a customer) or :class:`~oneeye.errors.CustomerApiUnavailable`."""
        if not self.customer_api_url:
            return None
        record = CustomerApi(self.customer_api_url, self.customer_api_key).get(customer_id)
        return CustomerCard.from_record(record, customer_id).model_dump(exclude_none=True)

    def photos_of(self, customer_id: str) -> list[str]:
        """The keys of ``customer_id``'s enrolment photos, oldest name first."""
        return sorted(self._bucket().keys(keys.uploads_of("customers", customer_id)))

    def photo_verdicts(self, customer_id: str) -> list[dict[str, Any]]:
        """``customer_id``'s enrolment photos with the indexer's verdict on each, oldest
        name first: ``{key, state, message}``; ``state`` is ``accepted``, ``rejected``,
        ``needs_review`` or ``pending`` (no verdict yet, or a photo from before verdicts
        were kept)."""
        out = []
        for key in self.photos_of(customer_id):
            parsed = keys.parse_upload(key)
            verdict = (self._bucket().get_json(keys.status(keys.upload_id(parsed)))
                       if parsed is not None else None)
            verdict = verdict if isinstance(verdict, dict) else {}
            out.append({"key": key, "state": str(verdict.get("state") or "pending"),
                        "message": verdict.get("message")})
        return out

    def photo(self, key: str) -> bytes | None:
        """One enrolment photo's bytes (a key of :meth:`photos_of`), None if gone."""
        found = self._bucket().get(key)
        return None if found is None else found.data

    def remove_customer_photo(self, customer_id: str, key: str) -> str | None:
        """Delete one of ``customer_id``'s enrolment photos (a key of :meth:`photos_of`;
        ValueError for another key). The gallery keeps one entry per person built from
        the accepted photos, so removing the last photo removes the person (the command's
        SQS message id is returned); otherwise None."""
        if key not in self.photos_of(customer_id):
            raise ValueError(f"{customer_id} has no photo {key}")
        self._bucket().delete(key)
        if self.photos_of(customer_id):
            return None
        command = RemoveCommand(watchlist="customers", person_id=customer_id)
        return store.send(self.indexer_queue_url, command.to_json())

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

    def agency_case(self, case_id: str, agency: str) -> dict[str, Any] | None:
        """One case of ``agency`` (with its ``told`` list), or None — also for another
        agency's case, so ids do not leak."""
        case = store.Cases(self.cases_table).get(case_id)
        return case if case is not None and case.get("agency") == agency else None

    def close_case(self, case_id: str, agency: str, closed_by: str) -> bool:
        """Close a case of ``agency`` and queue its removal; False when it has no such
        case (another agency's case looks absent: ids do not leak)."""
        cases = store.Cases(self.cases_table)
        case = cases.get(case_id)
        if case is None or case.get("agency") != agency:
            return False
        close(cases, self.indexer_queue_url, case_id, closed_by=closed_by)
        return True

    def learn(self, watchlist: Watchlist, person_id: str, event_id: str,
              encoding: list[float], kind: Literal["positive", "negative"], by: str) -> str:
        """Queue a verdict to learn from (``positive``: Confirm; ``negative``: Not this
        person) with the sighting's 128-float ``encoding``; returns the SQS message id.
        The indexer refuses it for a watchlist that does not learn (LEARN_WATCHLISTS).
        Raises :class:`~oneeye.errors.EventError` for an invalid value."""
        command = LearnCommand.parse({"watchlist": watchlist, "person_id": person_id,
                                      "event_id": event_id, "encoding": encoding,
                                      "kind": kind, "by": by, "at": utc_now()})
        return store.send(self.indexer_queue_url, command.to_json())

    def templates(self, watchlist: Watchlist, person_id: str) -> list[dict[str, Any]]:
        """``person_id``'s templates in the newest gallery, then those held for review.

        Each: ``{template_id, person_id, kind: photo | sighting | negative, source (photo
        key or event id), by, at, state: "active"}``; held ones also ``reason``
        (``far_template`` | ``unlike_person``), ``distance``, ``message``, ``held_at`` and
        ``state: "needs_review"`` (their ``template_id`` is the review id)."""
        bucket = self._bucket()
        g, _ = gallery_store.read_latest(bucket, watchlist)
        out: list[dict[str, Any]] = [{**t.to_dict(), "state": "active"}
                                     for t in g.templates(person_id)]
        for key in sorted(bucket.keys(keys.reviews_of(watchlist, person_id))):
            held = bucket.get_json(key)
            if isinstance(held, dict):
                out.append({"template_id": held.get("review_id"), "person_id": person_id,
                            **{k: held.get(k) for k in ("kind", "source", "by", "at",
                                                         "reason", "distance", "message",
                                                         "held_at")},
                            "state": "needs_review"})
        return out

    def remove_template(self, watchlist: Watchlist, person_id: str, template_id: str,
                        by: str) -> str:
        """Queue the removal of one active template (a photo's, a sighting's or a
        negative); returns the SQS message id."""
        command = RemoveTemplateCommand.parse({"watchlist": watchlist, "person_id": person_id,
                                               "template_id": template_id, "by": by})
        return store.send(self.indexer_queue_url, command.to_json())

    def review_template(self, watchlist: Watchlist, person_id: str, review_id: str,
                        decision: Literal["accept", "dismiss"], by: str) -> str:
        """Queue the decision on a template held for review; returns the SQS message id."""
        command = ReviewCommand.parse({"watchlist": watchlist, "person_id": person_id,
                                       "review_id": review_id, "decision": decision,
                                       "by": by})
        return store.send(self.indexer_queue_url, command.to_json())

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
