"""Uploads only where granted: the indexer's grant check, through S3 → SQS → the handler.

Every way an agency (or anyone) could post a photo outside its grant: another key or
case, the customers gallery, no grant at all, too late, another content type or agency,
and a token revoked after the link was issued. Each is refused, audited and deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oneeye import aws
from oneeye.cloud.agencies import Agencies, Audit
from oneeye.cloud.dal import store
from oneeye.ids import new_id
from tests.cloud_support import add_grant, put_upload, run_queue

pytestmark = pytest.mark.timeout(120)


def _objects(env: dict[str, str], prefix: str) -> list[str]:
    resp = aws.client("s3").list_objects_v2(Bucket=env["ONEEYE_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", [])]


def _granted_key(case: str = "MP-2026-0100") -> str:
    return f"uploads/missing/{case}/{new_id()}.jpg"


def _rekeyed(env: dict[str, str], photo: bytes) -> str:
    granted = _granted_key()
    add_grant(env, granted, "met")
    target = granted.replace("MP-2026-0100", "MP-2026-0999")  # another agency's case
    put_upload(env, target, photo, grant=False, agency="met")
    return target


def _to_customers(env: dict[str, str], photo: bytes) -> str:
    granted = _granted_key()
    add_grant(env, granted, "met")
    target = "uploads/customers/C-1001/9.jpg"
    put_upload(env, target, photo, grant=False, agency="met",
               **{"upload-id": granted.rsplit("/", 1)[1][:-4]})
    return target


def _ungranted(env: dict[str, str], photo: bytes) -> str:
    key = _granted_key()
    put_upload(env, key, photo, grant=False, agency="met")
    return key


def _expired(env: dict[str, str], photo: bytes) -> str:
    key = _granted_key()
    add_grant(env, key, "met", expires_in_s=-60)
    put_upload(env, key, photo, grant=False, agency="met")
    return key


def _revoked(env: dict[str, str], photo: bytes) -> str:
    key = _granted_key()
    who = add_grant(env, key, "met")
    put_upload(env, key, photo, grant=False, agency="met")
    Agencies(env["AGENCIES_TABLE"]).revoke(who.token_sha256[:16])  # after the link, before indexing
    return key


def _wrong_type(env: dict[str, str], photo: bytes) -> str:
    key = _granted_key()
    add_grant(env, key, "met", content_type="image/png")
    put_upload(env, key, photo, grant=False, agency="met")
    return key


def _wrong_agency(env: dict[str, str], photo: bytes) -> str:
    key = _granted_key()
    add_grant(env, key, "met")
    put_upload(env, key, photo, grant=False, agency="Other Police")
    return key


@pytest.mark.parametrize(("attack", "reason"), [
    (_rekeyed, "is not the granted"),
    (_to_customers, "not a bank import"),
    (_ungranted, "no grant for upload"),
    (_expired, "after the grant expired"),
    (_revoked, "token is revoked"),
    (_wrong_type, "content type 'image/jpeg' is not the granted 'image/png'"),
    (_wrong_agency, "agency 'Other Police' is not the granted 'met'"),
])
def test_upload_outside_its_grant_is_refused_audited_and_deleted(
        cloud_env: dict[str, str], examples: Path, attack: Any, reason: str) -> None:
    key = attack(cloud_env, (examples / "obama_small.jpg").read_bytes())
    results = run_queue(cloud_env)
    assert [r["status"] for r in results] == ["rejected"] and reason in results[0]["reason"]
    assert key not in _objects(cloud_env, "uploads/")
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    assert bucket.get_json("gallery/missing/latest.json") is None
    assert bucket.get_json("gallery/customers/latest.json") is None
    audit = Audit(bucket).entries(datetime.now(UTC).strftime("%Y-%m-%d"))
    refused = [e for e in audit if e["action"] == "upload_refused"]
    assert [e["key"] for e in refused] == [key] and reason in refused[0]["reason"]


def test_the_granted_upload_itself_is_enrolled(cloud_env: dict[str, str], examples: Path) -> None:
    key = _granted_key()
    put_upload(cloud_env, key, (examples / "obama_small.jpg").read_bytes())
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]


def _reference_photo(env: dict[str, str], case_id: str) -> bytes:
    """The bytes of the case's reference photo (what the desk banner and amber link)."""
    case = store.Cases(env["CASES_TABLE"]).get(case_id)
    assert case is not None and case.get("photo_key"), case
    body = aws.client("s3").get_object(Bucket=env["ONEEYE_BUCKET"], Key=case["photo_key"])
    return bytes(body["Body"].read())


