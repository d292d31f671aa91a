"""upload_status: what became of a phone's upload (``GET /api/uploads/{upload_id}``).

``GET /api/uploads/{upload_id}`` (agency token) answers the status with the
sentence the phone shows: ``accepted — cameras now looking for <name>
(gallery v12)``, or the rejection reason and what to do. A ``pending`` upload
whose link expired without a photo arriving is reported as rejected
``expired``. Another agency's upload is a 404, not a 403: ids do not leak. The answer
names only what the phone shows (:func:`describe`), never the grant's key, token hash or
``case_update``.
"""


from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from oneeye.cloud.agencies import Agencies
from oneeye.cloud.api import Request, Response, respond
from oneeye.cloud.dal import keys, store
from oneeye.cloud.dal.agency_tokens import Agency
from oneeye.cloud.settings import UploadStatusSettings
from oneeye.cloud.uploads import EXPIRY_GRACE_S, MAX_PHOTO_BYTES, REASONS, rejection_message
from oneeye.errors import ApiError
from oneeye.ids import is_uuid7


@dataclass(frozen=True)
class StatusDeps:
    bucket: store.Bucket
    cases: store.Cases
    agencies: Agencies
    max_bytes: int = MAX_PHOTO_BYTES


def upload_status(req: Request, deps: StatusDeps) -> Response:
    agency = deps.agencies.authenticate(req)
    upload_id = req.path_params.get("upload_id", "")
    if not is_uuid7(upload_id):
        raise ApiError(404, "not_found", f"no upload {upload_id[:64]!r}")
    status = deps.bucket.get_json(keys.status(upload_id))
    if not isinstance(status, dict):
        raise ApiError(404, "not_found", f"no upload {upload_id}")
    case_id = str(status.get("case_id") or "")
    case = deps.cases.get(case_id) if case_id else None
    if not _may_see(agency, status, case):
        raise ApiError(404, "not_found", f"no upload {upload_id}")
    return respond(200, describe(status, case, deps))


def _may_see(agency: Agency, status: dict[str, Any], case: dict[str, Any] | None) -> bool:
    owner = status.get("agency") or (case or {}).get("agency")
    return owner == agency.name


def describe(status: dict[str, Any], case: dict[str, Any] | None,
             deps: StatusDeps) -> dict[str, Any]:
    """The status the phone shows: state, reason, message (what to do), detail."""
    name = (case or {}).get("name") or status.get("case_id")
    out: dict[str, Any] = {
        "upload_id": status.get("upload_id"), "case_id": status.get("case_id"),
        "name": name, "state": status.get("state"), "reason": status.get("reason"),
        "gallery_version": status.get("gallery_version"),
        "updated_at": status.get("updated_at"), "detail": None,
    }
    state = status.get("state")
    if state == "accepted":
        out["message"] = (f"accepted — cameras now looking for {name} "
                          f"(gallery v{status.get('gallery_version')})")
    elif state == "rejected":
        detail = str(status.get("message") or "")
        out["message"] = rejection_message(str(status.get("reason") or ""), detail,
                                           deps.max_bytes)
        out["detail"] = detail if detail and detail != out["message"] else None
    elif state == "pending" and _expired(status, deps):
        out.update(state="rejected", reason="expired", message=REASONS["expired"])
    else:
        out["message"] = "checking photo…"
    return out


def _expired(status: dict[str, Any], deps: StatusDeps) -> bool:
    expires_at = status.get("expires_at")
    if not isinstance(expires_at, int) or time.time() < expires_at + EXPIRY_GRACE_S:
        return False
    key = status.get("key")
    return not isinstance(key, str) or deps.bucket.head(key) is None


def status_deps(settings: UploadStatusSettings) -> StatusDeps:
    return StatusDeps(bucket=store.Bucket(settings.oneeye_bucket),
                      cases=store.Cases(settings.cases_table),
                      agencies=Agencies(settings.agencies_table),
                      max_bytes=settings.upload_max_bytes)


def status_from_env() -> StatusDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return status_deps(UploadStatusSettings.from_env(root="upload_status"))
