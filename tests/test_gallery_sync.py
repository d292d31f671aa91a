"""Gallery sync over a real broker and a moto S3 *server*: update → swap, tampering refused."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oneeye import aws, signing
from oneeye import gallery as G
from oneeye.cloud.dal import gallery_store
from oneeye.cloud.dal.store import Bucket
from oneeye.edge.comms.publishers import make_publisher
from oneeye.edge.comms.uplink import Uplink
from oneeye.edge.device.runner import start_gallery_sync, vitals_of
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.edge.gallery.sync import GallerySync, Update
from oneeye.edge.settings import EdgeSettings
from oneeye.events import HEALTH, MAX_ERROR_CHARS, GalleryEvent, parse, utc_now
from tests.mqtt_support import BROKERS, make_broker, stop_broker
from tests.wait import wait_until

BUCKET = "oneeye-test"


@pytest.fixture
def s3(moto_server: str) -> Any:
    """An S3 client of the shared moto server with an empty ``BUCKET``."""
    client = aws.client("s3")
    if not any(b["Name"] == BUCKET for b in client.list_buckets().get("Buckets", [])):
        client.create_bucket(Bucket=BUCKET)
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return client


def make_gallery(version: int, n: int = 5, watchlist: str = "missing") -> G.Gallery:
    rng = np.random.default_rng(version)
    return G.Gallery.from_entries(watchlist, [(f"MP-{i}", rng.normal(0, 0.1, 128))
                                              for i in range(n)], version=version)


def upload(s3: Any, g: G.Gallery, *, tamper: bool = False, latest: bool = False) -> GalleryEvent:
    data = G.to_bytes(g)
    key = f"gallery/{g.watchlist}/{g.version}.npz"
    manifest = G.manifest_for(g, data, filename=f"{g.version}.npz")
    body = data[:-10] + b"x" * 10 if tamper else data
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    if latest:
        s3.put_object(Bucket=BUCKET, Key=f"gallery/{g.watchlist}/latest.json",
                      Body=json.dumps({**manifest, "key": key}).encode())
    return GalleryEvent(watchlist=g.watchlist, version=g.version, bucket=BUCKET, key=key,
                        sha256=manifest["sha256"], published_at=utc_now())


def edge_settings(tmp: Path, url: str = "none", **sync: Any) -> EdgeSettings:
    """An edge following ``BUCKET``. Without ``public_key`` it runs with ``allow_unsigned``
    (development mode): the transport and integrity tests write unsigned galleries; the
    trust tests below give a key, or ``allow_unsigned=False`` to see the default refuse."""
    if "public_key" not in sync:
        sync.setdefault("allow_unsigned", True)
    return EdgeSettings.model_validate({
        "device_id": "edge-test", "watchlists": ["missing"],
        "publish": {"url": url}, "outbox": {"path": str(tmp / "o.sqlite3")},
        "health": {"interval_s": 3600},
        "gallery_sync": {"enabled": True, "bucket": BUCKET, "poll_interval_s": 3600,
                         "cache_dir": str(tmp / "cache"), **sync}})


def wait_version(holder: GalleryHolder, v: int, timeout: float = 30) -> bool:
    """Wait until the holder's ``missing`` gallery is version ``v`` (AssertionError if not)."""
    return wait_until(lambda: holder.current().versions().get("missing") == v, timeout,
                      f"gallery version {v} on the edge")


@pytest.mark.parametrize("kind", BROKERS)
def test_update_message_swaps_gallery_on_running_edge(kind: str, s3: Any, tmp_path: Path) -> None:
    b = make_broker(kind, tmp_path).start()
    holder = GalleryHolder()
    holder.swap(make_gallery(1))
    s = edge_settings(tmp_path, b.url)
    up = Uplink(s, lambda: vitals_of([], holder, sync), publisher=make_publisher(s)).start()
    sync = start_gallery_sync(s, holder, up)
    assert up.publisher.wait_connected(10)
    topic = s.gallery_sync.update_topic
    wait_until(lambda: topic in getattr(up.publisher, "subscribed", ()), 30,
               f"the edge's subscription to {topic}")
    msg = upload(s3, make_gallery(2, n=9))
    indexer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="indexer")
    indexer.connect("127.0.0.1", b.port)
    indexer.loop_start()
    indexer.publish("oneeye/gallery/updated", msg.to_json(), qos=1).wait_for_publish(10)
    assert wait_version(holder, 2)
    assert len(holder.current().galleries["missing"]) == 9
    assert (tmp_path / "cache" / "missing.npz").exists()  # cached for the next start
    assert up.health().gallery_versions == {"missing": 2}
    indexer.loop_stop()
    up.close()
    assert sync is not None
    sync.stop()
    stop_broker(b)