def test_reusing_an_accepted_grant_is_refused_and_keeps_the_reference_photo(
        cloud_env: dict[str, str], examples: Path) -> None:
    """A second POST on a grant within its minutes (a leaked link, a replayed form)."""
    key = _granted_key("MP-2026-0200")
    first = (examples / "obama_small.jpg").read_bytes()
    put_upload(cloud_env, key, first)
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    upload_id = key.rsplit("/", 1)[1].removesuffix(".jpg")
    second = (examples / "biden.jpg").read_bytes()
    put_upload(cloud_env, key, second, grant=False, agency="met")  # same grant, again
    results = run_queue(cloud_env)
    assert [r["status"] for r in results] == ["rejected"], results
    assert "already used (accepted)" in results[0]["reason"]
    assert _reference_photo(cloud_env, "MP-2026-0200") == first
    assert key not in _objects(cloud_env, "uploads/")  # the reused key: refused, removed
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    status = bucket.get_json(f"status/{upload_id}.json")
    assert (status["state"], status["gallery_version"]) == ("accepted", 1)
    assert bucket.get_json("gallery/missing/latest.json")["version"] == 1


def test_two_racing_posts_on_one_grant_enrol_one_photo_and_keep_it(
        cloud_env: dict[str, str], examples: Path) -> None:
    """A phone that retries while its first POST is still on the way: both land before
    the indexer runs. The indexer enrols the object as it finds it, once; the second
    notification is refused, and the photo the case now shows stays."""
    import threading

    key = _granted_key("MP-2026-0201")
    photos = [(examples / name).read_bytes() for name in ("obama_small.jpg", "obama2.jpg")]
    add_grant(cloud_env, key, "met")
    start = threading.Barrier(2)

    def post(data: bytes) -> None:
        start.wait()
        put_upload(cloud_env, key, data, grant=False, agency="met")

    threads = [threading.Thread(target=post, args=(p,)) for p in photos]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    results = run_queue(cloud_env)
    assert sorted(r["status"] for r in results) == ["accepted", "rejected"], results
    assert "already used" in next(r for r in results if r["status"] == "rejected")["reason"]
    assert _reference_photo(cloud_env, "MP-2026-0201") in photos
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    assert bucket.get_json("gallery/missing/latest.json")["version"] == 1


# -- the local stack's S3 POST-policy check (in front of moto, as real S3 does) ------------

@pytest.fixture(scope="module")
def guarded_s3() -> Any:
    """Our MotoServer (policy guard in front) with a bucket; a clock the test can move."""
    import boto3
    from botocore.config import Config

    from oneeye.local.moto_server import MotoServer
    from tests.net_support import free_port

    skew = [timedelta(0)]  # how far the guard's clock runs ahead of the real one
    server = MotoServer("127.0.0.1", free_port(),
                        clock=lambda: datetime.now(UTC) + skew[0]).start()
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket="guarded")
    try:
        yield s3, skew
    finally:
        server.stop()


def _post(s3: Any, post: dict[str, Any], data: bytes, **change: str | None) -> Any:
    import requests

    fields = {**post["fields"], **change}
    fields = {k: v for k, v in fields.items() if v is not None}
    return requests.post(post["url"], data=fields, timeout=10,
                         files={"file": ("photo.jpg", data, "image/jpeg")})


def _grant(s3: Any, key: str, *, expires_s: int = 300) -> dict[str, Any]:
    """What upload_url signs: key, content type, size range and the agency metadata."""
    return dict(s3.generate_presigned_post(
        "guarded", key, Fields={"Content-Type": "image/jpeg", "x-amz-meta-agency": "met"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 1000],
                    {"x-amz-meta-agency": "met"}], ExpiresIn=expires_s))


def _exists(s3: Any, key: str) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket="guarded", Prefix=key)


