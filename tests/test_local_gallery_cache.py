"""The local stack drops an edge gallery cache left by a previous run's (now empty) moto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from oneeye import gallery as gal
from oneeye.cloud.dal import gallery_store, store
from oneeye.local.state import drop_stale_gallery_cache

pytestmark = pytest.mark.timeout(60)


def one_person(person_id: str, seed: int) -> gal.Gallery:
    enc = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return gal.Gallery.empty("missing").with_person(person_id, [enc / np.linalg.norm(enc)])


def test_previous_runs_v1_is_dropped_and_the_buckets_own_latest_kept(
        cloud_env: dict[str, str], tmp_path: Path) -> None:
    bucket = cloud_env["ONEEYE_BUCKET"]
    cache = tmp_path / "galleries"
    # last run: case MP-2026-0001 as missing v1, cached by the edge
    gal.save(one_person("MP-2026-0001", 1), cache / "missing.npz")
    # this run: a fresh moto whose missing v1 is another case
    this_run = one_person("MP-2026-0007", 2)
    assert this_run.version == gal.load(cache / "missing.npz").version  # same version
    gallery_store.write_version(store.Bucket(bucket), this_run)

    assert drop_stale_gallery_cache(cache, bucket) == ["missing"]
    assert not (cache / "missing.npz").exists() and not (cache / "missing.json").exists()

    # a cache holding exactly the bucket's latest (what the edge downloaded) stays
    latest = store.Bucket(bucket).get_json(gallery_store.latest_key("missing"))
    obj = store.Bucket(bucket).get(latest["key"])
    assert obj is not None
    (cache / "missing.npz").write_bytes(obj.data)
    (cache / "missing.json").write_text(json.dumps(latest))
    assert drop_stale_gallery_cache(cache, bucket) == []
    assert (cache / "missing.npz").exists()