def test_tampered_gallery_is_refused_and_old_kept(s3: Any, tmp_path: Path) -> None:
    holder = GalleryHolder()
    holder.swap(make_gallery(1))
    s = edge_settings(tmp_path)
    sync = GallerySync(s, holder, s3_client=s3)
    msg = upload(s3, make_gallery(2), tamper=True)
    sync.on_message("oneeye/gallery/updated", msg.to_json().encode())
    assert sync.apply_queued() == [False]
    assert holder.current().versions() == {"missing": 1}
    assert sync.failures == 1 and "sha256 mismatch" in (sync.last_error or "")
    up = Uplink(s, lambda: vitals_of([], holder, sync), publisher=make_publisher(s))
    assert up.health().gallery_sync_failures == 1  # reported in health
    up.close()


def test_a_long_sync_error_is_cut_where_made_and_health_stays_valid(s3: Any,
                                                                      tmp_path: Path) -> None:
    """Review defect (14 §5): an error over 500 characters made health the cloud rejects."""
    holder = GalleryHolder()
    s = edge_settings(tmp_path)
    sync = GallerySync(s, holder, s3_client=s3)
    long_key = "gallery/missing/" + "x" * 2000 + ".npz"
    msg = GalleryEvent(watchlist="missing", version=5, bucket=BUCKET, key=long_key,
                       sha256="0" * 64, published_at=utc_now())
    sync.on_message("oneeye/gallery/updated", msg.to_json().encode())
    assert sync.apply_queued() == [False]
    assert sync.last_error is not None and len(sync.last_error) == MAX_ERROR_CHARS
    up = Uplink(s, lambda: vitals_of([], holder, sync), publisher=make_publisher(s))
    health = up.health()
    assert health.gallery_sync_last_error == sync.last_error
    assert health.outbox_depth == 0 and health.device_id == "edge-test"  # the full message
    assert parse(health.to_json(), expect=HEALTH) == health   # what the cloud validates
    up.close()


@pytest.mark.parametrize("case, expect", [
    ("older", None), ("other_watchlist", None), ("wrong_bucket", "bucket"),
    ("key_outside", "outside"), ("mismatched_version", "not the announced"),
    ("missing_object", "NoSuchKey"),
])
def test_refused_or_ignored_updates(case: str, expect: str | None, s3: Any,
                                    tmp_path: Path) -> None:
    holder = GalleryHolder()
    holder.swap(make_gallery(3))
    sync = GallerySync(edge_settings(tmp_path), holder, s3_client=s3)
    msg = upload(s3, make_gallery(5))
    u = Update("missing", 5, BUCKET, msg.key, msg.sha256, "message", time.monotonic())
    u = {
        "older": u.__class__(**{**u.__dict__, "version": 2}),
        "other_watchlist": u.__class__(**{**u.__dict__, "watchlist": "customers"}),
        "wrong_bucket": u.__class__(**{**u.__dict__, "bucket": "evil-bucket"}),
        "key_outside": u.__class__(**{**u.__dict__, "key": "uploads/missing/x.jpg"}),
        "mismatched_version": u.__class__(**{**u.__dict__, "version": 4}),
        "missing_object": u.__class__(**{**u.__dict__, "key": "gallery/missing/99.npz"}),
    }[case]
    assert sync.apply(u) is False
    assert holder.current().versions() == {"missing": 3}
    if expect is None:
        assert sync.failures == 0
    else:
        assert sync.failures == 1 and expect in (sync.last_error or "")


def test_bad_message_is_reported_not_fatal(s3: Any, tmp_path: Path) -> None:
    sync = GallerySync(edge_settings(tmp_path), GalleryHolder(), s3_client=s3)
    sync.on_message("oneeye/gallery/updated", b"{not json")
    sync.on_message("oneeye/gallery/updated", json.dumps({"schema": "oneeye.gallery/9"}).encode())
    assert sync.failures == 2 and sync.apply_queued() == []


