"""The agency upload API against a moto *server*, over real HTTP.

upload_url / upload_status / cases run as their real handlers behind a small
HTTP API stand-in (tests/amber_support.py); photos go to moto with the
presigned POST via ``requests``; the real gallery_indexer consumes the queue.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from oneeye import aws
from oneeye.cloud.agencies import Agencies, Audit, RateLimiter, token_sha256
from oneeye.cloud.dal import gallery_store, keys, store
from oneeye.cloud.functions.upload_status import describe, status_from_env
from oneeye.cloud.uploads import EXPIRY_GRACE_S
from oneeye.errors import ApiError
from tests.amber_support import AmberHarness, IndexerPump, auth
from tests.wait import wait_until


@pytest.fixture
def env(cloud_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("UPLOAD_RATE_PER_MIN", "50")
    return cloud_env


@pytest.fixture
def api(env: dict[str, str]) -> Iterator[AmberHarness]:
    harness = AmberHarness()
    yield harness
    harness.close()


@pytest.fixture
def token(env: dict[str, str]) -> str:
    return Agencies(env["AGENCIES_TABLE"]).add("Thames Valley Police")[0]


@pytest.fixture
def pump(env: dict[str, str]) -> Iterator[IndexerPump]:
    p = IndexerPump(env["INDEXER_QUEUE_URL"])
    yield p
    p.close()


def request_upload(api: AmberHarness, token: str, **form: Any) -> requests.Response:
    body = {"name": "Jane Doe", "content_type": "image/jpeg", "contact": "+44 1865 000000",
            **form}
    return requests.post(f"{api.url}/api/uploads", json=body, headers=auth(token), timeout=10)


def post_photo(grant: dict[str, Any], data: bytes, filename: str = "photo.jpg") -> int:
    ctype = grant["fields"]["Content-Type"]
    resp = requests.post(grant["url"], data=grant["fields"],
                         files={"file": (filename, data, ctype)}, timeout=10)
    return resp.status_code


def wait_status(api: AmberHarness, token: str, upload_id: str,
                timeout: float = 180.0) -> dict[str, Any]:
    """The upload's status once it is no longer ``pending``.

    The harness serves from this process, where the indexer pump's dlib work can hold the
    GIL for seconds on a loaded machine: a slow answer is "not yet", not a failure.
    """
    def settled() -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = requests.get(f"{api.url}/api/uploads/{upload_id}",
                                                headers=auth(token), timeout=30).json()
        except requests.Timeout:
            return None
        return body if body["state"] != "pending" else None

    return wait_until(settled, timeout, f"upload {upload_id} to leave 'pending'",
                      interval_s=0.2)


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# --- token auth -------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer oeat_nope",
                                    "Bearer oeat_" + "x" * 43])
def test_upload_without_a_valid_token_is_401(api: AmberHarness, token: str,
                                              header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    resp = requests.post(f"{api.url}/api/uploads", json={"name": "X",
                         "content_type": "image/jpeg"}, headers=headers, timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/api/cases", "/api/uploads/0190a0b0-0000-7000-8000-000000000000"):
        assert requests.get(api.url + path, headers=headers, timeout=10).status_code == 401
    assert requests.post(f"{api.url}/api/cases/MP-1/close", headers=headers,
                         timeout=10).status_code == 401


def test_token_is_stored_only_as_its_hash_and_revocation_works(env: dict[str, str],
                                                               api: AmberHarness) -> None:
    agencies = Agencies(env["AGENCIES_TABLE"])
    token, agency = agencies.add("  Kent   Police ")
    assert agency.name == "Kent Police"
    items = aws.client("dynamodb").scan(TableName=env["AGENCIES_TABLE"])["Items"]
    assert token not in json.dumps(items)
    assert [i["token_sha256"]["S"] for i in items] == [token_sha256(token)]
    assert request_upload(api, token).status_code == 201
    agencies.revoke(agency.token_id)
    assert request_upload(api, token).status_code == 401


def test_agency_names_must_be_plain_ascii(env: dict[str, str]) -> None:
    from oneeye.errors import OneEyeError

    for bad in ("", "Polizei München", "x" * 81, "<script>", "a\x00b"):
        with pytest.raises(OneEyeError):
            Agencies(env["AGENCIES_TABLE"]).add(bad)


def test_an_agencys_time_zone_is_checked_and_copied_onto_its_new_cases(
        env: dict[str, str], api: AmberHarness) -> None:
    from oneeye.errors import OneEyeError

    agencies = Agencies(env["AGENCIES_TABLE"])
    for bad in ("CET+1", "Europe/Atlantis", "../../etc/passwd", ""):
        with pytest.raises(OneEyeError, match="IANA name"):
            agencies.add("Gendarmerie", time_zone=bad)
    token, agency = agencies.add("Gendarmerie", time_zone="Europe/Paris")
    assert agencies.lookup(token) == agency and agency.time_zone == "Europe/Paris"
    resp = request_upload(api, token)
    assert resp.status_code == 201, resp.text
    case = store.Cases(env["CASES_TABLE"]).get(resp.json()["case_id"])
    assert case is not None and case["time_zone"] == "Europe/Paris"


# --- rate limit -------------------------------------------------------------------------------

def test_rate_limit_429_after_n_per_minute_per_token(env: dict[str, str], api: AmberHarness,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_RATE_PER_MIN", "3")
    limited = AmberHarness()  # fresh handlers read the new limit
    try:
        other = Agencies(env["AGENCIES_TABLE"]).add("Other Agency")[0]
        for _ in range(2):  # a minute boundary inside the burst splits it: redo, new token
            token = Agencies(env["AGENCIES_TABLE"]).add("Rate Test")[0]
            window = int(time.time() // 60)
            burst = [request_upload(limited, token) for _ in range(5)]
            if int(time.time() // 60) == window:
                break
        assert [r.status_code for r in burst] == [201, 201, 201, 429, 429]
        resp = burst[-1]
        assert resp.json()["error"] == "rate_limited"
        assert 1 <= int(resp.headers["Retry-After"]) <= 61
        assert request_upload(limited, other).status_code == 201  # per token
    finally:
        limited.close()


def test_rate_window_rolls_over(env: dict[str, str]) -> None:
    limiter = RateLimiter(env["IDEMPOTENCY_TABLE"], per_minute=2)
    t0 = 1_800_000_000 - 1_800_000_000 % 60
    assert [limiter.hit("k" * 16, now=t0 + s) for s in (0, 30)] == [1, 2]
    with pytest.raises(ApiError) as exc:
        limiter.hit("k" * 16, now=t0 + 59)
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "2"
    assert limiter.hit("k" * 16, now=t0 + 60) == 1


# --- form, presigned POST, audit --------------------------------------------------------------

@pytest.mark.parametrize(("form", "field"), [
    ({"name": ""}, "name"), ({"name": None}, "name"), ({"name": "x" * 101}, "name"),
    ({"age": "seven"}, "age"), ({"age": 200}, "age"), ({"case_id": "../etc"}, "case_id"),
    ({"case_id": "MP 1"}, "case_id"), ({"content_type": "image/gif"}, "content_type"),
    ({"content_type": None}, "content_type"), ({"description": 5}, "description"),
    ({"contact": None}, "contact"), ({"contact": " "}, "contact"),   # a new case needs it
    ({"case_id": "MP-2026-0777", "contact": None}, "contact"),        # also under a chosen id
])
def test_invalid_form_is_400_naming_the_field(api: AmberHarness, token: str,
                                              form: dict[str, Any], field: str) -> None:
    resp = request_upload(api, token, **form)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "invalid_form"
    assert field in resp.json()["details"]


@pytest.mark.parametrize(("typed", "stored"), [
    ("+44 20 7946 0958", "+442079460958"),                  # spaces dropped: E.164
    ("0044 20 7946 0958", "+442079460958"),                 # 00 international prefix
    ("+1 (202) 555-0143", "+12025550143"),                  # punctuation a phone keyboard adds
    ("duty.officer@Thames.Police.UK", "duty.officer@thames.police.uk"),   # domain lower-cased
    ("+33 1 23 45 67 89; desk@gendarmerie.example",         # one phone and one email
     "+33123456789, desk@gendarmerie.example"),
])
def test_the_contact_is_normalised_at_upload_and_stored_on_the_case(
        env: dict[str, str], api: AmberHarness, token: str, typed: str, stored: str) -> None:
    resp = request_upload(api, token, contact=typed)
    assert resp.status_code == 201, resp.text
    case = store.Cases(env["CASES_TABLE"]).get(resp.json()["case_id"])
    assert case is not None and case["contact"] == stored


@pytest.mark.parametrize(("typed", "why"), [
    ("101", "start a phone number with +"),                 # a national short code
    ("07946 0958", "start a phone number with +"),          # national form, country unknown
    ("+44 12", "not a valid phone number"),                 # too short for its country
    ("+999 1234 5678", "not a phone number"),               # no such country code
    ("+44 7700 900123", "not a valid phone number"),        # Ofcom's drama range: unassigned
    ("duty@", "not an email address"),
    ("duty officer@police.uk", "not an email address"),
    ("+44 20 7946 0958\nBcc: all@example.com", "line break"),   # header injection
    ("<script>alert(1)</script>@x.example", "not an email address"),
    ("+442079460958, +12025550143", "not two of the same"),
    ("a@b.example, c@d.example, +442079460958", "at most two entries"),
    ("+" + "1" * 300, "at most 200 characters"),
])
def test_a_bad_contact_is_400_stating_the_rule(api: AmberHarness, token: str, typed: str,
                                               why: str) -> None:
    resp = request_upload(api, token, contact=typed)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "invalid_form" and why in body["details"]["contact"]
    assert "contact" in body["message"]


def test_a_missing_contact_names_the_rule(api: AmberHarness, token: str) -> None:
    resp = request_upload(api, token, contact=None)
    assert resp.status_code == 400
    assert "international form" in resp.json()["details"]["contact"]


@pytest.mark.parametrize(("case_id", "rule"), [
    ("MP-2026-Süd", "'ü' is not allowed"), ("MP 1", "space is not allowed"),
    ("../etc", "'/' is not allowed"), ("x" * 129, "129 characters long"),
    ("-MP-1", "it starts with '-'")])
def test_an_odd_case_id_is_refused_naming_it_and_the_rule(api: AmberHarness, token: str,
                                                          case_id: str, rule: str) -> None:
    resp = request_upload(api, token, case_id=case_id)
    assert resp.status_code == 400, resp.text
    said = resp.json()["details"]["case_id"]
    assert said.startswith(f"case id {case_id[:60]!r}"[:30]) and rule in said
    assert "1–128 ASCII letters" in said


def test_bad_bodies_get_clear_errors(api: AmberHarness, token: str) -> None:
    url = f"{api.url}/api/uploads"
    for body in (b"", b"not json", b"[1,2]"):
        resp = requests.post(url, data=body, headers=auth(token), timeout=10)
        assert resp.status_code == 400 and resp.json()["error"] == "bad_json"
    resp = requests.post(url, data=b"{" + b" " * 20000 + b"}", headers=auth(token), timeout=10)
    assert resp.status_code == 413
    resp = request_upload(api, token, size=11 * 1024 * 1024)
    assert resp.status_code == 413 and "file too large" in resp.json()["message"]


def test_presigned_post_pins_key_type_size_metadata_and_expiry(env: dict[str, str],
                                                                api: AmberHarness,
                                                                token: str) -> None:
    before = time.time()
    resp = request_upload(api, token, content_type="image/png", age="71",
                          description="grey coat", contact="+44 20 7946 0958")
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    case_id, upload_id = grant["case_id"], grant["upload_id"]
    assert case_id.startswith(f"MP-{datetime.now(UTC).year}-")
    key = f"uploads/missing/{case_id}/{upload_id}.png"
    fields = grant["fields"]
    assert fields["key"] == key
    assert fields["Content-Type"] == "image/png"
    assert fields["x-amz-meta-case-id"] == case_id
    assert fields["x-amz-meta-upload-id"] == upload_id
    assert fields["x-amz-meta-agency"] == "Thames Valley Police"
    assert grant["expires_in"] == 300 and grant["status_url"] == f"/api/uploads/{upload_id}"
    assert grant["url"].endswith("/" + env["ONEEYE_BUCKET"])
    policy = json.loads(base64.b64decode(fields["policy"]))
    conds = policy["conditions"]
    assert ["content-length-range", 1, 10 * 1024 * 1024] in conds
    assert {"Content-Type": "image/png"} in conds
    assert {"key": key} in conds and {"bucket": env["ONEEYE_BUCKET"]} in conds
    for meta in ("case-id", "upload-id", "agency"):
        assert {f"x-amz-meta-{meta}": fields[f"x-amz-meta-{meta}"]} in conds
    expiry = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + 295 <= expiry.timestamp() <= time.time() + 301
    case = store.Cases(env["CASES_TABLE"]).get(case_id)
    assert case is not None
    assert (case["name"], case["age"], case["status"], case["agency"]) == \
        ("Jane Doe", 71, "pending", "Thames Valley Police")   # open once a photo is accepted
    # pending status exists at once, so the phone can poll immediately
    status = requests.get(f"{api.url}/api/uploads/{upload_id}", headers=auth(token),
                          timeout=10).json()
    assert (status["state"], status["message"]) == ("pending", "checking photo…")


def test_new_case_ids_are_sequential(api: AmberHarness, token: str) -> None:
    ids = [request_upload(api, token).json()["case_id"] for _ in range(3)]
    nums = [int(i.rsplit("-", 1)[1]) for i in ids]
    assert nums == [nums[0], nums[0] + 1, nums[0] + 2]
    assert all(len(i.rsplit("-", 1)[1]) >= 4 for i in ids)


def test_audit_records_who_uploaded_what_for_which_case(env: dict[str, str], api: AmberHarness,
                                                        token: str) -> None:
    grant = request_upload(api, token, case_id="MP-2026-7001", filename="jane.jpg").json()
    entries = Audit(store.Bucket(env["ONEEYE_BUCKET"])).entries(datetime.now(UTC).date()
                                                                .isoformat())
    mine = [e for e in entries if e.get("upload_id") == grant["upload_id"]]
    assert len(mine) == 1
    e = mine[0]
    assert e["action"] == "upload_requested" and e["agency"] == "Thames Valley Police"
    assert e["case_id"] == "MP-2026-7001" and e["filename"] == "jane.jpg"
    assert e["key"].startswith("uploads/missing/MP-2026-7001/")
    assert e["token_id"] == token_sha256(token)[:12] and e["source_ip"] == "127.0.0.1"
    assert token not in json.dumps(entries)


def test_another_agencys_case_and_upload_are_off_limits(env: dict[str, str], api: AmberHarness,
                                                        token: str) -> None:
    grant = request_upload(api, token, case_id="MP-2026-7002").json()
    other = Agencies(env["AGENCIES_TABLE"]).add("Other Force")[0]
    resp = request_upload(api, other, case_id="MP-2026-7002")
    assert resp.status_code == 403
    resp = requests.get(f"{api.url}/api/uploads/{grant['upload_id']}", headers=auth(other),
                        timeout=10)
    assert resp.status_code == 404
    assert requests.post(f"{api.url}/api/cases/MP-2026-7002/close", headers=auth(other),
                         timeout=10).status_code == 404
    listed = requests.get(f"{api.url}/api/cases", headers=auth(other), timeout=10).json()
    assert listed["cases"] == []
    mine = requests.get(f"{api.url}/api/cases", headers=auth(token), timeout=10).json()
    assert [c["case_id"] for c in mine["cases"]] == ["MP-2026-7002"]


def test_unknown_and_malformed_upload_ids_are_404(api: AmberHarness, token: str) -> None:
    for uid in ("nope", "0190a0b0-0000-7000-8000-000000000000", "x" * 300):
        resp = requests.get(f"{api.url}/api/uploads/{uid}", headers=auth(token), timeout=10)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found"


def test_pending_upload_whose_link_expired_is_reported(env: dict[str, str]) -> None:
    deps = status_from_env()
    status = {"upload_id": "u", "case_id": "MP-1", "state": "pending",
              "key": "uploads/missing/MP-1/u.jpg", "expires_at": int(time.time()) - 400}
    out = describe(status, {"name": "Jane"}, deps)
    assert (out["state"], out["reason"]) == ("rejected", "expired")
    status["expires_at"] = int(time.time()) + 100
    assert describe(status, {"name": "Jane"}, deps)["state"] == "pending"


# --- the photo itself: upload through the presigned POST, indexer, status -------------------

def test_photo_upload_is_stored_indexed_and_accepted(env: dict[str, str], api: AmberHarness,
                                                     token: str, pump: IndexerPump,
                                                     examples: Path) -> None:
    grant = request_upload(api, token, case_id="MP-2026-0042", name="Barack O.").json()
    photo = (examples / "obama.jpg").read_bytes()
    assert post_photo(grant, photo) == 204
    key = grant["fields"]["key"]
    head = aws.client("s3").head_object(Bucket=env["ONEEYE_BUCKET"], Key=key)
    assert head["ContentLength"] == len(photo)
    assert head["Metadata"]["case-id"] == "MP-2026-0042"
    assert head["Metadata"]["upload-id"] == grant["upload_id"]
    status = wait_status(api, token, grant["upload_id"])
    assert status["state"] == "accepted", status
    v = status["gallery_version"]
    assert status["message"] == f"accepted — cameras now looking for Barack O. (gallery v{v})"
    g, _ = gallery_store.read_latest(store.Bucket(env["ONEEYE_BUCKET"]), "missing")
    assert "MP-2026-0042" in g and g.version == v


@pytest.mark.parametrize(("kind", "reason", "message"), [
    ("blank", "no_face", "no face found — use a photo where the face is clearly visible"),
    ("two", "several_faces", "two faces — crop to one person"),
    ("text", "not_an_image", "not an image — use a JPEG or PNG photo"),
    ("truncated", "unreadable", "the photo could not be read (corrupt or cut off) — take it "
                                "again"),
])
def test_bad_photos_are_rejected_with_the_reason(env: dict[str, str], api: AmberHarness,
                                                 token: str, pump: IndexerPump, examples: Path,
                                                 kind: str, reason: str, message: str) -> None:
    data = {
        "blank": lambda: jpeg(Image.linear_gradient("L").resize((640, 480))),
        "two": lambda: (examples / "two_people.jpg").read_bytes(),
        "text": lambda: b"this is not a photo at all\n" * 10,
        "truncated": lambda: (examples / "obama.jpg").read_bytes()[:3000],
    }[kind]()
    grant = request_upload(api, token).json()
    assert post_photo(grant, data) == 204  # moto enforces no policy: the indexer must
    status = wait_status(api, token, grant["upload_id"])
    assert (status["state"], status["reason"], status["message"]) == \
        ("rejected", reason, message), status
    # the indexer's own sentence is kept as detail when it adds something
    assert status["detail"] != status["message"]
    assert bool(status["detail"]) is (kind != "blank")
    # a rejected photo opens no case: no camera could match it, no alert could come
    case = store.Cases(env["CASES_TABLE"]).get(grant["case_id"])
    assert case is not None and case["status"] == "pending"


def test_oversize_photo_that_slipped_past_the_policy_is_rejected(
        env: dict[str, str], api: AmberHarness, token: str, pump: IndexerPump) -> None:
    # moto does not enforce content-length-range; a 1 MB indexer limit stands in for 10 MB
    # so the test need not push 10 MB through moto.
    pump.deps = dataclasses.replace(pump.deps, max_bytes=1024 * 1024)
    grant = request_upload(api, token).json()
    big = jpeg(Image.effect_noise((1500, 1500), 60))
    assert len(big) > 1024 * 1024
    assert post_photo(grant, big) == 204
    status = wait_status(api, token, grant["upload_id"])
    assert (status["state"], status["reason"]) == ("rejected", "too_large")
    assert status["message"].startswith("file too large")


# --- a photo for an existing case: its details change only with an accepted photo ----------

OLD_DETAILS = {"name": "Jane Doe", "age": 71, "description": "grey coat",
               "contact": "+44 1865 000000", "reported_by": "PC Smith"}
#: What the officer types with the new photo; no description (the form leaves it empty).
NEW_FORM = {"name": "Janet Doe-Smith", "age": "72", "contact": "+44 1865 999999",
            "agency": "DC Jones"}


def existing_case(env: dict[str, str], case_id: str) -> dict[str, Any]:
    """A closed case of the token's agency, as an earlier accepted photo and a close left it."""
    return store.Cases(env["CASES_TABLE"]).upsert(case_id, {
        **OLD_DETAILS, "agency": "Thames Valley Police", "status": "closed",
        "photo_key": f"uploads/missing/{case_id}/old.jpg", "last_upload_id": "old"})


