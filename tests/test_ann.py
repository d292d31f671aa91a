"""The faiss index agrees with the exact matcher, and fails clearly without faiss."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bench.ann import AnnGallery, AnnUnavailable, faiss_available
from oneeye.errors import GalleryError
from oneeye.gallery import DecisionRule, Gallery, Matcher
from oneeye.gallery.rule import MAX_MARGIN


def make_gallery(n_ids: int, per_id: int, seed: int = 0) -> tuple[Gallery, np.ndarray]:
    """dlib-like encodings: a shared mean (norm 1.3), identity offsets and photo noise.
    Every tenth identity is a look-alike of the one before (centres ≈ 0.3 apart), so
    some queries have a close runner-up and the margin decides."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=128)
    mean *= 1.3 / np.linalg.norm(mean)
    centres = mean + rng.normal(scale=0.48 / np.sqrt(128), size=(n_ids, 128))
    twins = np.arange(10, n_ids, 10)
    centres[twins] = centres[twins - 1] + rng.normal(scale=0.3 / np.sqrt(128),
                                                      size=(len(twins), 128))
    owner = np.repeat(np.arange(n_ids), per_id)
    enc = centres[owner] + rng.normal(scale=0.32 / np.sqrt(128), size=(len(owner), 128))
    entries = [(f"P{o:05d}", e) for o, e in zip(owner, enc, strict=True)]
    return Gallery.from_entries("customers", entries), centres


def photos_of(centres: np.ndarray, who: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (centres[who] + rng.normal(scale=0.32 / np.sqrt(128), size=(len(who), 128))
            ).astype(np.float32)


@pytest.fixture(scope="module")
def big() -> tuple[Gallery, np.ndarray]:
    return make_gallery(2000, 3)


@pytest.fixture(scope="module")
def big_ann(big) -> AnnGallery:
    return AnnGallery(big[0])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_agrees_with_exact_on_enrolled_and_strangers(big, kind) -> None:
    gallery, centres = big
    ann = AnnGallery(gallery, kind=kind)
    rng = np.random.default_rng(5)
    who = np.concatenate([rng.integers(0, len(centres), 250), np.arange(10, 1010, 20)])
    enrolled = photos_of(centres, who, seed=6)
    # Strangers: new identities around the same mean encoding.
    mean = centres.mean(axis=0)
    strangers = photos_of(mean + rng.normal(scale=0.48 / np.sqrt(128), size=(100, 128)),
                          np.arange(100), seed=7)
    queries = np.concatenate([enrolled, strangers])

    exact = gallery.nearest(queries)
    approx = ann.nearest(queries)
    same = [a.person_id == e.person_id for a, e in zip(approx, exact, strict=True)]
    assert np.mean(same[:300]) >= 0.99  # recall@1 on fresh photos of enrolled people

    # Re-ranking is exact: same identity → same distance. A far runner-up (large margin,
    # irrelevant to any decision) may be missed; a close one next to an acceptable
    # distance — where the margin decides — is found.
    deciding = []
    for a, e in zip(approx, exact, strict=True):
        if a.person_id == e.person_id:
            assert a.distance == pytest.approx(e.distance, abs=1e-4)
            if e.distance < 0.6 and e.margin < 0.15:
                deciding.append(abs(a.margin - e.margin) < 1e-4)
    assert len(deciding) >= 5 and np.mean(deciding) >= 0.95

    dec_exact = gallery.decide(exact)
    dec_ann = ann.decide(approx)
    agree = [(x is None and y is None) or (x is not None and y is not None
                                            and x.person_id == y.person_id)
             for x, y in zip(dec_exact, dec_ann, strict=True)]
    assert np.mean(agree) >= 0.99
    assert any(d is not None for d in dec_ann[:300]), "enrolled people must be recognised"


def test_ann_match_and_matcher_shape(big, big_ann) -> None:
    gallery, centres = big
    ann = big_ann
    q = photos_of(centres, np.array([42]), seed=3)[0]
    m = ann.match(q)
    assert m is not None and m.person_id == "P00042" and m.watchlist == "customers"
    assert m == gallery.match(q) or abs(m.distance - gallery.match(q).distance) < 1e-4
    # An AnnGallery stands in for a Gallery inside a Matcher.
    both = Matcher([ann])  # type: ignore[list-item]
    assert both.match(q) is not None and both.match(q).person_id == "P00042"
    assert len(ann) == len(gallery) and ann.version == gallery.version
    assert ann.rule == gallery.rule and ann.memory_bytes() > 0


def test_ann_empty_and_single_identity_galleries() -> None:
    empty = AnnGallery(Gallery.empty("missing"))
    (c,) = empty.nearest(np.zeros(128, np.float32))
    assert c.person_id is None and empty.match(np.zeros(128)) is None

    one, centres = make_gallery(1, 2)
    ann = AnnGallery(one)
    q = photos_of(centres, np.array([0]), seed=1)
    (c,) = ann.nearest(q)
    assert c.person_id == "P00000" and c.margin == MAX_MARGIN
    assert c.distance == pytest.approx(one.nearest(q)[0].distance, abs=1e-5)


def test_ann_uses_the_gallery_rule() -> None:
    gallery, centres = make_gallery(200, 2)
    strict = Gallery(watchlist="customers", version=gallery.version,
                     rule=DecisionRule(max_distance=0.05, min_margin=0.0),
                     person_ids=gallery.person_ids, encodings=gallery.encodings)
    q = photos_of(centres, np.array([7]), seed=2)[0]
    assert AnnGallery(strict).match(q) is None      # too far for this rule
    assert AnnGallery(gallery).match(q) is not None


@pytest.mark.parametrize("kwargs", [{"kind": "lsh"}, {"candidates": 0}])
def test_ann_bad_settings_raise_gallery_error(kwargs) -> None:
    gallery, _ = make_gallery(10, 1)
    with pytest.raises(GalleryError):
        AnnGallery(gallery, **kwargs)


def test_ann_rejects_non_finite_query(big_ann) -> None:
    q = np.full(128, np.nan, np.float32)
    with pytest.raises(GalleryError, match="finite"):
        big_ann.nearest(q)


def test_missing_faiss_gives_clear_error(monkeypatch) -> None:
    gallery, _ = make_gallery(10, 1)
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    assert not faiss_available()
    with pytest.raises(AnnUnavailable, match="faiss-cpu"):
        AnnGallery(gallery)
