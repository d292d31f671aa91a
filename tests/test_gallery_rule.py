"""The decision rule: per-identity distance plus a margin to the runner-up identity."""

from __future__ import annotations

import numpy as np
import pytest

from oneeye.errors import GalleryError
from oneeye.gallery import DEFAULT_RULES, DecisionRule, EnrolmentPolicy, Gallery, Matcher
from oneeye.gallery.rule import MAX_MARGIN
from oneeye.types import WATCHLISTS

RULE = DecisionRule(max_distance=0.5, min_margin=0.05)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return v / np.linalg.norm(v)


MEAN = 1.3 * unit(0)  # dlib encodings share a large mean component (norm ≈ 1.3)


def person(seed: int) -> np.ndarray:
    return (MEAN + 0.3 * unit(seed)).astype(np.float32)


def gallery(entries: list[tuple[str, np.ndarray]], rule: DecisionRule = RULE,
            watchlist: str = "customers") -> Gallery:
    return Gallery.from_entries(watchlist, entries, rule=rule)


def test_stranger_between_two_people_is_rejected_by_the_margin() -> None:
    a, b = person(1), person(2)
    g = gallery([("A", a), ("B", b)])
    stranger = (a + b) / 2                     # equally close to both
    (c,) = g.nearest(stranger)
    assert c.distance <= RULE.max_distance     # a threshold alone would announce it
    assert c.margin < RULE.min_margin
    assert g.match(stranger) is None


def test_clear_match_is_accepted_with_its_margin() -> None:
    a, b = person(1), person(2)
    g = gallery([("A", a), ("B", b)])
    q = a + 0.1 * unit(7)
    m = g.match(q)
    assert m is not None and m.person_id == "A" and m.watchlist == "customers"
    assert m.distance == pytest.approx(np.linalg.norm(q - a), abs=1e-5)
    assert m.margin == pytest.approx(np.linalg.norm(q - b) - np.linalg.norm(q - a), abs=1e-5)


def test_far_face_is_rejected_by_distance_even_with_a_large_margin() -> None:
    g = gallery([("A", person(1))])
    far = (MEAN + 0.8 * unit(9)).astype(np.float32)
    (c,) = g.nearest(far)
    assert c.person_id == "A" and c.distance > RULE.max_distance
    assert g.match(far) is None


def test_margin_is_between_identities_not_between_photos_of_one_person() -> None:
    a = person(1)
    # Two near-identical photos of A must not make A's margin tiny.
    g = gallery([("A", a), ("A", a + 0.02 * unit(3)), ("B", person(2))])
    q = a + 0.05 * unit(4)
    (c,) = g.nearest(q)
    assert c.person_id == "A" and c.margin > 0.2
    assert g.match(q) is not None


def test_identity_distance_is_its_closest_photo() -> None:
    a1, a2 = person(1), person(11)
    g = gallery([("A", a1), ("A", a2), ("B", person(2))])
    q = a2 + 0.05 * unit(5)
    (c,) = g.nearest(q)
    assert c.person_id == "A"
    assert c.distance == pytest.approx(np.linalg.norm(q - a2), abs=1e-5)


def test_single_identity_gallery_reports_max_margin() -> None:
    g = gallery([("A", person(1))])
    (c,) = g.nearest(person(1))
    assert c.margin == MAX_MARGIN and g.match(person(1)) is not None


def test_empty_gallery_matches_nobody() -> None:
    g = Gallery.empty("missing")
    (c,) = g.nearest(person(1))
    assert c.person_id is None and g.match(person(1)) is None


@pytest.mark.parametrize(("distance", "margin", "accepted"), [
    (0.5, 0.05, True),      # both limits are inclusive
    (0.5001, 0.2, False),
    (0.3, 0.0499, False),
    (0.0, MAX_MARGIN, True),
])
def test_rule_limits(distance: float, margin: float, accepted: bool) -> None:
    assert RULE.accepts(distance, margin) is accepted


@pytest.mark.parametrize("kwargs", [{"max_distance": 0.0}, {"max_distance": 2.0},
                                    {"min_margin": -0.01}, {"min_margin": 1.5}])
def test_invalid_rules_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(GalleryError):
        DecisionRule(**kwargs)


def test_each_watchlist_applies_its_own_rule() -> None:
    a, b = person(1), person(2)
    q = a + 0.35 * unit(8)                  # ≈ 0.36 from A: fine for lenient, not strict
    d = float(np.linalg.norm(q - a))
    strict = DecisionRule(max_distance=d - 0.01, min_margin=0.0)
    lenient = DecisionRule(max_distance=d + 0.01, min_margin=0.0)
    matcher = Matcher([gallery([("A", a)], strict, "missing"),
                       gallery([("C-A", a), ("C-B", b)], lenient, "customers")])
    m = matcher.match(q)
    assert m is not None and m.watchlist == "customers" and m.person_id == "C-A"
    (best_match, nearest), = matcher.identify(q)
    assert best_match == m and nearest is not None and nearest.distance == pytest.approx(d, 1e-4)


def test_defaults_are_stricter_than_plain_face_recognition() -> None:
    # Plain face_recognition accepts the closest face under 0.6 with no margin.
    assert set(DEFAULT_RULES) == set(WATCHLISTS)
    for rule in DEFAULT_RULES.values():
        assert rule.max_distance < 0.6 and rule.min_margin > 0
    a, b = person(1), person(2)
    g = Gallery.from_entries("customers", [("A", a), ("B", b)])   # default rule
    assert g.rule == DEFAULT_RULES["customers"]
    assert g.match((a + b) / 2) is None


def test_enrolment_policy_defaults_accept_small_real_faces() -> None:
    # HOG boxes LFW subjects' faces at 43 px and up; the default must not refuse them.
    policy = EnrolmentPolicy()
    assert policy.min_face_px <= 43 and 0 < policy.min_blur <= 23


def test_an_override_replaces_only_the_fields_it_sets() -> None:
    from oneeye.edge.settings import ThresholdOverride
    from oneeye.gallery import effective_rule

    base = DecisionRule(max_distance=0.5, min_margin=0.05)
    assert effective_rule(base, None) is base
    assert effective_rule(base, ThresholdOverride()) is base
    assert effective_rule(base, ThresholdOverride(max_distance=0.4)) == DecisionRule(0.4, 0.05)
    assert effective_rule(base, ThresholdOverride(min_margin=0.1)) == DecisionRule(0.5, 0.1)


def test_a_track_is_decided_on_the_mean_of_its_looks() -> None:
    from oneeye.gallery import fuse

    alice = person(1)
    g = Gallery.from_entries("customers", [("alice", alice), ("bob", person(2))], rule=RULE)
    # Two looks on opposite sides of alice, each 0.55 away: rejected alone, accepted fused.
    side = unit(7) - (unit(7) @ unit(8)) * unit(8)
    side /= np.linalg.norm(side)
    looks = np.stack([alice + 0.55 * side, alice - 0.55 * side]).astype(np.float32)
    assert [m for m, _ in Matcher([g]).identify(looks)] == [None, None]
    np.testing.assert_allclose(fuse(looks), alice, atol=1e-6)
    match, _ = Matcher([g]).identify_track(looks)
    assert match is not None and match.person_id == "alice" and match.distance < 1e-3
    strict = {"customers": DecisionRule(max_distance=0.05, min_margin=0.0)}
    assert Matcher([g]).identify_track(looks[:1], strict)[0] is None
    with pytest.raises(ValueError):
        fuse(np.empty((0, 128)))
