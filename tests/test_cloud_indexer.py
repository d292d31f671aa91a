"""gallery_indexer through the real path: S3 put → moto's notification on SQS → handler.

Photos come from ../shared/data; bad ones are generated. The GalleryEvent is
received on a real MQTT broker (embedded amqtt on a free port).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from oneeye import aws
from oneeye.cloud.backoffice import Backoffice
from oneeye.cloud.dal import gallery_store, keys, store
from oneeye.cloud.dal.state import Idempotency
from oneeye.cloud.functions import gallery_indexer
from oneeye.errors import EnrolmentRejected
from oneeye.events import GalleryEvent, utc_now
from oneeye.ids import new_id
from tests.cloud_support import put_upload, run_queue
from tests.mqtt_support import Subscriber

pytestmark = pytest.mark.timeout(120)


def status(env: dict[str, str], upload_id: str) -> dict[str, Any]:
    got = store.Bucket(env["ONEEYE_BUCKET"]).get_json(f"status/{upload_id}.json")
    assert got is not None, f"no status for {upload_id}"
    return dict(got)


def jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def notify(mqtt_broker: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Subscriber]:
    monkeypatch.setenv("GALLERY_NOTIFY", mqtt_broker)
    listener = Subscriber(int(mqtt_broker.rsplit(":", 1)[1]), "oneeye/gallery/updated")
    yield listener
    listener.close()


def test_accepted_upload_makes_version_publishes_and_reports(
        cloud_env: dict[str, str], examples: Path, notify: Subscriber) -> None:
    upload_id = new_id()
    key = f"uploads/missing/MP-2026-0042/{upload_id}.jpg"
    put_upload(cloud_env, key, (examples / "obama_small.jpg").read_bytes(),
               **{"case-id": "MP-2026-0042", "upload-id": upload_id, "agency": "met",
                  "name": "Jane%20Doe"})
    results = run_queue(cloud_env)
    assert [r["status"] for r in results] == ["accepted"]
    st = status(cloud_env, upload_id)
    assert st["state"] == "accepted" and st["gallery_version"] == 1
    assert st["case_id"] == "MP-2026-0042" and "gallery v1" in st["message"]
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    g, latest = gallery_store.read_latest(bucket, "missing")
    assert latest and latest["key"] == "gallery/missing/1.npz" and g.version == 1
    assert g.identities() == {"MP-2026-0042": 1}
    assert bucket.get_json("gallery/missing/1.json")["sha256"] == latest["sha256"]
    event = GalleryEvent.model_validate_json(notify.payloads(1)[0])
    assert (event.watchlist, event.version, event.change, event.person_id) == \
        ("missing", 1, "added", "MP-2026-0042")
    assert event.key == "gallery/missing/1.npz" and event.sha256 == latest["sha256"]
    case = store.Cases(cloud_env["CASES_TABLE"]).get("MP-2026-0042")
    assert case and case["status"] == "open" and case["name"] == "Jane Doe"
    assert case["last_upload_id"] == upload_id
    # the reference photo amber_alert links on the banner: the indexer's own copy
    assert case["photo_key"] == f"accepted/missing/MP-2026-0042/{upload_id}.jpg"


def test_accepted_upload_applies_only_the_case_details_its_grant_carries(
        cloud_env: dict[str, str], examples: Path) -> None:
    """An accepted photo applies its grant's ``case_update`` to the existing case.

    Edge cases: the grant's details win over a ``name`` in the object's metadata; a None
    value keeps the case's field; keys that are not case details (``status``, ``agency``,
    ``photo_key``) are ignored — the indexer alone sets those.
    """
    cases = store.Cases(cloud_env["CASES_TABLE"])
    cases.upsert("MP-2026-0500", {"name": "Jane Doe", "age": 71, "contact": "101",
                                  "agency": "met", "status": "closed"})
    upload_id = new_id()
    key = f"uploads/missing/MP-2026-0500/{upload_id}.jpg"
    put_upload(cloud_env, key, (examples / "obama_small.jpg").read_bytes(),
               case_update={"name": "Janet Doe", "age": None, "contact": "999",
                            "status": "closed", "agency": "Other", "photo_key": "x"},
               **{"agency": "met", "name": "Metadata%20Name"})
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    case = cases.get("MP-2026-0500")
    assert case is not None
    assert (case["name"], case["age"], case["contact"]) == ("Janet Doe", 71, "999")
    assert (case["status"], case["agency"], case["photo_key"]) == \
        ("open", "met", keys.accepted(key))


def test_redelivery_of_same_object_makes_no_second_version(
        cloud_env: dict[str, str], examples: Path, notify: Subscriber) -> None:
    upload_id = new_id()
    put_upload(cloud_env, f"uploads/missing/MP-1/{upload_id}.jpg",
               (examples / "obama_small.jpg").read_bytes())
    sqs = aws.client("sqs")
    bodies = []
    while msgs := sqs.receive_message(QueueUrl=cloud_env["INDEXER_QUEUE_URL"],
                                      MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=cloud_env["INDEXER_QUEUE_URL"],
                               ReceiptHandle=m["ReceiptHandle"])
    s3_event = next(b for b in bodies if "Records" in b)
    deps = gallery_indexer.indexer_from_env()
    first = gallery_indexer.handle_message(s3_event, deps)
    second = gallery_indexer.handle_message(s3_event, deps)
    assert [first[0]["status"], second[0]["status"]] == ["accepted", "duplicate"]
    _, latest = gallery_store.read_latest(store.Bucket(cloud_env["ONEEYE_BUCKET"]), "missing")
    assert latest and latest["version"] == 1
    assert len(notify.payloads(1)) == 1


def test_customers_and_second_photo_and_remove_command(
        cloud_env: dict[str, str], examples: Path, notify: Subscriber) -> None:
    train = examples / "knn_examples" / "train"
    put_upload(cloud_env, "uploads/customers/C-1042/1.jpg", (train / "obama/obama.jpg")
               .read_bytes())
    put_upload(cloud_env, "uploads/customers/C-1042/2.jpg", (train / "obama/obama2.jpg")
               .read_bytes())
    put_upload(cloud_env, "uploads/customers/C-2001/1.jpg", (train / "biden/biden2.jpg")
               .read_bytes())
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"] * 3
    assert status(cloud_env, "C-1042-2")["state"] == "accepted"
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    g, _ = gallery_store.read_latest(bucket, "customers")
    assert g.version == 3 and g.identities() == {"C-1042": 2, "C-2001": 1}
    aws.client("sqs").send_message(QueueUrl=cloud_env["INDEXER_QUEUE_URL"], MessageBody=json.dumps(
        {"action": "remove", "watchlist": "customers", "person_id": "C-1042"}))
    assert [r["status"] for r in run_queue(cloud_env)] == ["removed"]
    g, _ = gallery_store.read_latest(bucket, "customers")
    assert g.version == 4 and g.identities() == {"C-2001": 1}
    events = [GalleryEvent.model_validate_json(p) for p in notify.payloads(4)]
    assert [(e.version, e.change) for e in events] == \
        [(1, "added"), (2, "added"), (3, "added"), (4, "removed")]
    # Removing someone absent is a no-op, not a new version; a bad command is rejected.
    out = gallery_indexer.handle_message({"action": "remove", "watchlist": "customers",
                                  "person_id": "C-1042"}, gallery_indexer.indexer_from_env())
    assert out[0]["status"] == "absent" and out[0]["gallery_version"] == 4
    bad = gallery_indexer.handle_message({"action": "remove", "watchlist": "vip", "person_id": "x"},
                                 gallery_indexer.indexer_from_env())
    assert bad[0]["status"] == "rejected" and "watchlist" in bad[0]["reason"]


def _no_face() -> bytes:
    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))
    return jpeg(Image.fromarray(np.dstack([ramp, ramp[::-1], ramp])))


@pytest.mark.parametrize("name, make, reason", [
    ("no_face", lambda ex: _no_face(), "no_face"),
    ("two_faces", lambda ex: (ex / "two_people.jpg").read_bytes(), "several_faces"),
    # a 35 px face is enrolled on missing with a warning (test_small_face.py); at ~12 px
    # neither the photo nor its 2x copy holds a face the detector can find
    ("tiny_face", lambda ex: jpeg(Image.open(ex / "obama.jpg").resize((40, 50))), "no_face"),
    ("not_an_image", lambda ex: b"%PDF-1.4 this is not a photo" * 20, "not_an_image"),
    ("truncated", lambda ex: (ex / "obama_small.jpg").read_bytes()[:2000], "unreadable"),
    ("empty", lambda ex: b"", "not_an_image"),
])
def test_rejected_uploads_report_their_reason(cloud_env: dict[str, str], examples: Path,
                                              name: str, make: Any, reason: str) -> None:
    upload_id = new_id()
    put_upload(cloud_env, f"uploads/missing/MP-7/{upload_id}.jpg", make(examples))
    results = run_queue(cloud_env)
    assert [(r["status"], r["reason"]) for r in results] == [("rejected", reason)]
    st = status(cloud_env, upload_id)
    assert st["state"] == "rejected" and st["reason"] == reason and st["message"]
    assert st["gallery_version"] is None
    assert store.Bucket(cloud_env["ONEEYE_BUCKET"]).get_json("gallery/missing/latest.json") \
        is None


def test_sixteen_bit_grey_upload_is_enrolled_and_heic_is_named(
        cloud_env: dict[str, str]) -> None:
    """../shared/cases/image-16bit-grey through the phone's path: accepted, not "no face"."""
    grey16 = Path(__file__).resolve().parents[2] / "shared/cases/image-16bit-grey/grey16.png"
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    ok, bad = new_id(), new_id()
    put_upload(cloud_env, f"uploads/missing/MP-9/{ok}.png", grey16.read_bytes())
    put_upload(cloud_env, f"uploads/missing/MP-10/{bad}.jpg", heic)
    results = {r["upload_id"]: r for r in run_queue(cloud_env)}
    assert results[ok]["status"] == "accepted"
    assert (results[bad]["status"], results[bad]["reason"]) == ("rejected", "not_an_image")
    assert "HEIC is not supported; export as JPEG" in status(cloud_env, bad)["message"]


