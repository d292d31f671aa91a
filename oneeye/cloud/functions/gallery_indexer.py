# Long module: one path from message to gallery version (grant, encode, publish, status),
# commands done once; the learning side is in gallery_learning.py.
"""gallery_indexer: an enrolment photo (or a removal) in, a new gallery version out.

Input is an SQS message (the queue of ``INDEXER_QUEUE_URL``) whose body is
either an S3 ``ObjectCreated`` notification for ``uploads/`` or one of the typed commands
of :mod:`oneeye.cloud.indexer_commands`: a removal sent when a case closes or a customer is
deleted, or a learning command (learn, remove_template, review; handled by
:mod:`oneeye.cloud.functions.gallery_learning`). Direct S3 events are accepted too.

A customer photo of a person who already has templates but looks unlike all of them is
held for a second look (status ``needs_review``, reason ``unlike_person``), and an accepted
photo whose face is close to *another* id reports both ids in its status (``duplicates``).

Keys (:mod:`oneeye.cloud.dal.keys`): ``uploads/missing/{case_id}/{upload_id}.jpg``
(phone uploads; object metadata ``case-id``, ``upload-id``, ``agency``, optionally ``name``) and
``uploads/customers/{customer_id}/{n}.jpg`` (bank import).

A phone photo is enrolled only if its grant (``status/{upload_id}.json``, see
:mod:`oneeye.cloud.grants`) names exactly this key, case, agency and content
type, has not expired and its agency is not revoked; anything else is refused,
audited and deleted. A photo is then re-validated whatever the upload page
promised (a client can lie): size before download,
then a safe decode with a pixel limit, then exactly one usable face. Every
outcome of an upload is written to ``status/{upload_id}.json`` — accepted with
the gallery version, or rejected with a reason code and the sentence the phone
shows. A rejected photo is an answer, not an error: the SQS message is done. Only an
accepted photo changes its case: ``open``, the reference photo, and the details its
grant's ``case_update`` carries (an existing case's new name, age, …).

Grants are single-use, and a refusal never deletes what an accepted upload owns: the
bytes of an accepted phone photo (exactly those encoded) are first copied to
:func:`oneeye.cloud.dal.keys.accepted` (``accepted/missing/{case_id}/{upload_id}.{ext}``), a
prefix no grant's POST policy can write, and the case's ``photo_key`` names that copy. A second
POST on the same grant (a reuse within its minutes, or a phone's retry racing the
first) lands on the grant-writable ``uploads/`` key; it is refused (the grant is no
longer pending) and that key deleted, while the reference photo stays.

Errors that may pass (S3, DynamoDB, the MQTT/IoT publish) raise, so SQS
redelivers the message and finally moves it to the dead-letter queue. Each
object is processed once per ETag, and each command once per ``command_id`` (or SQS message
id), claimed in the state table's ``event`` namespace, so a redelivery never makes a second
version nor undoes what was done since (a template re-added after its removal stays). The
function runs with reserved concurrency 1, so versions are built one after another and
never race.
"""

from __future__ import annotations

import io
import logging
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from oneeye import faces, signing
from oneeye import gallery as gal
from oneeye.cloud import grants
from oneeye.cloud.agencies import Agencies, Audit
from oneeye.cloud.common import Result, rejected
from oneeye.cloud.dal import gallery_store, keys, store
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.functions import gallery_learning as learning
from oneeye.cloud.indexer_commands import IndexerCommand, RemoveCommand, parse_command
from oneeye.cloud.settings import IndexerSettings
from oneeye.cloud.uploads import MAX_PHOTO_BYTES, REASONS
from oneeye.errors import EnrolmentRejected, EventError, GalleryError, ImageError
from oneeye.events import loads
from oneeye.gallery.templates import TemplateSource
from oneeye.types import WATCHLISTS, utc_now

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class IndexerDeps:
    bucket: store.Bucket
    idempotency: Idempotency
    cases: store.Cases | None = None
    #: The agencies table: a phone upload's token must still be valid when it is indexed.
    agencies: grants.AgencyLookup | None = None
    notify: str = "iot-data"           # GALLERY_NOTIFY (see oneeye.cloud.settings)
    max_bytes: int = MAX_PHOTO_BYTES
    max_pixels: int = 50_000_000
    max_side: int = 1600               # photos are scaled down to this before detection
    policy: gal.EnrolmentPolicy = field(default_factory=gal.EnrolmentPolicy)
    #: Signs every manifest (oneeye.signing); None → unsigned, which signed edges refuse.
    signing_key: Ed25519PrivateKey | None = None
    #: Watchlists that learn from desk verdicts (LEARN_WATCHLISTS; opt-in).
    learn: frozenset[str] = frozenset()


