"""Ed25519 signatures on gallery manifests: the indexer signs, every edge verifies.

What is signed is the manifest's identity, as canonical JSON (sorted keys, no
spaces)::

    {"key": "gallery/missing/12.npz", "sha256": "<64 hex>", "version": 12,
     "watchlist": "missing"}

The sha256 already binds the file's bytes, so the signature covers the gallery
itself; a message or ``latest.json`` that names another version, key or hash
(a replay of an old version under a new number, a version of 2^53) fails.

The ``latest.json`` pointer carries a second signature, ``latest_signature``, over
the same identity plus its issue time (``issued_at``, integer Unix seconds) and
``"kind": "latest"``::

    {"issued_at": 1767225600, "key": "gallery/missing/12.npz", "kind": "latest",
     "sha256": "<64 hex>", "version": 12, "watchlist": "missing"}

A manifest signature says "the indexer made this version"; the pointer signature says
"on ``issued_at`` this was the newest". An edge believes a pointer only while it is
younger than its ``gallery_sync.max_latest_age_s``, so an old but genuine
``latest.json`` (replayed, or a bucket rolled back) cannot hold a fresh edge on an
old version; the indexer re-signs the pointer before it gets that old
(:func:`oneeye.cloud.dal.gallery_store.ensure_signed`).

Keys: the private key is a PKCS#8 PEM (the local stack writes it to
``var/local/gallery-signing.key`` with mode 0600; in AWS it is a Secrets
Manager secret, see cloud/README.md). The public key is 32 raw bytes in
base64 (44 characters), what the component configuration's
``gallery_sync.public_key`` holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from oneeye.errors import ConfigError, SignatureError


def manifest_bytes(watchlist: str, version: int, key: str, sha256: str) -> bytes:
    """The canonical bytes a gallery manifest signature covers."""
    return json.dumps({"watchlist": watchlist, "version": version, "key": key,
                       "sha256": sha256}, sort_keys=True, separators=(",", ":")).encode()


def sign_manifest(private: Ed25519PrivateKey, watchlist: str, version: int, key: str,
                  sha256: str) -> str:
    """Base64 Ed25519 signature (64 bytes → 88 characters) of :func:`manifest_bytes`."""
    return base64.b64encode(private.sign(manifest_bytes(watchlist, version, key,
                                                        sha256))).decode()


def verify_manifest(public_b64: str, signature: object, watchlist: str, version: int, key: str,
                    sha256: str) -> None:
    """Return if ``signature`` is the signer's over this manifest; else SignatureError."""
    _verify(public_b64, signature, manifest_bytes(watchlist, version, key, sha256), "manifest")


def pointer_bytes(watchlist: str, version: int, key: str, sha256: str, issued_at: int) -> bytes:
    """The canonical bytes a ``latest.json`` pointer signature covers (see the module doc)."""
    return json.dumps({"kind": "latest", "watchlist": watchlist, "version": version,
                       "key": key, "sha256": sha256, "issued_at": issued_at},
                      sort_keys=True, separators=(",", ":")).encode()


def sign_pointer(private: Ed25519PrivateKey, watchlist: str, version: int, key: str,
                 sha256: str, issued_at: int) -> str:
    """Base64 Ed25519 signature of :func:`pointer_bytes` (``issued_at``: Unix seconds)."""
    return base64.b64encode(private.sign(pointer_bytes(watchlist, version, key, sha256,
                                                       issued_at))).decode()


def verify_pointer(public_b64: str, signature: object, watchlist: str, version: int, key: str,
                   sha256: str, issued_at: object) -> None:
    """Return if ``signature`` is the signer's over this dated pointer; else SignatureError.

    Only the signature: how old ``issued_at`` may be is the caller's rule."""
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise SignatureError("latest.json has no integer issued_at (an undated pointer)")
    _verify(public_b64, signature, pointer_bytes(watchlist, version, key, sha256, issued_at),
            "latest.json pointer")


def _verify(public_b64: str, signature: object, message: bytes, what: str) -> None:
    if not isinstance(signature, str) or not signature:
        raise SignatureError(f"the {what} is not signed")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"the {what} signature is not base64") from exc
    try:
        public_key(public_b64).verify(raw, message)
    except InvalidSignature as exc:
        raise SignatureError(f"the {what} signature does not verify with the configured "
                             "public key") from exc


def public_key(public_b64: str) -> Ed25519PublicKey:
    """The Ed25519 public key from its base64 raw form; ConfigError if it is not one."""
    try:
        raw = base64.b64decode(public_b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("gallery_sync.public_key must be a base64 Ed25519 public key "
                          "(32 bytes, 44 characters)") from exc


def public_b64(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_private(pem: bytes | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS#8 PEM; ConfigError for anything else."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"gallery signing key is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("gallery signing key must be an Ed25519 key")
    return key


def ensure_key_file(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``, created (mode 0600, never group/world readable) if absent."""
    if path.is_file():
        return load_private(path.read_bytes())
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return private


def main(argv: list[str] | None = None) -> int:
    """``python -m oneeye.signing``: the key steps of ``./deploy.sh``.

    - ``ensure PATH``: the private key in PATH, created 0600 if absent; prints its public key;
    - ``generate``: a new private key (PKCS#8 PEM) on stdout, for a secret store;
    - ``public``: the public key (base64) of the PEM private key on stdin.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m oneeye.signing")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ensure").add_argument("path", type=Path)
    sub.add_parser("generate")
    sub.add_parser("public")
    args = parser.parse_args(argv)
    try:
        if args.command == "ensure":
            print(public_b64(ensure_key_file(args.path)))
        elif args.command == "generate":
            sys.stdout.write(Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode())
        else:
            print(public_b64(load_private(sys.stdin.buffer.read())))
    except (ConfigError, OSError) as exc:
        print(f"oneeye.signing: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