def test_oversize_upload_rejected_before_download(cloud_env: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLOAD_MAX_BYTES", str(1024 * 1024))
    upload_id = new_id()
    put_upload(cloud_env, f"uploads/missing/MP-8/{upload_id}.jpg", b"\xff\xd8" + b"\0" *
               (1024 * 1024 + 10))
    assert [r["reason"] for r in run_queue(cloud_env)] == ["too_large"]
    st = status(cloud_env, upload_id)
    assert st["reason"] == "too_large" and "under 1 MB" in st["message"]


def test_pixel_bomb_is_too_large(cloud_env: dict[str, str]) -> None:
    deps = gallery_indexer.IndexerDeps(bucket=store.Bucket(cloud_env["ONEEYE_BUCKET"]),
                               idempotency=Idempotency(cloud_env["IDEMPOTENCY_TABLE"]),
                               max_pixels=1_000_000)
    buf = io.BytesIO()
    Image.new("L", (2000, 1000)).save(buf, format="PNG")  # tiny file, 2 MP
    with pytest.raises(EnrolmentRejected) as info:
        gallery_indexer.encode_photo(buf.getvalue(), deps)
    assert info.value.reason == "too_large"


def test_unknown_keys_and_bodies_are_rejected_not_raised(cloud_env: dict[str, str]) -> None:
    deps = gallery_indexer.indexer_from_env()
    assert gallery_indexer.handle({"nothing": 1}, deps)[0]["status"] == "rejected"
    sqs_bad = {"Records": [{"eventSource": "aws:sqs", "body": "{nope"}]}
    assert gallery_indexer.handle(sqs_bad, deps)[0]["status"] == "rejected"
    other = {"Records": [{"eventName": "ObjectCreated:Put",
                          "s3": {"object": {"key": "uploads/elsewhere/x.jpg", "eTag": "e"}}}]}
    assert gallery_indexer.handle_message(other, deps)[0]["status"] == "rejected"
    removed = {"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "k"}}}]}
    assert gallery_indexer.handle_message(removed, deps)[0]["status"] == "ignored"
    assert gallery_indexer.handle_message({"Event": "s3:TestEvent"}, deps)[0]["status"] == "ignored"


def test_mqtt_broker_down_raises_for_retry(cloud_env: dict[str, str], examples: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from oneeye.errors import NotifyError
    from tests.net_support import free_port

    monkeypatch.setenv("GALLERY_NOTIFY", f"mqtt://127.0.0.1:{free_port()}")
    upload_id = new_id()
    key = f"uploads/missing/MP-9/{upload_id}.jpg"
    put_upload(cloud_env, key, (examples / "obama_small.jpg").read_bytes())
    etag = aws.client("s3").head_object(Bucket=cloud_env["ONEEYE_BUCKET"], Key=key)["ETag"]
    deps = gallery_indexer.indexer_from_env()
    with pytest.raises(NotifyError):
        gallery_indexer.index_upload(key, etag.strip('"'), deps)
    # The claim was released: the retry (broker back) completes the work.
    retry = dataclasses.replace(deps, notify="none")
    assert gallery_indexer.index_upload(key, etag.strip('"'), retry)["status"] == "accepted"


def test_gallery_notify_transports(cloud_env: dict[str, str]) -> None:
    from oneeye.cloud.dal.notify import publish_gallery_event
    from oneeye.errors import ConfigError

    event = GalleryEvent(watchlist="missing", version=3, bucket=cloud_env["ONEEYE_BUCKET"],
                         key="gallery/missing/3.npz", sha256="0" * 64, published_at=utc_now())
    # iot-data (AWS): through the one boto3 factory, here the moto server.
    publish_gallery_event(event, "iot-data")
    with pytest.raises(ConfigError, match="GALLERY_NOTIFY"):
        publish_gallery_event(event, "http://nope")


def test_indexer_signs_manifests_with_its_key(cloud_env: dict[str, str], examples: Path,
                                             notify: Subscriber, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from oneeye import signing

    key_file = tmp_path / "gallery-signing.key"
    public = signing.public_b64(signing.ensure_key_file(key_file))
    monkeypatch.setenv("GALLERY_SIGNING_KEY_FILE", str(key_file))
    put_upload(cloud_env, "uploads/customers/C-3001/1.jpg",
               (examples / "obama_small.jpg").read_bytes())
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    _, latest = gallery_store.read_latest(store.Bucket(cloud_env["ONEEYE_BUCKET"]), "customers")
    assert latest is not None
    signing.verify_manifest(public, latest["signature"], "customers", latest["version"],
                            latest["key"], latest["sha256"])
    event = GalleryEvent.model_validate_json(notify.payloads(1)[0])
    assert event.signature == latest["signature"]


def test_a_customer_photo_unlike_the_persons_other_photos_is_held_for_review(
        cloud_env: dict[str, str], examples: Path) -> None:
    train = examples / "knn_examples" / "train"
    put_upload(cloud_env, "uploads/customers/C-1042/1.jpg",
               (train / "obama/obama.jpg").read_bytes())
    put_upload(cloud_env, "uploads/customers/C-1042/2.jpg",         # someone else's face
               (train / "biden/biden2.jpg").read_bytes())
    first, second = run_queue(cloud_env)
    assert first["status"] == "accepted" and first["gallery_version"] == 1
    assert second["status"] == "needs_review" and second["distance"] > 0.6
    held = status(cloud_env, "C-1042-2")
    assert held["state"] == "needs_review" and held["reason"] == "unlike_person"
    assert "C-1042's other photos" in held["message"] and "second look" in held["message"]
    bucket = store.Bucket(cloud_env["ONEEYE_BUCKET"])
    g, _ = gallery_store.read_latest(bucket, "customers")
    assert g.version == 1 and g.identities() == {"C-1042": 1}     # cameras never use it
    backoffice = Backoffice(bucket=cloud_env["ONEEYE_BUCKET"],
                            cases_table=cloud_env["CASES_TABLE"],
                            indexer_queue_url=cloud_env["INDEXER_QUEUE_URL"])
    (review,) = [t for t in backoffice.templates("customers", "C-1042")
                 if t["state"] == "needs_review"]
    assert review["reason"] == "unlike_person" and review["kind"] == "photo"
    assert review["source"] == "uploads/customers/C-1042/2.jpg"
    # Another photo of the same face is accepted without a second look.
    put_upload(cloud_env, "uploads/customers/C-1042/3.jpg",
               (train / "obama/obama2.jpg").read_bytes())
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    # Accepting the held photo after the second look enrols it.
    backoffice.review_template("customers", "C-1042", review["template_id"], "accept", "ada")
    assert [r["status"] for r in run_queue(cloud_env)] == ["accepted"]
    g, _ = gallery_store.read_latest(bucket, "customers")
    assert g.identities() == {"C-1042": 3}
    assert all(t["state"] == "active" for t in backoffice.templates("customers", "C-1042"))
