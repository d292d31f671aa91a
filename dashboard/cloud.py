"""The dashboard's one way into the cloud: :class:`Cloud`, a thin facade over
:class:`oneeye.cloud.backoffice.Backoffice` for the management pages and the desk.

It checks what the pages send before anything is stored (a customer id against the
customer directory, a photo by decoding it) and turns the dashboard's settings
(``cloud.*``, :class:`dashboard.settings.CloudSettings`) into a backoffice. Customer photos
go into ``uploads/customers/{id}/`` of the OneEye bucket, where the gallery indexer enrols
them; cases are listed, read and closed; verdicts queue learning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.settings import CloudSettings, DashboardSettings
from oneeye.cloud.backoffice import Backoffice
from oneeye.cloud.uploads import CONTENT_TYPES, CONVERTED_MAX_SIDE, MAX_PHOTO_BYTES
from oneeye.errors import CustomerApiUnavailable, CustomerNotFound, ImageError
from oneeye.images import upload_copy
from oneeye.types import id_refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cloud:
    """The cloud resources of the management screens (``DashboardSettings.cloud``)."""

    settings: CloudSettings

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> Cloud:
        return cls(settings.cloud)

    @property
    def connected(self) -> bool:
        return bool(self.settings.bucket and self.settings.cases_table
                    and self.settings.indexer_queue_url)

    def _backoffice(self) -> Backoffice:
        key_file = self.settings.customer_api_key_file
        return Backoffice(bucket=self.settings.bucket, cases_table=self.settings.cases_table,
                          indexer_queue_url=self.settings.indexer_queue_url,
                          customer_api_url=self.settings.customer_api_url,
                          customer_api_key=key_file.read_text().strip() if key_file else None,
                          agencies_table=self.settings.agencies_table)

    def agencies(self) -> list[str]:
        """The ids of the cloud's agencies (``Backoffice.agencies``); ValueError without
        ``cloud.agencies_table``."""
        return self._backoffice().agencies()

    def add_customer_photo(self, customer_id: str, data: bytes) -> str:
        """Put one photo where the indexer enrols it; return its upload id (the key of its
        verdict). A photo in another format OneEye reads (WebP, TIFF, BMP, GIF …) or larger
        than :data:`CONVERTED_MAX_SIDE` is stored as a JPEG (:func:`upload_copy`). Raises
        ValueError for what is not a readable photo of a valid id, or for an id the customer
        directory does not know; CustomerApiUnavailable when it cannot be asked (nothing is
        stored either way)."""
        refusal = id_refusal("customer id", customer_id)
        if refusal is not None:
            raise ValueError(refusal)
        try:
            self._backoffice().customer(customer_id)
        except CustomerNotFound:
            raise ValueError(f"{customer_id} is not in the customer directory — check the "
                             "id (nothing was saved)") from None
        if not data:
            raise ValueError("the file is empty")
        if len(data) > MAX_PHOTO_BYTES:
            raise ValueError("file too large — use a photo under 10 MB")
        try:
            data, content_type = upload_copy(data, max_side=CONVERTED_MAX_SIDE,
                                             max_bytes=MAX_PHOTO_BYTES)
        except ImageError as exc:
            raise ValueError(f"{exc} (nothing was saved)") from None
        return self._backoffice().add_customer_photo(customer_id, data,
                                                     CONTENT_TYPES[content_type])

    def photo_status(self, upload_id: str) -> dict[str, Any]:
        return self._backoffice().photo_status(upload_id)

    def learn_from_verdict(self, match: dict[str, Any], verdict: str, by: str) -> str:
        """Queue what a verdict teaches the gallery: ``confirmed`` → a template of the
        matched person, ``rejected`` → a negative one, from the sighting's ``encoding``
        (present only when its watchlist learns). Returns ``queued`` or why nothing was
        sent (``no_encoding``, ``no_cloud``); never raises for a missing part, so a verdict
        is recorded whatever the cloud does."""
        encoding = match.get("encoding")
        if not isinstance(encoding, list):
            return "no_encoding"
        if not self.connected:
            return "no_cloud"
        self._backoffice().learn(
            match["watchlist"], str(match["person_id"]), str(match["event_id"]), encoding,
            "positive" if verdict == "confirmed" else "negative", by)
        return "queued"

    def customers(self) -> list[dict[str, Any]]:
        """Customers with photos in the bucket: ``{customer_id, photos, name}``, ``photos``
        each ``{key, state, message}`` (:meth:`Backoffice.photo_verdicts`)
        (``name`` from the directory, None when it is not configured or not answering:
        one failed lookup stops the others, so a down directory costs one timeout)."""
        office = self._backoffice()
        counts = office.customer_photos()
        out: list[dict[str, Any]] = []
        ask = True
        for customer_id in sorted(counts):
            name = None
            if ask:
                try:
                    name = (office.customer(customer_id) or {}).get("name")
                except CustomerNotFound:
                    name = None
                except CustomerApiUnavailable:
                    ask = False
            out.append({"customer_id": customer_id, "name": name,
                        "photos": office.photo_verdicts(customer_id)})
        return out

    def templates(self, person_id: str) -> list[dict[str, Any]]:
        """``person_id``'s templates in the customers gallery, then those held for review
        (:meth:`Backoffice.templates`: ``{template_id, kind, source, by, at, state, …}``;
        [] before the watchlist has a gallery)."""
        return self._backoffice().templates("customers", person_id)

    def remove_template(self, person_id: str, template_id: str, by: str) -> str:
        """Queue the removal of one active template; the command's SQS message id."""
        return self._backoffice().remove_template("customers", person_id, template_id, by)

    def review_template(self, person_id: str, review_id: str,
                        decision: Literal["accept", "dismiss"], by: str) -> str:
        """Queue the decision on a template held for review; the command's SQS message id."""
        return self._backoffice().review_template("customers", person_id, review_id,
                                                  decision, by)

    def card(self, customer_id: str) -> dict[str, Any] | None:
        """The directory's card of ``customer_id`` (:meth:`Backoffice.customer`)."""
        return self._backoffice().customer(customer_id)

    def photos_of(self, customer_id: str) -> list[str]:
        """The keys of ``customer_id``'s enrolment photos in the bucket."""
        return self._backoffice().photos_of(customer_id)

    def photo(self, key: str) -> bytes | None:
        """One customer enrolment photo (a key under ``uploads/customers/``), None else."""
        if not key.startswith("uploads/customers/") or ".." in key:
            return None
        return self._backoffice().photo(key)

    def remove_customer_photo(self, customer_id: str, key: str) -> str | None:
        """Delete one photo; the gallery removal's message id when it was the last one."""
        return self._backoffice().remove_customer_photo(customer_id, key)

    def remove_customer(self, customer_id: str) -> str:
        """Delete the customer's photos and queue their removal from the gallery."""
        return self._backoffice().remove_customer(customer_id)

    def cases(self, agency: str) -> list[dict[str, Any]]:
        """The agency's cases, newest first, each with its ``photos`` count."""
        return self._backoffice().agency_cases(agency)

    def case(self, case_id: str, agency: str) -> dict[str, Any] | None:
        """One case of ``agency``, or None (another agency's case looks absent)."""
        return self._backoffice().agency_case(case_id, agency)

    def close_case(self, case_id: str, agency: str, user: str) -> bool:
        """Close a case of ``agency``; False when it has no such case (ids do not leak)."""
        return self._backoffice().close_case(case_id, agency, closed_by=f"{agency}/{user}")