@pytest.mark.parametrize("junk", [b"\xff{", b"[7]", b'{"version": "seven"}', b"{}"])
def test_a_junk_latest_json_is_counted_and_the_next_poll_still_catches_up(
        junk: bytes, s3: Any, tmp_path: Path) -> None:
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path), holder, s3_client=s3)
    s3.put_object(Bucket=BUCKET, Key="gallery/missing/latest.json", Body=junk)
    sync.poll_once()
    assert sync.failures == 1 and "latest.json failed" in (sync.last_error or "")
    assert sync.apply_queued() == []
    upload(s3, make_gallery(4), latest=True)
    sync.poll_once()
    assert sync.apply_queued() == [True] and holder.current().versions() == {"missing": 4}


def test_polling_latest_json_catches_up_and_cache_is_used_at_start(s3: Any,
                                                                   tmp_path: Path) -> None:
    upload(s3, make_gallery(7), latest=True)
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path), holder, s3_client=s3)
    sync.start()  # polls at once
    assert wait_version(holder, 7)
    sync.stop()
    # A restarted edge uses the verified cache before any network access.
    fresh = GalleryHolder()
    GallerySync(edge_settings(tmp_path), fresh, s3_client=s3).load_cache()
    assert fresh.current().versions() == {"missing": 7}
    # A corrupted cache is ignored and reported.
    (tmp_path / "cache" / "missing.npz").write_bytes(b"garbage")
    other = GallerySync(edge_settings(tmp_path), GalleryHolder(), s3_client=s3)
    other.load_cache()
    assert other.failures == 1 and other.holder.current().versions() == {}


# -- signed manifests and plausible versions (the indexer signs, the edge verifies) ------

KEY = Ed25519PrivateKey.generate()
PUBLIC = signing.public_b64(KEY)


def publish(version: int, key: Ed25519PrivateKey | None = KEY, **over: Any) -> GalleryEvent:
    """Write version ``version`` as the indexer does and return its (signed) message."""
    latest = gallery_store.write_version(Bucket(BUCKET), make_gallery(version), signing_key=key)
    event = GalleryEvent(watchlist="missing", version=version, bucket=BUCKET,
                         key=latest["key"], sha256=latest["sha256"], published_at=utc_now(),
                         signature=latest.get("signature"))
    return event.model_copy(update=over)


def deliver(sync: GallerySync, event: GalleryEvent) -> bool:
    sync.on_message("oneeye/gallery/updated", event.to_json().encode())
    (applied,) = sync.apply_queued()
    return applied


def test_signed_manifest_is_applied_from_message_and_from_latest_json(
        s3: Any, tmp_path: Path) -> None:
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    publish(1)
    sync.poll_once()  # a fresh edge learns the newest version from the signed pointer
    assert sync.apply_queued() == [True]
    assert deliver(sync, publish(2)) is True
    assert holder.current().versions() == {"missing": 2} and sync.failures == 0
    assert sync.floor == {"missing": 2}


def test_bad_or_missing_signature_is_refused_by_the_edge(s3: Any, tmp_path: Path) -> None:
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    publish(1)
    sync.poll_once()
    assert sync.apply_queued() == [True]
    forged = publish(2, key=Ed25519PrivateKey.generate())           # someone else's key
    unsigned = publish(3, key=None)
    genuine = publish(4)
    renumbered = genuine.model_copy(update={"version": 5})         # v4's signature, new number
    garbage = genuine.model_copy(update={"signature": "not base64!"})
    outcomes = {name: deliver(sync, ev) for name, ev in [
        ("forged", forged), ("unsigned", unsigned), ("renumbered", renumbered),
        ("garbage", garbage)]}
    assert outcomes == dict.fromkeys(outcomes, False)
    assert holder.current().versions() == {"missing": 1} and sync.failures == 4
    assert "not base64" in (sync.last_error or "")
    # The latest.json of an unsigned writer is refused the same way.
    publish(6, key=None)
    sync.poll_once()
    assert sync.apply_queued() == [] and "undated pointer" in (sync.last_error or "")
    assert deliver(sync, genuine) is True and holder.current().versions() == {"missing": 4}


