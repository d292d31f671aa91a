"""upload_url and upload_status: a phone's photo of a missing person into S3, and its fate.

``POST /api/uploads`` (agency token) validates the case form, creates a new case in
``CASES_TABLE`` (``pending`` until the indexer accepts a photo and sets ``open``) — an
existing case is left as it is: the form's details go into the grant as ``case_update``
and the indexer applies them only with an accepted photo — and answers a presigned
POST for ``uploads/missing/{case_id}/{upload_id}.jpg`` (``.png`` for PNG) whose
policy pins the key, ``Content-Type`` (exactly the declared image/jpeg or
image/png), ``content-length-range`` 1 byte … ``UPLOAD_MAX_BYTES`` (10 MB) and
the object metadata ``case-id``, ``upload-id``, ``agency``; it expires after
``UPLOAD_URL_TTL_S`` (300 s). It writes ``status/{upload_id}.json`` as
``pending`` at once, so the phone can poll immediately; that record is also the
upload's *grant* (:mod:`oneeye.cloud.grants`): the gallery indexer enrols only an
object matching it exactly, and re-checks size, type and face.

Case ids: a new case gets ``MP-{year}-{NNNN}`` from an atomic counter item
(``counter:case:MP-{year}``) in ``IDEMPOTENCY_TABLE``. An existing case may only
be extended by the agency that opened it (403 otherwise); an accepted photo for a
closed case re-opens it — the same person is missing again.

``GET /api/uploads/{upload_id}`` (agency token) answers the status with the
sentence the phone shows: ``accepted — cameras now looking for <name>
(gallery v12)``, or the rejection reason and what to do. A ``pending`` upload
whose link expired without a photo arriving is reported as rejected
``expired``. Another agency's upload is a 404, not a 403: ids do not leak. The answer
names only what the phone shows (:func:`describe`), never the grant's key, token hash or
``case_update``.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from oneeye import aws
from oneeye.cloud import grants
from oneeye.cloud.agencies import Agencies, Agency, Audit, RateLimiter
from oneeye.cloud.api import Request, Response, respond
from oneeye.cloud.dal import store
from oneeye.cloud.settings import UploadStatusSettings, UploadUrlSettings
from oneeye.errors import ApiError
from oneeye.ids import is_uuid7, new_id
from oneeye.types import id_refusal, is_id, utc_now

log = logging.getLogger(__name__)

CONTENT_TYPES = {"image/jpeg": "jpg", "image/png": "png"}
_LIMITS = {"name": 100, "description": 1000, "contact": 200, "agency": 120, "filename": 200}
#: Seconds after the link's expiry before a still-pending upload counts as expired
#: (an upload that started just before expiry may still be arriving).
EXPIRY_GRACE_S = 60

#: Reason code → what the phone shows, for upload_status and the indexer alike (the
#: indexer's own sentence, when it says more, goes in ``detail``).
REASONS = {
    "no_face": "no face found — use a photo where the face is clearly visible",
    "several_faces": "{count} faces — crop to one person",
    "face_too_small": "face too small — use a closer photo, or crop around the face",
    "too_blurred": "face too blurred — use a sharper photo",
    "too_dark": "face too dark — use a brighter photo",
    "too_large": "file too large — use a photo under {mb} MB",
    "not_an_image": "not an image — use a JPEG or PNG photo",
    "unreadable": "the photo could not be read (corrupt or cut off) — take it again",
    "invalid_id": "invalid case or customer id — use 1–128 letters, digits and _.:@-",
    "expired": "the upload link expired before the photo arrived — try again",
    "refused": "the photo did not match its upload link (late, revoked or another type) — "
               "request a new link",
}
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}


@dataclass(frozen=True)
class UploadDeps:
    bucket: store.Bucket
    cases: store.Cases
    agencies: Agencies
    limiter: RateLimiter
    audit: Audit
    counters_table: str
    max_bytes: int = 10 * 1024 * 1024
    url_ttl_s: int = 300


@dataclass(frozen=True)
class CaseForm:
    case_id: str | None
    name: str
    content_type: str
    age: int | None = None
    description: str | None = None
    contact: str | None = None
    reported_by: str | None = None
    filename: str | None = None


def parse_form(body: dict[str, Any], max_bytes: int) -> CaseForm:
    """The validated form, or one 400 listing every bad field."""
    problems: dict[str, str] = {}

    def text(key: str, required: bool = False) -> str | None:
        raw = body.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                problems[key] = "required"
            return None
        if not isinstance(raw, str):
            problems[key] = "must be text"
            return None
        value = " ".join(raw.split()) if key != "description" else raw.strip()
        if len(value) > _LIMITS[key]:
            problems[key] = f"at most {_LIMITS[key]} characters"
        return value

    case_id = body.get("case_id")
    if case_id in (None, ""):
        case_id = None
    elif not isinstance(case_id, str) or not is_id(case_id.strip()):
        problems["case_id"] = (id_refusal("case id", case_id.strip() if isinstance(case_id, str)
                                          else case_id) or "") + " (e.g. MP-2026-0042)"
    else:
        case_id = case_id.strip()
    age: int | None = None
    raw_age = body.get("age")
    if raw_age not in (None, ""):
        try:
            age = int(str(raw_age).strip())
            if not 0 <= age <= 130:
                raise ValueError
        except ValueError:
            problems["age"] = "a whole number of years, 0–130"
    content_type = str(body.get("content_type") or "").lower().strip()
    if content_type not in CONTENT_TYPES:
        problems["content_type"] = "image/jpeg or image/png"
    size = body.get("size")
    if size is not None and (not isinstance(size, int) or size > max_bytes or size < 1):
        if isinstance(size, int) and size > max_bytes:
            raise ApiError(413, "too_large", REASONS["too_large"].format(mb=max_bytes >> 20))
        problems["size"] = "the photo's size in bytes"
    form = CaseForm(case_id=case_id, name=text("name", required=True) or "",
                    content_type=content_type, age=age, description=text("description"),
                    # a banner says whom to call: a new case needs the agency's contact
                    contact=text("contact", required=case_id is None),
                    reported_by=text("agency"),
                    filename=text("filename"))
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise ApiError(400, "invalid_form", f"please check the form — {listed}",
                       details=problems)
    return form


def create_upload(req: Request, deps: UploadDeps) -> Response:
    agency = deps.agencies.authenticate(req)
    form = parse_form(req.json(), deps.max_bytes)
    deps.limiter.hit(agency.token_sha256)
    case_id = form.case_id
    existing = None
    if case_id is not None:
        existing = deps.cases.get(case_id)
        if existing is not None and existing.get("agency") not in (None, agency.name):
            raise ApiError(403, "forbidden", f"case {case_id} belongs to another agency")
        if existing is None and not form.contact:  # a new case under the id the officer chose
            raise ApiError(400, "invalid_form", "please check the form — contact: a new case "
                           "needs the agency's phone for sightings",
                           details={"contact": "required"})
    else:
        case_id = _new_case_id(deps)
    details = {"name": form.name, "age": form.age, "description": form.description,
               "contact": form.contact, "reported_by": form.reported_by}
    case_update: dict[str, Any] | None = None
    if existing is None:
        # A new case is "pending" until the indexer accepts a photo (it sets "open"): a
        # rejected upload (no face, two faces) must not leave an open case no camera can match.
        case = deps.cases.upsert(case_id, {**details, "agency": agency.name,
                                           "status": "pending"})
    else:
        # An existing case is not touched here: its new details ride in the grant and the
        # indexer applies them only with an accepted photo (which also re-opens a closed
        # case), so a rejected, refused or never-sent photo changes nothing of the case.
        case = existing
        case_update = {k: v for k, v in details.items() if v is not None}
    upload_id = new_id()
    key = f"uploads/missing/{case_id}/{upload_id}.{CONTENT_TYPES[form.content_type]}"
    post = presign(deps, key, form.content_type, {
        "x-amz-meta-case-id": case_id, "x-amz-meta-upload-id": upload_id,
        "x-amz-meta-agency": agency.name})
    expires_at = int(time.time()) + deps.url_ttl_s
    # The pending status is also the upload's grant: the indexer enrols only what it names.
    deps.bucket.put_json(f"status/{upload_id}.json", grants.record(
        upload_id=upload_id, case_id=case_id, key=key, agency=agency.name,
        token_sha256=agency.token_sha256, content_type=form.content_type,
        expires_at=expires_at, updated_at=utc_now(), case_update=case_update),
        cache_control="no-cache")
    deps.audit.record("upload_requested", agency, req, case_id=case_id, upload_id=upload_id,
                      key=key, content_type=form.content_type, filename=form.filename,
                      new_case=form.case_id is None)
    return respond(201, {
        "upload_id": upload_id, "case_id": case_id, "name": case.get("name"),
        "url": post["url"], "fields": post["fields"], "expires_in": deps.url_ttl_s,
        "max_bytes": deps.max_bytes, "status_url": f"/api/uploads/{upload_id}",
    })


def presign(deps: UploadDeps, key: str, content_type: str,
            metadata: dict[str, str]) -> dict[str, Any]:
    fields = {"Content-Type": content_type, **metadata}
    conditions: list[Any] = [{"Content-Type": content_type},
                             ["content-length-range", 1, deps.max_bytes]]
    conditions.extend({k: v} for k, v in metadata.items())
    # The local stack's HTTP API rewrites ``url`` to its same-origin /s3-upload proxy;
    # the policy signs bucket, key and fields, not the host, so it stays valid.
    post = aws.client("s3").generate_presigned_post(
        Bucket=deps.bucket.name, Key=key, Fields=fields, Conditions=conditions,
        ExpiresIn=deps.url_ttl_s)
    return dict(post)


def _new_case_id(deps: UploadDeps) -> str:
    year = utc_now()[:4]
    for _ in range(20):
        resp = aws.client("dynamodb").update_item(
            TableName=deps.counters_table, Key={"event_id": {"S": f"counter:case:MP-{year}"}},
            UpdateExpression="ADD #n :one SET kind = :kind",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":kind": {"S": "counter"}},
            ReturnValues="UPDATED_NEW")
        case_id = f"MP-{year}-{int(resp['Attributes']['n']['N']):04d}"
        # A case typed in by hand may already hold the next number: skip it.
        if deps.cases.get(case_id) is None:
            return case_id
    raise ApiError(503, "case_ids_exhausted", "could not allocate a new case id; retry")


def upload_status(req: Request, deps: UploadDeps) -> Response:
    agency = deps.agencies.authenticate(req)
    upload_id = req.path_params.get("upload_id", "")
    if not is_uuid7(upload_id):
        raise ApiError(404, "not_found", f"no upload {upload_id[:64]!r}")
    status = deps.bucket.get_json(f"status/{upload_id}.json")
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
             deps: UploadDeps) -> dict[str, Any]:
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


def rejection_message(reason: str, detail: str, max_bytes: int) -> str:
    template = REASONS.get(reason)
    if template is None:
        return detail or f"rejected ({reason or 'no reason given'})"
    m = re.search(r"(\d+) faces", detail)
    count = int(m.group(1)) if m else 2
    return template.format(count=_NUMBERS.get(count, str(count)), mb=max_bytes >> 20)


def _expired(status: dict[str, Any], deps: UploadDeps) -> bool:
    expires_at = status.get("expires_at")
    if not isinstance(expires_at, int) or time.time() < expires_at + EXPIRY_GRACE_S:
        return False
    key = status.get("key")
    return not isinstance(key, str) or deps.bucket.head(key) is None


def upload_deps(settings: UploadUrlSettings | UploadStatusSettings) -> UploadDeps:
    """upload_url's deps; upload_status reads no counters (no idempotency table)."""
    bucket = store.Bucket(settings.oneeye_bucket)
    counters, rate = ((settings.idempotency_table, settings.upload_rate_per_min)
                      if isinstance(settings, UploadUrlSettings) else ("", 1))
    return UploadDeps(
        bucket=bucket, cases=store.Cases(settings.cases_table),
        agencies=Agencies(settings.agencies_table),
        limiter=RateLimiter(counters, rate),
        audit=Audit(bucket), counters_table=counters,
        max_bytes=settings.upload_max_bytes, url_ttl_s=settings.upload_url_ttl_s,
    )


def uploads_from_env(*, status_only: bool = False) -> UploadDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    if status_only:
        return upload_deps(UploadStatusSettings.from_env(root="upload_status"))
    return upload_deps(UploadUrlSettings.from_env(root="upload_url"))