def expire_grant(env: dict[str, str], upload_id: str) -> None:
    """Move the grant's expiry into the past: its link was issued longer ago than it lives."""
    bucket = store.Bucket(env["ONEEYE_BUCKET"])
    grant = bucket.get_json(f"status/{upload_id}.json")
    assert isinstance(grant, dict)
    bucket.put_json(f"status/{upload_id}.json",
                    {**grant, "expires_at": int(time.time()) - EXPIRY_GRACE_S - 1})


@pytest.mark.parametrize(("how", "reason"), [
    ("no_face", "no_face"),
    ("several_faces", "several_faces"),
    ("late", "refused"),
    ("revoked", "refused"),
    ("never_sent", "expired"),
])
def test_a_rejected_photo_changes_nothing_of_an_existing_case(
        env: dict[str, str], api: AmberHarness, token: str, pump: IndexerPump,
        examples: Path, how: str, reason: str) -> None:
    """A new upload with other details for an existing (closed) case, and its photo fails.

    Edge cases: ``no_face`` (a photo without a face, rejected by the indexer);
    ``several_faces`` (two people); ``late`` (a good photo that arrives after its link
    expired: the grant refuses it); ``revoked`` (a good photo whose agency token is revoked
    after the link was issued: refused); ``never_sent`` (no photo before the link expired:
    upload_status reports ``expired``). In every one the case keeps every old detail, its
    status and its ``updated_at`` — nothing was written to it — and the phone's status
    answer leaks neither the new details nor the token hash.
    """
    before = existing_case(env, "MP-2026-0300")
    resp = request_upload(api, token, case_id="MP-2026-0300", **NEW_FORM)
    assert resp.status_code == 201, resp.text
    grant = resp.json()
    cases = store.Cases(env["CASES_TABLE"])
    assert cases.get("MP-2026-0300") == before  # asking for a link writes nothing to the case
    record = store.Bucket(env["ONEEYE_BUCKET"]).get_json(f"status/{grant['upload_id']}.json")
    # the contact as normalised at upload (E.164)
    assert record["case_update"] == {"name": "Janet Doe-Smith", "age": 72,
                                     "contact": "+441865999999", "reported_by": "DC Jones"}
    poller = token
    if how in ("late", "never_sent"):
        expire_grant(env, grant["upload_id"])
    if how == "revoked":  # the same agency polls with its other token
        poller = Agencies(env["AGENCIES_TABLE"]).add("Thames Valley Police")[0]
        Agencies(env["AGENCIES_TABLE"]).revoke(token_sha256(token)[:16])
    photo = {"no_face": lambda: jpeg(Image.linear_gradient("L").resize((640, 480))),
             "several_faces": lambda: (examples / "two_people.jpg").read_bytes()}.get(
        how, lambda: (examples / "obama_small.jpg").read_bytes())()
    if how != "never_sent":
        assert post_photo(grant, photo) == 204
    status = wait_status(api, poller, grant["upload_id"])
    assert (status["state"], status["reason"]) == ("rejected", reason), status
    assert "case_update" not in status and "token_sha256" not in status
    assert "Janet" not in json.dumps(status) and status["name"] == "Jane Doe"
    assert cases.get("MP-2026-0300") == before
    g, _ = gallery_store.read_latest(store.Bucket(env["ONEEYE_BUCKET"]), "missing")
    assert "MP-2026-0300" not in g