def test_implausible_version_jump_is_refused_and_genuine_versions_still_apply(
        s3: Any, tmp_path: Path) -> None:
    """Issue 13: a v2^53 announced with its own sha256 must not hide every later version."""
    holder = GalleryHolder()
    holder.swap(make_gallery(1))
    sync = GallerySync(edge_settings(tmp_path, max_version_jump=100), holder, s3_client=s3)
    genuine = upload(s3, make_gallery(2), latest=True)  # written by the indexer
    bogus = upload(s3, make_gallery(2**53, n=1))
    sync.on_message("oneeye/gallery/updated", bogus.to_json().encode())
    assert sync.apply_queued() == [False]
    assert "implausible version jump" in (sync.last_error or "")
    assert holder.current().versions() == {"missing": 1}
    # The refusal asks the sync thread to read latest.json now, not at the next poll.
    assert sync.poll_requested
    sync.poll_once()
    assert sync.apply_queued() == [True]
    assert holder.current().versions() == {"missing": genuine.version}
    assert deliver(sync, upload(s3, make_gallery(3))) is True


def test_local_signing_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "gallery-signing.key"
    key = signing.ensure_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert signing.public_b64(signing.ensure_key_file(path)) == signing.public_b64(key)
    assert time.time() - path.stat().st_mtime < 600


def test_a_gallery_from_before_signing_is_re_signed_and_then_accepted(s3: Any,
                                                                      tmp_path: Path) -> None:
    """What `oneeye up` does at start: an unsigned latest.json would be refused forever."""
    publish(3, key=None)
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    sync.poll_once()
    assert sync.apply_queued() == [] and sync.failures == 1
    assert gallery_store.ensure_signed(Bucket(BUCKET), "missing", KEY) is True
    assert gallery_store.ensure_signed(Bucket(BUCKET), "missing", KEY) is False  # idempotent
    sync.poll_once()
    assert sync.apply_queued() == [True] and holder.current().versions() == {"missing": 3}
    manifest = Bucket(BUCKET).get_json("gallery/missing/3.json")
    assert manifest["signature"] == Bucket(BUCKET).get_json(
        "gallery/missing/latest.json")["signature"]


# -- trusted only when signed, and "newest" bound too (issue 21) --------------------------

def test_a_default_edge_refuses_an_unsigned_gallery_and_the_insecure_flag_is_reported(
        s3: Any, tmp_path: Path) -> None:
    """No public key and no allow_unsigned (the recipe's default without deploy.sh's key):
    nothing is applied, from a message, latest.json or the cache."""
    unsigned = publish(1, key=None)
    holder = GalleryHolder()
    default = edge_settings(tmp_path / "default", allow_unsigned=False)
    sync = GallerySync(default, holder, s3_client=s3)
    assert deliver(sync, unsigned) is False
    sync.poll_once()
    assert sync.apply_queued() == [False]
    assert holder.current().versions() == {} and sync.failures == 2
    assert "no gallery_sync.public_key" in (sync.last_error or "")
    up = Uplink(default, lambda: vitals_of([], holder, sync), publisher=make_publisher(default))
    assert up.health().gallery_unsigned is False
    up.close()
    # Explicitly insecure (development): applied, and every health message says so.
    dev = edge_settings(tmp_path / "dev", allow_unsigned=True)
    loose = GallerySync(dev, GalleryHolder(), s3_client=s3)
    assert deliver(loose, unsigned) is True and loose.stats().unsigned
    up = Uplink(dev, lambda: vitals_of([], loose.holder, loose), publisher=make_publisher(dev))
    health = up.health()
    assert health.gallery_unsigned is True and health.gallery_versions == {"missing": 1}
    up.close()
    # A cache written by the insecure edge is not trusted by a default one either.
    (tmp_path / "default" / "cache").mkdir(parents=True, exist_ok=True)
    (tmp_path / "default" / "cache" / "missing.npz").write_bytes(
        (tmp_path / "dev" / "cache" / "missing.npz").read_bytes())
    sync.load_cache()
    assert holder.current().versions() == {}