@pytest.mark.parametrize(("change", "size", "why"), [
    ({"key": "uploads/missing/MP-2/{id}.jpg"}, 10, "condition failed"),          # re-keyed
    ({"key": "uploads/customers/C-1001/1.jpg"}, 10, "condition failed"),
    ({"key": "audit/2026-01-01/x.json"}, 10, "condition failed"),
    ({"policy": None, "x-amz-signature": None}, 10, "no policy"),               # ungranted
    ({"x-amz-signature": "0" * 64}, 10, "signature does not match"),
    ({"Content-Type": "text/html"}, 10, "condition failed"),
    ({"x-amz-meta-agency": "Other Police"}, 10, "condition failed"),
    ({"x-amz-meta-name": "extra"}, 10, "extra input fields"),
    ({}, 1001, "content-length-range"),
    ({}, 0, "content-length-range"),
])
def test_local_s3_refuses_posts_outside_their_policy(
        guarded_s3: Any, caplog: pytest.LogCaptureFixture, change: dict[str, Any], size: int,
        why: str) -> None:
    s3, _ = guarded_s3
    upload_id = new_id()
    granted = f"uploads/missing/MP-1/{upload_id}.jpg"
    post = _grant(s3, granted)
    change = {k: (v.format(id=upload_id) if isinstance(v, str) else v) for k, v in change.items()}
    with caplog.at_level("WARNING", logger="oneeye.local.post_policy"):
        resp = _post(s3, post, b"\xff" * size, **change)
    assert resp.status_code == 403 and "AccessDenied" in resp.text and why in resp.text
    assert any(why in r.getMessage() for r in caplog.records)
    assert not _exists(s3, change.get("key") or granted)


@pytest.fixture
def grant_checked_s3(cloud_env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """Our MotoServer checking grants against ``cloud_env``'s agencies table.

    moto's state is per process, so this server sees the bucket, grants and agencies
    that ``cloud_env`` made through the session's moto server.
    """
    import boto3
    from botocore.config import Config

    from oneeye.local.moto_server import MotoServer
    from tests.net_support import free_port

    server = MotoServer("127.0.0.1", free_port(),
                        agencies_table=cloud_env["AGENCIES_TABLE"]).start()
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    try:
        yield s3, server
    finally:
        server.stop()


@pytest.mark.parametrize(("revoke", "table", "why"), [
    (True, None, "agency 'met' token is revoked"),
    (False, None, None),                                             # the same flow, accepted
    (False, "no-such-table", "could not be checked"),                # lookup fails: 403, not 500
])
def test_local_s3_refuses_a_post_whose_agency_token_was_revoked_after_the_grant(
        cloud_env: dict[str, str], grant_checked_s3: tuple[Any, Any],
        caplog: pytest.LogCaptureFixture, revoke: bool, table: str | None,
        why: str | None) -> None:
    s3, server = grant_checked_s3
    if table is not None:
        server.agencies_table = table
    bucket = cloud_env["ONEEYE_BUCKET"]
    key = _granted_key()
    who = add_grant(cloud_env, key, "met")  # what upload_url writes when it signs the POST
    post = s3.generate_presigned_post(
        bucket, key, Fields={"Content-Type": "image/jpeg", "x-amz-meta-agency": "met"},
        Conditions=[{"Content-Type": "image/jpeg"}, ["content-length-range", 1, 1000],
                    {"x-amz-meta-agency": "met"}], ExpiresIn=300)
    if revoke:  # after the link was issued, before the phone posts
        Agencies(cloud_env["AGENCIES_TABLE"]).revoke(who.token_sha256[:16])
    with caplog.at_level("WARNING", logger="oneeye.local.post_policy"):
        resp = _post(s3, post, b"\xff" * 10)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    if why is None:
        assert resp.status_code in (200, 204), resp.text
        assert key in _objects(cloud_env, "uploads/") and refusals == []
        return
    assert resp.status_code == 403 and "AccessDenied" in resp.text and why in resp.text
    assert len(refusals) == 1 and why in refusals[0]
    assert key not in _objects(cloud_env, "uploads/")
    assert run_queue(cloud_env) == []  # nothing reached the indexer


def test_local_s3_refuses_an_expired_policy_and_accepts_a_valid_one(guarded_s3: Any) -> None:
    s3, skew = guarded_s3
    key = f"uploads/missing/MP-1/{new_id()}.jpg"
    post = _grant(s3, key, expires_s=300)
    try:
        skew[0] = timedelta(seconds=301)
        late = _post(s3, post, b"\xff" * 10)
        assert late.status_code == 403 and "Policy expired" in late.text
        assert not _exists(s3, key)
    finally:
        skew[0] = timedelta(0)
    ok = _post(s3, post, b"\xff" * 10)
    assert ok.status_code in (200, 204), ok.text
    head = s3.head_object(Bucket="guarded", Key=key)
    assert head["ContentType"] == "image/jpeg" and head["Metadata"] == {"agency": "met"}
