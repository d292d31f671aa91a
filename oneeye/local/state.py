"""Files the local stack keeps under ``var/``: private secrets and the edge's gallery cache."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

from oneeye.cloud.dal.gallery_store import latest_key
from oneeye.cloud.dal.store import Bucket
from oneeye.types import WATCHLISTS

log = logging.getLogger(__name__)


def secret_file(path: Path) -> str:
    """A random secret kept across restarts in a 0600 file (never in the repo)."""
    if path.is_file():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    write_private(path, value)
    return value


def write_private(path: Path, value: str) -> None:
    """Write ``value`` to a file only its owner can read (created 0600, never widened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def drop_stale_gallery_cache(cache_dir: Path, bucket: str) -> list[str]:
    """Delete cached edge galleries that are not this bucket's latest; returns their watchlists.

    A stack started with ``keep_state: false`` (or after ``var/local`` was cleared) starts its
    gallery versions again at 1 while the edge's cache under ``var/`` keeps the previous run's:
    a cached ``missing`` v1 of an old case would shadow this run's v1 (same version, other
    people) and no sighting of a new case could match. The edge polls ``latest.json`` at
    start, so a dropped cache costs one download.
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
