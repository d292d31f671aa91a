"""Uploads only where granted: the indexer's grant check, through S3 → SQS → the handler.

Every way an agency (or anyone) could post a photo outside its grant: another key or
case, the customers gallery, no grant at all, too late, another content type or agency,
and a token revoked after the link was issued. Each is refused, audited and deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from oneeye import aws
from oneeye.cloud import store
from oneeye.cloud.agencies import Agencies, Audit
from oneeye.ids import new_id
from tests.cloud_support import *  # noqa: F403
from tests.test_cloud_indexer import add_grant, put_upload, run_queue

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