def test_an_accepted_photo_applies_the_new_details_and_opens_the_case(
        env: dict[str, str], api: AmberHarness, token: str, pump: IndexerPump,
        examples: Path) -> None:
    """The same upload to an existing closed case, and its photo is accepted.

    Edge cases: the new details apply with the photo (name, age, contact, reported_by);
    a field the form left empty (description) keeps its old value; the closed case
    re-opens with the new reference photo; ``created_at`` and the owning agency stay;
    another agency asking for a link to the case is 403 and writes nothing either.
    """
    before = existing_case(env, "MP-2026-0301")
    other = Agencies(env["AGENCIES_TABLE"]).add("Other Force")[0]
    assert request_upload(api, other, case_id="MP-2026-0301", **NEW_FORM).status_code == 403
    grant = request_upload(api, token, case_id="MP-2026-0301", **NEW_FORM).json()
    cases = store.Cases(env["CASES_TABLE"])
    assert cases.get("MP-2026-0301") == before
    assert post_photo(grant, (examples / "obama_small.jpg").read_bytes()) == 204
    status = wait_status(api, token, grant["upload_id"])
    assert status["state"] == "accepted", status
    assert status["message"] == ("accepted — cameras now looking for Janet Doe-Smith "
                                 f"(gallery v{status['gallery_version']})")
    assert "case_update" not in status and "token_sha256" not in status
    case = cases.get("MP-2026-0301")
    assert case is not None
    assert {k: case.get(k) for k in OLD_DETAILS} == {
        "name": "Janet Doe-Smith", "age": 72, "description": "grey coat",
        "contact": "+441865999999", "reported_by": "DC Jones"}
    assert (case["status"], case["agency"], case["created_at"]) == \
        ("open", "Thames Valley Police", before["created_at"])
    assert (case["photo_key"], case["last_upload_id"]) == \
        (keys.accepted(grant["fields"]["key"]), grant["upload_id"])


