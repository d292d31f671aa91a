"""Upload grants: what one presigned POST allows, recorded, and checked by the indexer.

``upload_url`` writes the grant into ``status/{upload_id}.json`` (state
``pending``) when it signs the POST: the exact object key, the case, the agency
and its token hash, the content type and the expiry. The gallery indexer
enrols a phone photo only if :func:`check` finds nothing wrong:

- a grant exists for the upload id in the key, and is still ``pending``;
- it names exactly this key (case-sensitive), this case, this agency (the
  object's ``agency`` metadata) and this content type;
- the object was written before the grant expired (``LastModified`` ≤
  ``expires_at``, what S3 itself enforces on the policy);
- the agency's token is not revoked *now* (a revoke stops photos already in flight).

For an existing case the grant also carries ``case_update``: the details the officer
sent with the photo (only the fields the form gave). ``upload_url`` does not write them
to the case; the indexer applies them (:func:`case_update`) only when it accepts the
photo, so a rejected, refused or never-sent photo changes nothing of the case. A new
case's grant has ``case_update: null`` (the case was created ``pending`` with them).

Anything else is refused: logged, written to the audit trail, and the object is
deleted. Real S3 also refuses such POSTs (except a revoked token's, which it cannot
know about); the local stack's S3 stand-in refuses all of them, the revoked token's too
(:mod:`oneeye.local.post_policy`, :func:`revocation`), and this check holds even where
neither does.

Bank imports under ``uploads/customers/`` have no grant: only the bank's import
role may write there (IAM). An object there carrying an agency's upload metadata
came through a phone's POST and is refused the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from oneeye.cloud.dal import keys

#: Object metadata that only phone uploads carry (``x-amz-meta-…`` fields of the POST).
PHONE_METADATA = ("upload-id", "agency", "case-id")
#: The case fields an upload's form sets (``case_update`` holds only these).
CASE_DETAILS = ("name", "age", "description", "contact", "reported_by")


class AgencyLookup(Protocol):
    def revoked(self, token_sha256: str) -> bool: ...


def record(*, upload_id: str, case_id: str, key: str, agency: str, token_sha256: str,
           content_type: str, expires_at: int, updated_at: str,
           case_update: dict[str, Any] | None = None) -> dict[str, Any]:
    """The pending status of a new upload, which is also its grant (``status/{id}.json``).

    ``case_update``: an existing case's new details, applied only if the photo is accepted.
    """
    return {"upload_id": upload_id, "case_id": case_id, "state": "pending", "reason": None,
            "message": "waiting for the photo", "gallery_version": None,
            "updated_at": updated_at, "key": key, "expires_at": expires_at, "agency": agency,
            "token_sha256": token_sha256, "content_type": content_type,
            "case_update": case_update}


def case_update(grant: Any) -> dict[str, Any]:
    """The case details ``grant`` carries for its accepted photo ({} for none or a new case)."""
    update = grant.get("case_update") if isinstance(grant, dict) else None
    if not isinstance(update, dict):
        return {}
    return {k: update[k] for k in CASE_DETAILS if update.get(k) is not None}


def upload_id_of(key: str) -> str | None:
    """The upload id a phone upload's key names (``uploads/missing/{case}/{id}.{ext}``)."""
    parts = keys.phone_upload(key)
    return parts[1] if parts else None


def check(key: str, head: dict[str, Any], grant: Any, agencies: AgencyLookup) -> str | None:
    """Why the object at ``key`` (its HeadObject answer) is not covered by ``grant``, or None."""
    parts = keys.phone_upload(key)
    if parts is None:
        return f"{key} is not an upload key"
    case_id, upload_id = parts
    if not isinstance(grant, dict):
        return f"no grant for upload {upload_id}"
    if grant.get("state") != "pending":
        return f"the grant of upload {upload_id} was already used ({grant.get('state')})"
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    expected = {"key": (key, grant.get("key")),
                "case": (case_id, grant.get("case_id")),
                "agency": (meta.get("agency"), grant.get("agency")),
                "content type": (_base_type(head.get("ContentType")),
                                 grant.get("content_type"))}
    for what, (actual, granted) in expected.items():
        if actual != granted:
            return f"{what} {actual!r} is not the granted {granted!r}"
    written = head.get("LastModified")
    expires_at = grant.get("expires_at")
    if not isinstance(expires_at, int) or not isinstance(written, datetime) or \
            written.timestamp() > expires_at:
        return f"written at {written} after the grant expired ({expires_at})"
    return revocation(grant, agencies)


def revocation(grant: dict[str, Any], agencies: AgencyLookup) -> str | None:
    """Why ``grant``'s agency token may no longer upload (revoked, unknown, none), or None.

    The indexer's last check, and the local S3 stand-in's at POST time
    (:mod:`oneeye.local.moto_server`): one rule, read consistently *now*.
    """
    token = grant.get("token_sha256")
    if not isinstance(token, str) or agencies.revoked(token):
        return f"agency {grant.get('agency')!r} token is revoked"
    return None


def check_import(key: str, head: dict[str, Any]) -> str | None:
    """Why an object under ``uploads/customers/`` is not a bank import, or None."""
    meta = {k.lower() for k in (head.get("Metadata") or {})}
    phone = sorted(meta.intersection(PHONE_METADATA))
    if phone:
        return f"{key} carries phone-upload metadata {phone}: not a bank import"
    return None


def _base_type(value: object) -> str | None:
    return str(value).split(";")[0].strip().lower() if value else None