def handle(event: dict[str, Any], deps: IndexerDeps) -> list[Result]:
    """Process an SQS batch (or a bare S3 event); raise on a failure worth retrying."""
    results: list[Result] = []
    if isinstance(event, dict) and event.get("action") == "refresh_latest":
        return [refresh_latest(deps)]  # the daily schedule (template: RefreshLatest)
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return [rejected("gallery_indexer", "event has no Records")]
    for record in records:
        if record.get("eventSource") == "aws:sqs":
            try:
                body = loads(record.get("body") or "")
            except EventError:
                results.append(rejected("gallery_indexer", "SQS body is not JSON"))
                continue
            results.extend(handle_message(body, deps,
                                          message_id=str(record.get("messageId") or "")))
        else:
            results.extend(handle_message({"Records": [record]}, deps))
    return results


def handle_message(body: Any, deps: IndexerDeps, *, message_id: str = "") -> list[Result]:
    """The results of one decoded message: a command, or an S3 notification's records.
    ``message_id`` (SQS's) is the redelivery key of a command that has no ``command_id``."""
    if not isinstance(body, dict):
        return [rejected("gallery_indexer", "message is not a JSON object")]
    try:
        command = parse_command(body)
    except EventError as exc:
        return [rejected("gallery_indexer", str(exc))]
    if command is not None:
        claim = (f"command:{command.command_id}" if "command_id" in body
                 else f"sqs:{message_id}" if message_id else None)
        return [run_command(command, claim, deps)]
    if body.get("Event") == "s3:TestEvent":
        return [{"status": "ignored", "reason": "s3:TestEvent"}]
    out: list[Result] = []
    for rec in body.get("Records") or []:
        name = str(rec.get("eventName", ""))
        s3 = rec.get("s3") or {}
        if not name.startswith("ObjectCreated") or "object" not in s3:
            out.append({"status": "ignored", "reason": f"event {name or '?'}"})
            continue
        key = urllib.parse.unquote_plus(str(s3["object"].get("key", "")))
        etag = str(s3["object"].get("eTag") or s3["object"].get("etag") or "")
        out.append(index_upload(key, etag, deps))
    if not out:
        out.append(rejected("gallery_indexer", "neither an S3 notification nor a command"))
    return out


def index_upload(key: str, etag: str, deps: IndexerDeps) -> Result:
    parsed = keys.parse_upload(key)
    if parsed is None:
        return rejected("gallery_indexer", f"not an upload key: {key}")
    claim = f"s3:{deps.bucket.name}/{key}#{etag}"
    if not deps.idempotency.claim(claim, kind="gallery_indexer"):
        log.info("gallery_indexer: %s (etag %s) already indexed", key, etag)
        return {"status": "duplicate", "key": key}
    try:
        result = _index(key, parsed, deps)
    except BaseException:
        deps.idempotency.release(claim)
        raise
    deps.idempotency.complete(claim)
    return result


