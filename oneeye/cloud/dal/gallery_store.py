"""Gallery versions in S3: ``gallery/{watchlist}/{version}.npz`` + ``.json`` + ``latest.json``.

``latest.json`` is the manifest of the newest version plus ``"key"`` (the S3 key
of its ``.npz``); edges read it to catch up after being offline, and the
indexer reads it to build the next version. The npz and its manifest are
written before ``latest.json`` moves, so a reader following ``latest.json``
never meets a missing or half-written version; the sha256 in the manifest
catches anything else (a tampered or truncated object).
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from oneeye import gallery as gal
from oneeye.cloud.dal import keys
from oneeye.cloud.dal.store import Bucket
from oneeye.errors import GalleryError, SignatureError
from oneeye.signing import public_b64, sign_manifest, verify_manifest

log = logging.getLogger(__name__)


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


def ensure_signed(bucket: Bucket, watchlist: str, signing_key: Ed25519PrivateKey) -> bool:
    """Sign ``latest.json`` (and its version's manifest) if its signature is not this key's.

    For a stack whose galleries predate signing, or whose key was replaced: edges that
    verify would otherwise refuse the current version until the next upload. Returns
    whether anything was re-signed.
    """
    latest = bucket.get_json(latest_key(watchlist))
    if not isinstance(latest, dict) or latest.get("schema") != gal.MANIFEST_SCHEMA:
        return False
    args = (watchlist, int(latest["version"]), str(latest["key"]), str(latest["sha256"]))
    try:
        verify_manifest(public_b64(signing_key), latest.get("signature"), *args)
        return False
    except SignatureError:
        pass
    signature = sign_manifest(signing_key, *args)
    manifest_key = str(latest["key"]).removesuffix(".npz") + ".json"
    manifest = bucket.get_json(manifest_key)
    if isinstance(manifest, dict):
        bucket.put_json(manifest_key, {**manifest, "signature": signature})
    bucket.put_json(latest_key(watchlist), {**latest, "signature": signature},
                    cache_control="no-cache")
    log.info("gallery %s v%s re-signed with the current key", watchlist, latest["version"])
    return True


def write_version(bucket: Bucket, g: gal.Gallery, *,
                  signing_key: Ed25519PrivateKey | None = None) -> dict[str, Any]:
    """Write ``g`` as a new version and point ``latest.json`` at it; returns latest.json.

    With ``signing_key`` the manifest carries ``signature`` (:mod:`oneeye.signing`) over
    watchlist, version, key and sha256, which edges with a public key require.
    """
    npz = keys.gallery_version(gal.check_watchlist(g.watchlist), g.version, "npz")
    data = gal.to_bytes(g)
    manifest = gal.manifest_for(g, data, filename=f"{g.version}.npz")
    if signing_key is not None:
        manifest["signature"] = sign_manifest(signing_key, g.watchlist, g.version,
                                              npz, manifest["sha256"])
    bucket.put(npz, data, content_type="application/octet-stream")
    bucket.put_json(keys.gallery_version(g.watchlist, g.version, "json"), manifest)
    latest = {**manifest, "key": npz}
    # latest.json changes with every version: tell caches (and CloudFront) not to keep it.
    bucket.put_json(latest_key(g.watchlist), latest, cache_control="no-cache")
    return latest
