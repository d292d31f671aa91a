"""The S3 key grammar of the one OneEye bucket: every key is built and parsed here.

::

    uploads/{watchlist}/{person_id}/{stem}.{ext}   photos to enrol (→ indexer queue)
        uploads/missing/{case_id}/{upload_id}.{jpg|png}     a phone's upload (has a grant)
        uploads/customers/{customer_id}/{stem}.{jpg|png}    a bank import / dashboard photo
    status/{upload_id}.json                        an upload's grant, then its verdict
    gallery/{watchlist}/{version}.npz | .json      a gallery version and its manifest
    gallery/{watchlist}/latest.json                the newest version's manifest + "key"
    snapshots/{event_id}.jpg                       a missing-person sighting's face crop
    audit/{YYYY-MM-DD}/{audit_id}.json             one agency action (write-once)
    review/{watchlist}/{person_id}/{review_id}.json a template held for review (learning)

Only ``uploads/`` notifies the indexer queue (``cloud/template.yaml``), so nothing
written elsewhere is ever indexed. The edge may not import the cloud (layer contracts),
so ``oneeye.edge.gallery.sync`` spells ``gallery/{watchlist}/latest.json`` itself and
otherwise follows the ``key`` of that manifest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from oneeye.types import WATCHLISTS, Watchlist

UPLOADS: Final = "uploads/"
STATUS: Final = "status/"
GALLERY: Final = "gallery/"
SNAPSHOTS: Final = "snapshots/"
AUDIT: Final = "audit/"
REVIEW: Final = "review/"

#: ``uploads/{watchlist}/{person}/{stem}.{ext}``; the indexer enrols nothing else.
_UPLOAD: Final = re.compile(
    r"^uploads/(?P<watchlist>" + "|".join(WATCHLISTS) + r")/(?P<person>[^/]+)/(?P<stem>[^/]+)"
    r"\.(?P<ext>jpg|jpeg|png)$", re.IGNORECASE)
#: A phone's upload: ``uploads/missing/{case_id}/{upload_id}.{ext}`` (lower-case, exact).
_PHONE_UPLOAD: Final = re.compile(
    r"^uploads/missing/(?P<case>[^/]+)/(?P<upload>[^/.]+)\.[a-z]+$")


@dataclass(frozen=True, slots=True)
class UploadKey:
    """The parts of an ``uploads/`` key (:func:`parse_upload`)."""

    watchlist: Watchlist
    person_id: str
    #: The file name without extension: a phone upload's upload id, else any stem.
    stem: str


def upload(watchlist: Watchlist, person_id: str, stem: str, ext: str) -> str:
    """``uploads/{watchlist}/{person_id}/{stem}.{ext}`` (``ext`` without the dot)."""
    return f"{UPLOADS}{watchlist}/{person_id}/{stem}.{ext}"


def uploads_of(watchlist: Watchlist, person_id: str | None = None) -> str:
    """The prefix of every upload of ``watchlist`` (of one person, if given)."""
    return f"{UPLOADS}{watchlist}/" + (f"{person_id}/" if person_id is not None else "")


def parse_upload(key: str) -> UploadKey | None:
    """The parts of an upload key, or None for anything else (watchlist lower-cased)."""
    m = _UPLOAD.match(key)
    if m is None:
        return None
    watchlist = next(w for w in WATCHLISTS if w == m["watchlist"].lower())
    return UploadKey(watchlist=watchlist, person_id=m["person"], stem=m["stem"])


def upload_id(parsed: UploadKey) -> str:
    """The id under which an upload's verdict is kept (:func:`status`): a phone upload's
    stem (the id its grant was issued for), else ``{person_id}-{stem}`` (a desk's customer
    photo has no grant)."""
    return parsed.stem if parsed.watchlist == "missing" else f"{parsed.person_id}-{parsed.stem}"


def person_of(key: str) -> str | None:
    """The person (case or customer) id of an ``uploads/{watchlist}/{id}/{file}`` key."""
    parts = key.split("/")
    return parts[2] if len(parts) == 4 and key.startswith(UPLOADS) else None


def phone_upload(key: str) -> tuple[str, str] | None:
    """(case_id, upload_id) of a phone upload's key, else None (case-sensitive)."""
    m = _PHONE_UPLOAD.match(key)
    return (m["case"], m["upload"]) if m else None


def status(upload_id: str) -> str:
    """``status/{upload_id}.json``: the upload's grant while pending, then its verdict."""
    return f"{STATUS}{upload_id}.json"


def accepted(upload_key: str) -> str:
    """Where the indexer keeps an accepted phone photo: ``uploads/missing/…`` →
    ``accepted/missing/…`` (only the indexer writes there; no POST policy grants it, so a
    reused or racing grant can never delete a case's reference photo)."""
    return "accepted/" + upload_key.removeprefix(UPLOADS)


def gallery_prefix(watchlist: str) -> str:
    return f"{GALLERY}{watchlist}/"


def gallery_latest(watchlist: str) -> str:
    return gallery_prefix(watchlist) + "latest.json"


def gallery_version(watchlist: str, version: int, ext: str) -> str:
    """``gallery/{watchlist}/{version}.{ext}`` (``npz`` data, ``json`` manifest)."""
    return f"{gallery_prefix(watchlist)}{version}.{ext}"


def snapshot(event_id: str) -> str:
    return f"{SNAPSHOTS}{event_id}.jpg"


def audit_day(day: str) -> str:
    """The prefix of one UTC day's audit records (``day`` is ``YYYY-MM-DD``)."""
    return f"{AUDIT}{day}/"


def audit(day: str, audit_id: str) -> str:
    return f"{audit_day(day)}{audit_id}.json"


def reviews_of(watchlist: str, person_id: str) -> str:
    """The prefix of ``person_id``'s templates held for review."""
    return f"{REVIEW}{watchlist}/{person_id}/"


def review(watchlist: str, person_id: str, review_id: str) -> str:
    """``review/{watchlist}/{person_id}/{review_id}.json``: a template held for review
    (its encoding, source and reason), until accepted or dismissed."""
    return f"{reviews_of(watchlist, person_id)}{review_id}.json"
