"""Gallery versions in S3: ``gallery/{watchlist}/{version}.npz`` + ``.json`` + ``latest.json``.

``latest.json`` is the manifest of the newest version plus ``"key"`` (the S3 key
of its ``.npz``); edges read it to catch up after being offline, and the
indexer reads it to build the next version. The npz and its manifest are
written before ``latest.json`` moves, so a reader following ``latest.json``
never meets a missing or half-written version; the sha256 in the manifest
catches anything else (a tampered or truncated object).

Signed (the indexer's key, :mod:`oneeye.signing`): each manifest carries
``signature``; ``latest.json`` also carries ``issued_at`` and ``latest_signature``,
the dated pointer that tells a fresh edge which version is the newest. Edges believe a
pointer only while it is younger than their ``max_latest_age_s`` (7 days by default),
so :func:`ensure_signed` re-dates it once it is older than :data:`POINTER_REFRESH_S`
(the indexer's daily schedule, and the local stack, call it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oneeye import gallery as gal
from oneeye.cloud.dal import keys
from oneeye.cloud.dal.store import Bucket
from oneeye.errors import GalleryError, SignatureError
from oneeye.signing import (
    public_b64,
    sign_manifest,
    sign_pointer,
    verify_manifest,
    verify_pointer,
)

log = logging.getLogger(__name__)

#: Re-date a signed ``latest.json`` older than this (s). A day: well inside the edge's
#: default ``gallery_sync.max_latest_age_s`` of 7 days, so a few missed runs do no harm.
POINTER_REFRESH_S = 86_400


def latest_key(watchlist: str) -> str:
    """``gallery/{watchlist}/latest.json`` of a known watchlist (GalleryError otherwise)."""
    return keys.gallery_latest(gal.check_watchlist(watchlist))


def read_latest(bucket: Bucket, watchlist: str) -> tuple[gal.Gallery, dict[str, Any] | None]:
    """The newest version and its manifest, or an empty version 0 and None."""
    manifest = bucket.get_json(latest_key(watchlist))
    if manifest is None:
        log.info("no %s gallery yet; starting from an empty one", watchlist)
        return gal.Gallery.empty(watchlist), None
    if not isinstance(manifest, dict) or manifest.get("schema") != gal.MANIFEST_SCHEMA:
        raise GalleryError(f"{latest_key(watchlist)} is not a {gal.MANIFEST_SCHEMA} manifest")
    key = str(manifest.get("key", ""))
    obj = bucket.get(key)
    if obj is None:
        raise GalleryError(f"{latest_key(watchlist)} points at missing {key}")
    g = gal.from_bytes(obj.data, sha256=str(manifest["sha256"]))
    if g.watchlist != watchlist or g.version != manifest.get("version"):
        raise GalleryError(f"{key} does not match its manifest")
    return g, manifest


def ensure_signed(bucket: Bucket, watchlist: str, signing_key: Ed25519PrivateKey, *,
                  refresh_after_s: float = POINTER_REFRESH_S,
                  now: float | None = None) -> bool:
    """Sign ``latest.json`` (and its version's manifest) if its signatures are not this
    key's, and re-date its pointer (``issued_at``) once older than ``refresh_after_s``.

    For a stack whose galleries predate signing, or whose key was replaced: edges that
    verify would otherwise refuse the current version until the next upload; and for a
    watchlist that has not changed for days, whose pointer edges would find too old.
    Returns whether anything was written.
    """
    latest = bucket.get_json(latest_key(watchlist))
    if not isinstance(latest, dict) or latest.get("schema") != gal.MANIFEST_SCHEMA:
        return False
    now = time.time() if now is None else now
    args = (watchlist, int(latest["version"]), str(latest["key"]), str(latest["sha256"]))
    public = public_b64(signing_key)
    updated = dict(latest)
    try:
        verify_manifest(public, latest.get("signature"), *args)
    except SignatureError:
        updated["signature"] = sign_manifest(signing_key, *args)
        manifest_key = str(latest["key"]).removesuffix(".npz") + ".json"
        manifest = bucket.get_json(manifest_key)
        if isinstance(manifest, dict):
            bucket.put_json(manifest_key, {**manifest, "signature": updated["signature"]})
        log.info("gallery %s v%s re-signed with the current key", watchlist, latest["version"])
    issued_at = latest.get("issued_at")
    try:
        verify_pointer(public, latest.get("latest_signature"), *args, issued_at)
        fresh = isinstance(issued_at, int) and now - issued_at < refresh_after_s
    except SignatureError:
        fresh = False
    if not fresh:
        updated.update(_pointer(signing_key, *args, issued_at=int(now)))
        log.info("gallery %s latest.json (v%s) re-dated", watchlist, latest["version"])
    if updated == latest:
        return False
    bucket.put_json(latest_key(watchlist), updated, cache_control="no-cache")
    return True


def _pointer(signing_key: Ed25519PrivateKey, watchlist: str, version: int, key: str,
             sha256: str, *, issued_at: int) -> dict[str, Any]:
    return {"issued_at": issued_at, "latest_signature": sign_pointer(
        signing_key, watchlist, version, key, sha256, issued_at)}


def write_version(bucket: Bucket, g: gal.Gallery, *,
                  signing_key: Ed25519PrivateKey | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """Write ``g`` as a new version and point ``latest.json`` at it; returns latest.json.

    With ``signing_key`` the manifest carries ``signature`` (:mod:`oneeye.signing`) over
    watchlist, version, key and sha256, which edges with a public key require, and
    ``latest.json`` the dated pointer (``issued_at`` = ``now``, ``latest_signature``).
    """
    npz = keys.gallery_version(gal.check_watchlist(g.watchlist), g.version, "npz")
    data = gal.to_bytes(g)
    manifest = gal.manifest_for(g, data, filename=f"{g.version}.npz")
    latest_extra: dict[str, Any] = {}
    if signing_key is not None:
        manifest["signature"] = sign_manifest(signing_key, g.watchlist, g.version,
                                              npz, manifest["sha256"])
        latest_extra = _pointer(signing_key, g.watchlist, g.version, npz, manifest["sha256"],
                                issued_at=int(time.time() if now is None else now))
    bucket.put(npz, data, content_type="application/octet-stream")
    bucket.put_json(keys.gallery_version(g.watchlist, g.version, "json"), manifest)
    latest = {**manifest, "key": npz, **latest_extra}
    # latest.json changes with every version: tell caches (and CloudFront) not to keep it.
    bucket.put_json(latest_key(g.watchlist), latest, cache_control="no-cache")
    return latest
