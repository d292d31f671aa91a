"""The local stack's edge gallery cache against the run's fresh moto bucket."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from oneeye.cloud.gallery_store import latest_key
from oneeye.cloud.store import Bucket
from oneeye.types import WATCHLISTS

log = logging.getLogger(__name__)


def drop_stale_gallery_cache(cache_dir: Path, bucket: str) -> list[str]:
    """Delete cached edge galleries that are not this bucket's latest; returns their watchlists.

    The local moto starts empty each run, so its gallery versions start again at 1 while the
    edge's cache under ``var/`` keeps the previous run's: a cached ``missing`` v1 of an old
    case would shadow this run's v1 (same version, other people) and no sighting of a new case
    could match. The edge polls ``latest.json`` at start, so a dropped cache costs one download.
    """
    dropped: list[str] = []
    for watchlist in WATCHLISTS:
        cached, npz = cache_dir / f"{watchlist}.json", cache_dir / f"{watchlist}.npz"
        if not npz.exists() and not cached.exists():
            continue
        try:
            mine = json.loads(cached.read_text())
        except (OSError, ValueError):
            mine = None
        latest = Bucket(bucket).get_json(latest_key(watchlist))
        same = (isinstance(mine, dict) and isinstance(latest, dict)
                and (mine.get("version"), mine.get("sha256"))
                == (latest.get("version"), latest.get("sha256")))
        if not same:
            npz.unlink(missing_ok=True)
            cached.unlink(missing_ok=True)
            log.info("edge gallery cache %s dropped: not the bucket's latest", watchlist)
            dropped.append(watchlist)
    return dropped