def run_command(command: IndexerCommand, claim: str | None, deps: IndexerDeps) -> Result:
    """Do ``command`` once per ``claim`` (None: no key to know a redelivery by, do it);
    a claimed one answers ``duplicate``."""
    if claim is not None and not deps.idempotency.claim(claim, kind="gallery_indexer"):
        log.info("gallery_indexer: %s command %s already done", command.action, claim)
        return {"status": "duplicate", "action": command.action, "command": claim,
                "watchlist": command.watchlist, "person_id": command.person_id}
    try:
        if isinstance(command, RemoveCommand):
            result = remove_person(command, deps)
        else:
            result = learning.handle_command(command, deps)
    except BaseException:
        if claim is not None:
            deps.idempotency.release(claim)
        raise
    if claim is not None:
        deps.idempotency.complete(claim)
    return result


def _index(key: str, parsed: keys.UploadKey, deps: IndexerDeps) -> Result:
    watchlist, person_id = parsed.watchlist, parsed.person_id
    head = deps.bucket.head(key)
    if head is None:
        return rejected("gallery_indexer", f"{key} no longer exists")
    meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    upload = grants.upload_id_of(key) if watchlist == "missing" else None
    grant = deps.bucket.get_json(keys.status(upload)) if upload else None
    refused = _refusal(key, watchlist, head, grant, deps)
    if refused is not None:
        return refused
    # The upload id is the key's (checked against its grant), never the poster's metadata.
    upload_id = keys.upload_id(parsed)
    status = _Status(deps.bucket, upload_id, watchlist, person_id)
    try:
        gal.check_person_id(person_id)
    except GalleryError as exc:   # the phone shows which id and which rule
        return status.reject("invalid_id", str(exc))
    size = int(head.get("ContentLength") or 0)
    if size > deps.max_bytes:
        return status.reject("too_large", REASONS["too_large"].format(mb=deps.max_bytes >> 20))
    obj = deps.bucket.get(key)
    if obj is None:
        return rejected("gallery_indexer", f"{key} disappeared while indexing")
    try:
        enrolled = encode_photo(obj.data, deps, watchlist)
        encoding = enrolled.encoding
    except EnrolmentRejected as exc:
        return status.reject(exc.reason, str(exc))
    photo_key = key
    if watchlist == "missing":
        # Out of the grant-writable key before anything records the acceptance: a reuse
        # of the grant may overwrite (and its refusal delete) ``key``, never this copy.
        photo_key = keys.accepted(key)
        deps.bucket.put(photo_key, obj.data,
                        content_type=str(head.get("ContentType") or "image/jpeg"))
    current, _ = gallery_store.read_latest(deps.bucket, watchlist)
    source = TemplateSource("photo", photo_key)
    far = learning.unlike_person(current, person_id, encoding) if watchlist == "customers" \
        else None
    if far is not None:
        held = learning.hold_for_review(
            deps, watchlist, person_id, encoding, source, reason="unlike_person",
            distance=far, message=f"this photo is {far:.2f} from {person_id}'s other photos "
            f"(over {current.learning.photo_review_distance:.2f}): is it the same person? "
            "Held for a second look before cameras use it")
        status.write("needs_review", reason="unlike_person", message=held["message"])
        return {"status": "needs_review", "upload_id": upload_id, "watchlist": watchlist,
                "person_id": person_id, "review_id": held["review_id"],
                "distance": round(far, 4)}
    updated = current.with_template(person_id, encoding, source)
    if updated is current:   # the very same photo again: still a new version, as before
        updated = current.with_learning(current.learning)
    learning.publish(updated, "added", person_id, deps)
    duplicates = learning.duplicates_of(updated, person_id)
    if watchlist == "missing" and deps.cases is not None:
        name = meta.get("name")
        before = deps.cases.get(person_id) or {}
        deps.cases.upsert(person_id, {
            # when cameras started looking (the case page's status history): the first
            # accepted photo, or the one that re-opened a closed case
            "opened_at": utc_now() if before.get("status") != "open" else None,
            "name": urllib.parse.unquote(name) if name else None,
            # an existing case's new details, sent with this photo: applied only now
            **grants.case_update(grant),
            "status": "open", "agency": meta.get("agency"), "last_upload_id": upload_id,
            # the desk banner's reference photo: the newest accepted one (amber presigns
            # it), in the indexer's own copy that no grant can overwrite or have deleted
            "photo_key": photo_key,
            # a low-resolution photo is enrolled but flagged on the case ("" clears it)
            "photo_warning": enrolled.message,
        })
    status.write("accepted", gallery_version=updated.version, warning=enrolled.warning,
                 message=f"accepted — cameras now looking for {person_id} "
                         f"(gallery v{updated.version})"
                         + (f"; warning: {enrolled.message}" if enrolled.warning else "")
                         + "".join(f"; {d.message()}" for d in duplicates),
                 duplicates=[d.__dict__ for d in duplicates])
    for d in duplicates:
        log.warning("gallery_indexer: %s", d.message())
    log.info("gallery_indexer: %s enrolled into %s v%d", person_id, watchlist, updated.version)
    return {"status": "accepted", "upload_id": upload_id, "watchlist": watchlist,
            "person_id": person_id, "gallery_version": updated.version,
            "duplicates": [d.__dict__ for d in duplicates]}


