"""Where the edge looks: motion on a small grey copy, regions around motion and tracks, and
the sweep that covers the whole frame (Frigate's motion → regions → detection, for faces)."""

from __future__ import annotations

import numpy as np

from oneeye import synth
from oneeye.edge.detect.regions import (
    MotionDetector,
    Sweep,
    dedupe,
    look_regions,
    merge,
    search_scale,
)


def test_motion_is_where_something_moved_and_noise_is_not_motion() -> None:
    bg = synth.background(1920, 1080)
    rng = np.random.default_rng(0)
    motion = MotionDetector()
    assert motion.detect(synth.scene(bg, [], rng=rng)) == []        # first frame: background
    assert motion.detect(synth.scene(bg, [], rng=rng)) == []        # camera noise only
    moved = bg.copy()
    moved[500:560, 1200:1250] = 255                                  # a 50x60 px change
    (box,) = motion.detect(moved)
    top, right, bottom, left = box
    assert top <= 500 and bottom >= 560 and left <= 1200 and right >= 1250
    assert (bottom - top) < 200 and (right - left) < 200             # no bigger than needed


def test_regions_pad_motion_and_tracks_merge_overlaps_and_say_when_the_frame_is_busy() -> None:
    shape = (1080, 1920)
    one = look_regions(shape, [(500, 1250, 560, 1200)], [], pad=48, min_side=128)
    assert one == [(452, 1298, 608, 1152)]                          # padded by 48 px
    expected = look_regions(shape, [], [(100, 140, 140, 100)], pad=48, min_side=32)
    assert expected == [(60, 180, 180, 60)]                          # a track: its own size
    assert len(look_regions(shape, [(500, 1250, 560, 1200), (520, 1300, 580, 1260)], [],
                            pad=48, min_side=128)) == 1
    assert look_regions(shape, [(0, 1900, 1000, 0)], [], pad=48, min_side=128) is None
    assert merge([(0, 10, 10, 0), (20, 30, 30, 20)]) == [(0, 10, 10, 0), (20, 30, 30, 20)]
    assert dedupe([(0, 10, 10, 0), (1, 11, 11, 1), (20, 30, 30, 20)]) == \
        [(0, 10, 10, 0), (20, 30, 30, 20)]


def test_the_sweep_covers_the_frame_in_bands_then_waits_for_its_period() -> None:
    sweep = Sweep(10.0, 3, overlap=16)
    bands = [sweep.next_band(t, 300, 400) for t in (0.0, 0.2, 0.4, 0.6, 9.9, 10.4)]
    assert bands[:3] == [(0, 400, 116, 0), (84, 400, 216, 0), (184, 400, 300, 0)]
    assert bands[3] is None and bands[4] is None                     # until 0.4 + 10 s
    assert bands[5] == (0, 400, 116, 0)
    assert Sweep(0, 3, overlap=16).next_band(0.0, 300, 400) is None  # disabled


def test_a_region_is_searched_at_native_size_up_to_its_pixel_budget() -> None:
    """Small regions (a distant face) keep every pixel; a large one (someone near the
    camera) is searched downscaled to the budget, so its cost is bounded."""
    assert search_scale((0, 300, 300, 0), 160_000) == 1.0          # 90,000 px
    assert search_scale((0, 400, 400, 0), 160_000) == 1.0          # exactly the budget
    big = (0, 1000, 900, 100)                                      # 900 x 900 = 810,000 px
    s = search_scale(big, 160_000)
    assert abs((900 * s) ** 2 - 160_000) < 1_000
    assert search_scale((0, 10_000, 10_000, 0), 4096) == 0.05     # a floor, never 0
