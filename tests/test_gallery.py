"""oneeye.gallery: enrolment with reasons, matching, save/load and tamper detection."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oneeye import gallery as gal
from oneeye.edge.gallery.holder import GalleryHolder
from oneeye.errors import EnrolmentRejected, GalleryError
from oneeye.gallery.enrol import iter_photo_dir
from oneeye.gallery.files import manifest_path
from oneeye.gallery.rule import MAX_MARGIN


def random_gallery(n_people: int = 50, per: int = 3, seed: int = 0,
                   watchlist: str = "customers") -> gal.Gallery:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.12, (n_people, 128)).astype(np.float32)
    entries = [(f"P{i:04d}", centres[i] + rng.normal(0, 0.02, 128))
               for i in range(n_people) for _ in range(per)]
    return gal.Gallery.from_entries(watchlist, entries)


# ------------------------------------------------------------------ enrolment reasons

@pytest.fixture(scope="module")
def bad_photos(tmp_path_factory: pytest.TempPathFactory, examples: Path) -> Path:
    import cv2

    root = tmp_path_factory.mktemp("bad")
    (root / "no_face.png").write_bytes(_png(np.full((300, 300, 3), 90, np.uint8)))
    shutil.copy(examples / "two_people.jpg", root / "two.jpg")
    obama = np.asarray(Image.open(examples / "obama.jpg").convert("RGB"))
    small = cv2.resize(obama, (obama.shape[1] // 6, obama.shape[0] // 6))
    (root / "small.png").write_bytes(_png(small))
    blurred = cv2.GaussianBlur(obama, (0, 0), 9)
    (root / "blurred.png").write_bytes(_png(blurred))
    (root / "corrupt.jpg").write_bytes((examples / "obama.jpg").read_bytes()[:5000])
    (root / "text.jpg").write_text("hello")
    return root


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("no_face.png", "no_face"), ("two.jpg", "several_faces"), ("small.png", "face_too_small"),
     ("blurred.png", "too_blurred"), ("corrupt.jpg", "unreadable"), ("text.jpg", "unreadable")],
)
def test_each_rejection_reason(bad_photos: Path, name: str, reason: str) -> None:
    # small.png is a real 190 px portrait whose face (~45 px) is under this policy's minimum.
    policy = gal.EnrolmentPolicy(min_face_px=80)
    with pytest.raises(EnrolmentRejected) as info:
        gal.encode_enrolment_photo(bad_photos / name, policy)
    assert info.value.reason == reason
    assert str(info.value)  # a message a person can act on


def test_enrol_reports_bad_photos_and_keeps_going(bad_photos: Path, examples: Path) -> None:
    photos = [("obama", examples / "obama.jpg"), ("obama", bad_photos / "corrupt.jpg"),
              ("biden", examples / "biden.jpg"), ("ghost", bad_photos / "no_face.png"),
              ("bad id!", examples / "obama2.jpg")]
    g, report = gal.enrol(photos, watchlist="customers", policy=gal.EnrolmentPolicy(jitters=1))
    assert set(g.identities()) == {"obama", "biden"}
    assert {(r.person_id, r.reason) for r in report.rejected} == {
        ("obama", "unreadable"), ("ghost", "no_face"), ("bad id!", "invalid_person_id")}
    assert len(report.accepted) == 2


def test_multi_photo_enrolment_and_identification(examples: Path) -> None:
    train = examples / "knn_examples" / "train"
    g, report = gal.enrol(iter_photo_dir(train), watchlist="customers",
                          policy=gal.EnrolmentPolicy(jitters=1))
    assert not report.rejected
    assert g.identities() == {"alex_lacamoire": 1, "biden": 2, "kit_harington": 2,
                              "obama": 2, "rose_leslie": 2}
    from oneeye import faces

    img = faces.load_image(examples / "knn_examples" / "test" / "obama1.jpg")
    (enc,) = faces.encode(img, faces.detect(img))
    m = g.match(enc)
    assert m is not None and m.person_id == "obama" and m.watchlist == "customers"


# ------------------------------------------------------------------ matching

def test_exact_matcher_reproduces_face_recognition_distances() -> None:
    from oneeye.faces import face_distance

    g = random_gallery()
    q = np.random.default_rng(1).normal(0, 0.12, 128).astype(np.float32)
    ref = face_distance(g.encodings.astype(np.float64), q.astype(np.float64))
    assert np.allclose(g.distances(q)[0], ref, atol=1e-5)


def test_nearest_takes_min_per_identity_and_margin_to_runner_up() -> None:
    a, b = np.zeros(128, np.float32), np.zeros(128, np.float32)
    a[0], b[0] = 0.5, -0.5
    g = gal.Gallery.from_entries("customers", [("A", a), ("A", a * 0.5), ("B", b)])
    q = np.zeros(128, np.float32)
    q[0] = 0.2
    (cand,) = g.nearest(q)
    assert cand.person_id == "A"
    assert cand.distance == pytest.approx(0.05, abs=1e-5)       # A's closer photo
    assert cand.margin == pytest.approx(0.7 - 0.05, abs=1e-5)   # B at 0.7


def test_unknown_face_is_not_matched() -> None:
    g = random_gallery()
    stranger = np.random.default_rng(99).normal(0, 0.12, 128).astype(np.float32)
    assert g.match(stranger) is None
    assert g.nearest(stranger)[0].person_id is not None  # still reports its nearest


def test_stranger_between_two_identities_rejected_by_margin() -> None:
    a = np.zeros(128, np.float32)
    b = np.zeros(128, np.float32)
    a[0], b[1] = 0.3, 0.3
    g = gal.Gallery.from_entries("customers", [("A", a), ("B", b)],
                                 rule=gal.DecisionRule(max_distance=0.5, min_margin=0.05))
    midway = (a + b) / 2
    (cand,) = g.nearest(midway)
    assert cand.distance < 0.5 and cand.margin < 0.01
    assert g.match(midway) is None


def test_empty_gallery_matches_nothing() -> None:
    g = gal.Gallery.empty("missing")
    assert len(g) == 0 and g.match(np.zeros(128, np.float32)) is None


def test_single_identity_reports_capped_margin() -> None:
    g = gal.Gallery.from_entries("missing", [("MP-1", np.zeros(128))])
    assert g.nearest(np.zeros(128))[0].margin == MAX_MARGIN


def test_batch_equals_single_queries() -> None:
    g = random_gallery()
    qs = np.random.default_rng(3).normal(0, 0.12, (8, 128)).astype(np.float32)
    batch, single = g.nearest(qs), [g.nearest(q)[0] for q in qs]
    assert [c.person_id for c in batch] == [c.person_id for c in single]
    assert np.allclose([c.distance for c in batch], [c.distance for c in single], atol=1e-5)
    assert np.allclose([c.margin for c in batch], [c.margin for c in single], atol=1e-5)


def test_a_face_accepted_on_missing_is_the_missing_match_even_when_a_customer_is_closer(
        ) -> None:
    """Issue 20 §5: watchlists are decided separately; ``missing`` outranks ``customers``."""
    x = np.zeros(128, np.float32)
    near, far = x.copy(), x.copy()
    near[0], far[0] = 0.1, 0.3
    for cust, miss in ((far, near), (near, far)):   # the customer photo farther, then closer
        customers = gal.Gallery.from_entries("customers", [("C-1", cust)])
        missing = gal.Gallery.from_entries("missing", [("MP-1", miss)])
        matcher = gal.Matcher([customers, missing])
        m = matcher.match(x)
        assert m is not None and (m.person_id, m.watchlist) == ("MP-1", "missing")
        track, _ = matcher.identify_track(np.stack([x, x]))
        assert track is not None and track.watchlist == "missing"


def test_a_customer_is_announced_when_the_missing_watchlist_refuses_the_face() -> None:
    x = np.zeros(128, np.float32)
    cust, miss = x.copy(), x.copy()
    cust[0], miss[0] = 0.1, 0.9     # 0.9 is beyond the missing rule's max_distance 0.525
    matcher = gal.Matcher([gal.Gallery.from_entries("customers", [("C-1", cust)]),
                           gal.Gallery.from_entries("missing", [("MP-1", miss)])])
    m = matcher.match(x)
    assert m is not None and (m.person_id, m.watchlist) == ("C-1", "customers")


def test_with_and_without_person_bump_version() -> None:
    g = random_gallery(5)
    g2 = g.with_person("NEW", [np.ones(128)])
    assert g2.version == g.version + 1 and "NEW" in g2 and "NEW" not in g
    g3 = g2.without_person("P0000")
    assert "P0000" not in g3 and g3.version == g2.version + 1


def test_holder_swaps_atomically_and_refuses_older_versions() -> None:
    holder = GalleryHolder()
    v2 = random_gallery(3).with_person("X", [np.ones(128)])
    holder.swap(v2)
    snapshot = holder.current()
    holder.swap(v2.with_person("Y", [np.ones(128)]))
    assert snapshot.versions() == {"customers": 2}  # a frame's snapshot never changes
    assert holder.current().versions() == {"customers": 3}
    with pytest.raises(GalleryError, match="older"):
        holder.swap(random_gallery(3))


def test_invalid_inputs_are_gallery_errors() -> None:
    with pytest.raises(GalleryError, match="watchlist"):
        gal.Gallery.empty("vip")
    with pytest.raises(GalleryError, match="non-finite"):
        gal.Gallery.from_entries("customers", [("A", np.full(128, np.nan))])
    with pytest.raises(GalleryError):
        gal.DecisionRule(max_distance=0)


# ------------------------------------------------------------------ files

def test_save_load_round_trip(tmp_path: Path) -> None:
    g = random_gallery()
    manifest = gal.save(g, tmp_path / "customers.npz")
    assert manifest["identities"] == 50 and manifest["encodings"] == 150
    back = gal.load(tmp_path / "customers.npz")
    assert back.identities() == g.identities() and back.version == g.version
    assert back.rule == g.rule and np.array_equal(back.encodings, g.encodings)


def test_tampered_gallery_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    gal.save(random_gallery(), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(GalleryError, match="sha256 mismatch"):
        gal.load(path)


def test_swapped_gallery_with_fresh_hash_still_needs_matching_manifest(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    gal.save(random_gallery(), path)
    manifest = json.loads(manifest_path(path).read_text())
    other = random_gallery(seed=5).with_person("EVIL", [np.zeros(128)])
    path.write_bytes(gal.to_bytes(other))
    with pytest.raises(GalleryError, match="sha256 mismatch"):
        gal.load(path)
    manifest["sha256"] = __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    manifest_path(path).write_text(json.dumps(manifest))
    with pytest.raises(GalleryError, match="manifest does not describe"):
        gal.load(path)


def test_missing_manifest_and_corrupt_npz(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    gal.save(random_gallery(), path)
    manifest_path(path).unlink()
    with pytest.raises(GalleryError, match=r"manifest .* is missing"):
        gal.load(path)
    with pytest.raises(GalleryError, match="corrupt gallery"):
        gal.from_bytes(b"PK\x03\x04garbage", sha256=None)


def test_gallery_files_contain_no_pickles(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    gal.save(random_gallery(), path)
    with np.load(path, allow_pickle=False) as npz:  # would raise on object arrays
        assert set(npz.files) == {"encodings", "person_ids", "meta", "sources",
                                  "neg_person_ids", "neg_encodings", "neg_sources"}