def test_a_forged_relabelled_gallery_is_refused(s3: Any, tmp_path: Path) -> None:
    """C-1001's encodings relabelled C-1002, re-hashed, announced under the next version."""
    holder = GalleryHolder()
    genuine = G.Gallery.from_entries("customers", [
        ("C-1001", np.full(128, 0.01)), ("C-1002", np.full(128, -0.01))], version=1)
    gallery_store.write_version(Bucket(BUCKET), genuine, signing_key=KEY)
    settings = edge_settings(tmp_path, public_key=PUBLIC)
    settings = settings.model_copy(update={"watchlists": ["customers"]})
    sync = GallerySync(settings, holder, s3_client=s3)
    sync.poll_once()
    assert sync.apply_queued() == [True]
    forged = G.Gallery.from_entries("customers", [("C-1002", np.full(128, 0.01))], version=2)
    data = G.to_bytes(forged)
    sha = G.manifest_for(forged, data, filename="2.npz")["sha256"]
    s3.put_object(Bucket=BUCKET, Key="gallery/customers/2.npz", Body=data)
    old_sig = Bucket(BUCKET).get_json("gallery/customers/latest.json")["signature"]
    for signature in (None, old_sig, signing.sign_manifest(Ed25519PrivateKey.generate(),
                                                           "customers", 2,
                                                           "gallery/customers/2.npz", sha)):
        event = GalleryEvent(watchlist="customers", version=2, bucket=BUCKET,
                             key="gallery/customers/2.npz", sha256=sha,
                             published_at=utc_now(), signature=signature)
        assert deliver(sync, event) is False
    assert holder.current().galleries["customers"].version == 1
    assert holder.current().galleries["customers"].identities() == {"C-1001": 1, "C-1002": 1}
    assert sync.failures == 3
    # An edge installed without a key (the recipe's default) refuses it just the same.
    bare = GallerySync(settings.model_copy(update={"gallery_sync": settings.gallery_sync.
                                                   model_copy(update={"public_key": None})}),
                       GalleryHolder(), s3_client=s3)
    assert deliver(bare, event.model_copy(update={"signature": None})) is False
    assert bare.holder.current().versions() == {}


def test_a_fresh_edge_on_an_old_signed_manifest_goes_to_the_signed_latest(
        s3: Any, tmp_path: Path) -> None:
    """v1 is genuine and signed, but the signed latest says v11: a fresh edge told of v1
    (a replayed message) asks latest.json first and runs v11, never v1."""
    v1 = publish(1)
    for version in range(2, 12):
        publish(version)
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    assert deliver(sync, v1) is False and sync.poll_requested
    sync.poll_once()
    assert sync.apply_queued() == [True]
    assert holder.current().versions() == {"missing": 11} and sync.floor == {"missing": 11}
    assert deliver(sync, v1) is False  # ignored: older than in use


def test_an_old_genuine_latest_pointer_is_refused_as_stale(s3: Any, tmp_path: Path) -> None:
    """A latest.json pointing at genuine signed v1, its pointer signed 8 days ago (the bucket
    rolled back, or the object replayed): a fresh edge does not believe it."""
    gallery_store.write_version(Bucket(BUCKET), make_gallery(1), signing_key=KEY,
                                now=time.time() - 8 * 86_400)
    holder = GalleryHolder()
    sync = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    sync.poll_once()
    assert sync.apply_queued() == [] and holder.current().versions() == {}
    assert "max_latest_age_s" in (sync.last_error or "")
    # An undated or re-dated-by-someone-else pointer is refused the same way.
    latest = Bucket(BUCKET).get_json("gallery/missing/latest.json")
    Bucket(BUCKET).put_json("gallery/missing/latest.json",
                            {**latest, "issued_at": int(time.time())})
    sync.poll_once()
    assert sync.apply_queued() == [] and "does not verify" in (sync.last_error or "")
    # The indexer's daily refresh re-dates it; then it is believed.
    assert gallery_store.ensure_signed(Bucket(BUCKET), "missing", KEY) is True
    sync.poll_once()
    assert sync.apply_queued() == [True] and holder.current().versions() == {"missing": 1}


def test_a_rollback_after_a_restart_is_refused(s3: Any, tmp_path: Path) -> None:
    """The newest verified version survives a restart (verified.json in the data dir): an
    older genuine signed version is refused even with the gallery cache gone."""
    v5 = publish(5)
    publish(9)
    first = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), GalleryHolder(),
                        s3_client=s3)
    first.poll_once()
    assert first.apply_queued() == [True]
    (tmp_path / "cache" / "missing.npz").unlink()  # a wiped cache, or a swapped older one
    holder = GalleryHolder()
    again = GallerySync(edge_settings(tmp_path, public_key=PUBLIC), holder, s3_client=s3)
    assert deliver(again, v5) is False
    assert again.floor == {"missing": 9}
    assert "older than v9" in (again.last_error or "")
    assert holder.current().versions() == {}
    # an older gallery planted in the cache is not loaded either
    G.save(make_gallery(5), tmp_path / "cache" / "missing.npz")
    again.load_cache()
    assert holder.current().versions() == {} and "older than v9" in (again.last_error or "")