# --- closing a case ---------------------------------------------------------------------------

def test_close_case_queues_the_removal_command(env: dict[str, str], api: AmberHarness,
                                               token: str) -> None:
    request_upload(api, token, case_id="MP-2026-7003")
    resp = requests.post(f"{api.url}/api/cases/MP-2026-7003/close", headers=auth(token),
                         timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "closed" and resp.json()["already_closed"] is False
    msgs = aws.client("sqs").receive_message(QueueUrl=env["INDEXER_QUEUE_URL"],
                                             MaxNumberOfMessages=10, WaitTimeSeconds=1)
    bodies = [json.loads(m["Body"]) for m in msgs.get("Messages", [])]
    # each command names itself (command_id) so a redelivery is done once
    assert {"action": "remove", "watchlist": "missing", "person_id": "MP-2026-7003"} in [
        {k: v for k, v in b.items() if k != "command_id"} for b in bodies if "command_id" in b]
    case = store.Cases(env["CASES_TABLE"]).get("MP-2026-7003")
    assert case is not None and case["status"] == "closed" and case["closed_by"]
    again = requests.post(f"{api.url}/api/cases/MP-2026-7003/close", headers=auth(token),
                          timeout=10)
    assert again.status_code == 200 and again.json()["already_closed"] is True
    assert requests.post(f"{api.url}/api/cases/MP-2026-9999/close", headers=auth(token),
                         timeout=10).status_code == 404
    closed = requests.get(f"{api.url}/api/cases?status=closed", headers=auth(token),
                          timeout=10).json()["cases"]
    assert [c["case_id"] for c in closed] == ["MP-2026-7003"]
    assert requests.get(f"{api.url}/api/cases?status=maybe", headers=auth(token),
                        timeout=10).status_code == 400
    # asking to upload does not re-open it: only an accepted photo does (the indexer)
    assert request_upload(api, token, case_id="MP-2026-7003").status_code == 201
    still = store.Cases(env["CASES_TABLE"]).get("MP-2026-7003")
    assert still is not None and still["status"] == "closed"


def test_close_case_removes_the_person_from_the_gallery(env: dict[str, str], api: AmberHarness,
                                                        token: str, pump: IndexerPump,
                                                        examples: Path) -> None:
    bucket = store.Bucket(env["ONEEYE_BUCKET"])
    for case_id, photo in (("MP-2026-0100", "obama.jpg"), ("MP-2026-0101", "biden.jpg")):
        grant = request_upload(api, token, case_id=case_id).json()
        assert post_photo(grant, (examples / photo).read_bytes()) == 204
        assert wait_status(api, token, grant["upload_id"])["state"] == "accepted"
    g, _ = gallery_store.read_latest(bucket, "missing")
    assert {"MP-2026-0100", "MP-2026-0101"} <= set(g.identities())
    resp = requests.post(f"{api.url}/api/cases/MP-2026-0100/close", headers=auth(token),
                         timeout=10)
    assert resp.status_code == 200
    done = pump.wait_for(lambda r: r.get("status") == "removed")
    assert done["person_id"] == "MP-2026-0100"
    after, _ = gallery_store.read_latest(bucket, "missing")
    assert "MP-2026-0100" not in after and "MP-2026-0101" in after
    assert after.version == g.version + 1


# --- the Lambda boundary: events, misconfiguration, the template's wiring ---------------------

def test_handlers_answer_malformed_events_and_missing_settings_cleanly(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    from tests.amber_support import load_handler, make_event

    upload_url = load_handler("upload_url")
    out = upload_url("not an event", None)
    assert out["statusCode"] == 400 and json.loads(out["body"])["error"] == "bad_event"
    bad_b64 = make_event("POST", "/api/uploads", headers=auth(token))
    bad_b64.update(body="%%%", isBase64Encoded=True)
    assert upload_url(bad_b64, None)["statusCode"] == 400
    good = make_event("POST", "/api/uploads", headers=auth(token))
    form = b'{"name": "A", "content_type": "image/png", "contact": "+44 20 7946 0958"}'
    good.update(body=base64.b64encode(form).decode(), isBase64Encoded=True)
    out = upload_url(good, None)
    assert out["statusCode"] == 201 and out["headers"]["Cache-Control"] == "no-store"
    cases = load_handler("cases")
    out = cases(make_event("DELETE", "/api/cases", headers=auth(token)), None)
    assert out["statusCode"] == 404
    monkeypatch.delenv("CASES_TABLE")
    fresh = load_handler("upload_status")
    out = fresh(make_event("GET", "/api/uploads/x", params={"upload_id": "x"},
                           headers=auth(token)), None)
    assert out["statusCode"] == 500
    assert json.loads(out["body"])["error"] == "misconfigured"


def test_template_wires_the_routes_and_settings_the_handlers_need() -> None:
    from oneeye.local import template as tpl
    from tests.amber_support import REPO, ROUTES

    t = tpl.load(REPO / "cloud" / "template.yaml")
    by_dir = {f.code_dir.name: f for f in t.functions.values()}
    routes = {(r.method, r.path, t.functions[r.function_id].code_dir.name) for r in t.routes}
    assert set(ROUTES) <= routes
    needs = {"upload_url": {"ONEEYE_BUCKET", "AGENCIES_TABLE", "CASES_TABLE",
                            "IDEMPOTENCY_TABLE"},
             "upload_status": {"ONEEYE_BUCKET", "AGENCIES_TABLE", "CASES_TABLE"},
             "cases": {"ONEEYE_BUCKET", "AGENCIES_TABLE", "CASES_TABLE", "INDEXER_QUEUE_URL"}}
    for name, env_keys in needs.items():
        assert env_keys <= set(by_dir[name].environment), name
    text = (REPO / "cloud" / "template.yaml").read_text()
    assert text.count('"${DataBucket.Arn}/audit/*"') >= 2  # upload_url and cases write audit
