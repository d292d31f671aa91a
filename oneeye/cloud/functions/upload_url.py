"""upload_url: a phone's photo of a missing person into S3 (``POST /api/uploads``).

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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from oneeye.cloud import grants
from oneeye.cloud.agencies import Agencies, Audit, RateLimiter
from oneeye.cloud.api import Request, Response, respond
from oneeye.cloud.dal import keys, store
from oneeye.cloud.dal.state import Counters
from oneeye.cloud.settings import UploadUrlSettings
from oneeye.cloud.uploads import CONTENT_TYPES, MAX_PHOTO_BYTES, REASONS
from oneeye.errors import ApiError
from oneeye.ids import new_id
from oneeye.types import id_refusal, is_id, utc_now

_LIMITS = {"name": 100, "description": 1000, "contact": 200, "agency": 120, "filename": 200}


@dataclass(frozen=True)
class UrlDeps:
    bucket: store.Bucket
    cases: store.Cases
    agencies: Agencies
    limiter: RateLimiter
    audit: Audit
    #: Case-id sequence numbers (the state table's ``counter`` namespace).
    counters: Counters
    max_bytes: int = MAX_PHOTO_BYTES
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
    # Imported here: upload_status and the indexer share this module but never parse a
    # contact, so only upload_url's package needs phonenumbers and email-validator.
    from oneeye import contacts
    problems: dict[str, str] = {}

    def text(key: str, required: bool = False) -> str | None:
        raw = body.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                problems[key] = (f"required — {contacts.RULE}" if key == "contact"
                             else "required")
            return None
        if not isinstance(raw, str):
            problems[key] = "must be text"
            return None
        # the contact is checked as typed: a line break in it is refused, not folded away
        value = raw.strip() if key in ("description", "contact") else " ".join(raw.split())
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
    # A banner says whom to call and sightings are messaged there: a new case needs the
    # agency's contact, validated and normalised now (E.164 / email), never at alert time.
    contact = text("contact", required=case_id is None)
    if contact is not None and "contact" not in problems:
        try:
            contact = contacts.normalised(contacts.parse(contact))
        except contacts.ContactError as exc:
            problems["contact"] = str(exc)
    form = CaseForm(case_id=case_id, name=text("name", required=True) or "",
                    content_type=content_type, age=age, description=text("description"),
                    contact=contact,
                    reported_by=text("agency"),
                    filename=text("filename"))
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise ApiError(400, "invalid_form", f"please check the form — {listed}",
                       details=problems)
    return form


def create_upload(req: Request, deps: UrlDeps) -> Response:
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
            from oneeye.contacts import RULE
            raise ApiError(400, "invalid_form", "please check the form — contact: a new case "
                           f"needs the agency's contact for sightings: {RULE}",
                           details={"contact": f"required — {RULE}"})
    else:
        case_id = _new_case_id(deps)
    details = {"name": form.name, "age": form.age, "description": form.description,
               "contact": form.contact, "reported_by": form.reported_by}
    case_update: dict[str, Any] | None = None
    if existing is None:
        # A new case is "pending" until the indexer accepts a photo (it sets "open"): a
        # rejected upload (no face, two faces) must not leave an open case no camera can match.
        case = deps.cases.upsert(case_id, {**details, "agency": agency.name,
                                           "time_zone": agency.time_zone,
                                           "status": "pending"})
    else:
        # An existing case is not touched here: its new details ride in the grant and the
        # indexer applies them only with an accepted photo (which also re-opens a closed
        # case), so a rejected, refused or never-sent photo changes nothing of the case.
        case = existing
        case_update = {k: v for k, v in details.items() if v is not None}
    upload_id = new_id()
    key = keys.upload("missing", case_id, upload_id, CONTENT_TYPES[form.content_type])
    # The local stack's HTTP API rewrites ``url`` to its same-origin /s3-upload proxy;
    # the policy signs bucket, key and fields, not the host, so it stays valid.
    post = deps.bucket.presign_post(key, content_type=form.content_type,
                                    max_bytes=deps.max_bytes, expires_s=deps.url_ttl_s,
                                    metadata={"x-amz-meta-case-id": case_id,
                                              "x-amz-meta-upload-id": upload_id,
                                              "x-amz-meta-agency": agency.name})
    expires_at = int(time.time()) + deps.url_ttl_s
    # The pending status is also the upload's grant: the indexer enrols only what it names.
    deps.bucket.put_json(keys.status(upload_id), grants.record(
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


def _new_case_id(deps: UrlDeps) -> str:
    year = utc_now()[:4]
    for _ in range(20):
        case_id = f"MP-{year}-{deps.counters.next(f'case:MP-{year}'):04d}"
        # A case typed in by hand may already hold the next number: skip it.
        if deps.cases.get(case_id) is None:
            return case_id
    raise ApiError(503, "case_ids_exhausted", "could not allocate a new case id; retry")


def url_deps(settings: UploadUrlSettings) -> UrlDeps:
    bucket = store.Bucket(settings.oneeye_bucket)
    return UrlDeps(
        bucket=bucket, cases=store.Cases(settings.cases_table),
        agencies=Agencies(settings.agencies_table),
        limiter=RateLimiter(settings.idempotency_table, settings.upload_rate_per_min),
        audit=Audit(bucket), counters=Counters(settings.idempotency_table),
        max_bytes=settings.upload_max_bytes, url_ttl_s=settings.upload_url_ttl_s,
    )


def url_from_env() -> UrlDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return url_deps(UploadUrlSettings.from_env(root="upload_url"))