def _refusal(key: str, watchlist: str, head: dict[str, Any], grant: Any,
             deps: IndexerDeps) -> Result | None:
    """Refuse (audit, delete) an object ``grant`` does not cover; None when it may be indexed."""
    if watchlist == "missing":
        if deps.agencies is None:
            reason: str | None = "no agencies table to check the grant against (AGENCIES_TABLE)"
        else:
            reason = grants.check(key, head, grant, deps.agencies)
    else:
        reason = grants.check_import(key, head)
    if reason is None:
        return None
    agency = (head.get("Metadata") or {}).get("agency")
    Audit(deps.bucket).record("upload_refused", None, key=key, reason=reason,
                              claimed_agency=agency, size=head.get("ContentLength"))
    deps.bucket.delete(key)
    if isinstance(grant, dict) and grant.get("key") == key and grant.get("state") == "pending":
        # The grant's own key (late, revoked, wrong type): tell that phone why.
        _Status(deps.bucket, str(grant.get("upload_id")), watchlist,
                str(grant.get("case_id"))).write("rejected", reason="refused", message=reason)
    return rejected("gallery_indexer", f"upload refused and deleted: {reason}")


def encode_photo(data: bytes, deps: IndexerDeps,
                 watchlist: str = "customers") -> gal.EnrolledPhoto:
    """The enrolment of one uploaded photo under ``watchlist``'s policy
    (:func:`oneeye.gallery.policy_for`: a small face on ``missing`` is enrolled with the
    ``low_resolution`` warning), or :class:`EnrolmentRejected`."""
    if len(data) > deps.max_bytes:
        raise EnrolmentRejected("too_large", REASONS["too_large"].format(mb=deps.max_bytes >> 20))
    try:
        image = faces.load_image(data, max_pixels=deps.max_pixels, max_bytes=deps.max_bytes)
    except ImageError as exc:
        reason = image_error_reason(exc)
        message = REASONS[reason].format(mb=deps.max_bytes >> 20)
        raise EnrolmentRejected(reason, f"{message} ({exc})") from exc
    h, w = image.shape[:2]
    if max(h, w) > deps.max_side:
        # Phone photos are 12–48 MP; HOG at upsample 1 on those takes seconds and
        # finds nothing a 1600 px copy would miss at enrolment distance.
        import cv2  # native and heavy: loaded only for the photos that need scaling

        s = deps.max_side / max(h, w)
        small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        buf = io.BytesIO()
        Image.fromarray(small).save(buf, format="PNG")
        data = buf.getvalue()
    return gal.enrol_photo(data, gal.policy_for(watchlist, deps.policy))


def image_error_reason(exc: ImageError) -> str:
    """Map :func:`oneeye.images.load_image`'s ``reason`` to the phone's reason code."""
    if exc.reason == "too_large":
        return "too_large"
    if exc.reason in {"empty", "not_an_image", "unsupported_format", "unsupported_mode"}:
        return "not_an_image"
    return "unreadable"


def refresh_latest(deps: IndexerDeps) -> Result:
    """Re-sign and re-date every watchlist's ``latest.json`` pointer that needs it, so edges
    (which refuse one older than ``max_latest_age_s``) keep believing an unchanged gallery."""
    if deps.signing_key is None:
        return rejected("gallery_indexer", "refresh_latest: no signing key configured")
    refreshed = [wl for wl in WATCHLISTS
                 if gallery_store.ensure_signed(deps.bucket, wl, deps.signing_key)]
    return {"status": "refreshed", "watchlists": refreshed}


def remove_person(command: RemoveCommand, deps: IndexerDeps) -> Result:
    watchlist, person_id = command.watchlist, command.person_id
    current, _ = gallery_store.read_latest(deps.bucket, watchlist)
    if person_id not in current:
        log.info("gallery_indexer: %s not in %s v%d; nothing to remove", person_id, watchlist,
                 current.version)
        return {"status": "absent", "watchlist": watchlist, "person_id": person_id,
                "gallery_version": current.version}
    updated = current.without_person(person_id)
    learning.publish(updated, "removed", person_id, deps)
    log.info("gallery_indexer: %s removed from %s (v%d)", person_id, watchlist, updated.version)
    return {"status": "removed", "watchlist": watchlist, "person_id": person_id,
            "gallery_version": updated.version}


@dataclass
class _Status:
    bucket: store.Bucket
    upload_id: str
    watchlist: str
    person_id: str

    def write(self, state: str, *, reason: str | None = None, message: str = "",
              gallery_version: int | None = None, warning: str | None = None,
              duplicates: list[dict[str, Any]] | None = None) -> None:
        key = keys.status(self.upload_id)
        # Keep what upload_url wrote with "pending" (agency, key, expiry): upload_status
        # reads it to check ownership.
        previous = self.bucket.get_json(key)
        self.bucket.put_json(key, {
            **(previous if isinstance(previous, dict) else {}),
            "upload_id": self.upload_id,
            "case_id": self.person_id if self.watchlist == "missing" else None,
            "watchlist": self.watchlist, "person_id": self.person_id,
            "state": state, "reason": reason, "message": message,
            "gallery_version": gallery_version, "warning": warning, "updated_at": utc_now(),
            **({"duplicates": duplicates} if duplicates else {}),
        }, cache_control="no-cache")

    def reject(self, reason: str, message: str) -> Result:
        self.write("rejected", reason=reason, message=message)
        log.warning("gallery_indexer: upload %s (%s %s) rejected: %s — %s", self.upload_id,
                    self.watchlist, self.person_id, reason, message)
        return {"status": "rejected", "upload_id": self.upload_id, "reason": reason,
                "message": message}


def indexer_deps(settings: IndexerSettings) -> IndexerDeps:
    return IndexerDeps(
        bucket=store.Bucket(settings.oneeye_bucket),
        idempotency=Idempotency(settings.idempotency_table),
        cases=store.Cases(settings.cases_table) if settings.cases_table else None,
        agencies=Agencies(settings.agencies_table),
        notify=settings.gallery_notify,
        max_bytes=settings.upload_max_bytes,
        signing_key=signing_key(settings),
        learn=frozenset(w for w in settings.learn_watchlists.split(",") if w),
    )


def indexer_from_env() -> IndexerDeps:
    """Deps from this process's environment (raises ConfigError naming the variable)."""
    return indexer_deps(IndexerSettings.from_env(root="gallery_indexer"))


def signing_key(settings: IndexerSettings) -> Ed25519PrivateKey | None:
    """The manifest signing key: a Secrets Manager secret holding the PEM (AWS) or the
    local stack's 0600 file; None (logged) when neither is configured."""
    if settings.gallery_signing_key_secret:
        return signing.load_private(store.secret(settings.gallery_signing_key_secret))
    if settings.gallery_signing_key_file:
        return signing.load_private(Path(settings.gallery_signing_key_file).read_bytes())
    log.warning("gallery_indexer: no GALLERY_SIGNING_KEY_SECRET/_FILE; manifests are unsigned "
                "and edges with a public key will refuse them")
    return None
