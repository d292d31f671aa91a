"""Gallery files: ``NAME.npz`` (arrays, no pickle) and its manifest ``NAME.json``.

``save()`` writes both atomically; the manifest holds the npz's sha256 and
``load()`` refuses a file whose hash does not match, so a truncated download or a
tampered gallery fails loudly.

File format (``meta.format``): **1** (no ``format`` key) holds ``encodings``,
``person_ids`` and ``meta`` (watchlist, version, rule, created_at). **2** adds, per
encoding, ``sources`` (the template's source as JSON, :mod:`oneeye.gallery.templates`);
the negative templates ``neg_person_ids``/``neg_encodings``/``neg_sources``; and
``meta.learning`` (the :class:`~oneeye.gallery.templates.LearningRule`). Version-1 files
are read as every encoding an enrolment photo, no negatives, the default learning rule.
A reader of format 1 ignores what format 2 added (``np.load`` reads arrays by name and the
rule keeps its two keys), so an edge not yet upgraded still applies a new gallery — it
only does not see the negatives. The manifest adds ``format`` and ``negatives``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from oneeye.errors import GalleryError
from oneeye.fileio import read_bytes
from oneeye.gallery.index import Gallery
from oneeye.gallery.rule import DecisionRule
from oneeye.gallery.templates import LearningRule

MANIFEST_SCHEMA = "oneeye.gallery-manifest/1"
#: The newest gallery file format this code writes (see the module docstring).
FORMAT = 2


def manifest_path(npz_path: str | Path) -> Path:
    return Path(npz_path).with_suffix(".json")


def to_bytes(gallery: Gallery) -> bytes:
    """The gallery as ``.npz`` bytes (no pickled objects)."""
    meta = {
        "watchlist": gallery.watchlist,
        "version": gallery.version,
        "rule": {"max_distance": gallery.rule.max_distance,
                 "min_margin": gallery.rule.min_margin},
        "created_at": gallery.created_at,
        "format": FORMAT,
        "learning": gallery.learning.to_dict(),
    }
    buf = io.BytesIO()
    arrays: dict[str, Any] = {"encodings": gallery.encodings,
                              "person_ids": gallery.person_ids,
                              "meta": np.array(json.dumps(meta)), **gallery.template_arrays()}
    np.savez(buf, **arrays)
    return buf.getvalue()


def manifest_for(gallery: Gallery, data: bytes, *, filename: str) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "watchlist": gallery.watchlist,
        "version": gallery.version,
        "file": filename,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "identities": len(gallery.identities()),
        "encodings": len(gallery),
        "negatives": gallery.negatives(),
        "format": FORMAT,
        "rule": {"max_distance": gallery.rule.max_distance,
                 "min_margin": gallery.rule.min_margin},
        "created_at": gallery.created_at,
    }


def from_bytes(data: bytes, *, sha256: str | None) -> Gallery:
    """Parse ``.npz`` bytes; with ``sha256`` given, refuse anything else."""
    if sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise GalleryError(f"gallery sha256 mismatch: expected {sha256}, got {actual}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            fmt = int(meta.get("format", 1))
            if fmt > FORMAT:
                raise GalleryError(f"gallery file format {fmt} is newer than this OneEye "
                                   f"reads ({FORMAT}): upgrade it")
            arrays = {name: npz[name] for name in ("sources", "neg_person_ids",
                                                   "neg_encodings", "neg_sources")
                      if fmt >= 2 and name in npz.files}
            enc = npz["encodings"]
            ids = npz["person_ids"]
        rule = DecisionRule(**meta["rule"])
        return Gallery(watchlist=meta["watchlist"], version=int(meta["version"]), rule=rule,
                       person_ids=ids, encodings=enc, created_at=str(meta["created_at"]),
                       learning=LearningRule.from_dict(meta.get("learning")), **arrays)
    except GalleryError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise GalleryError(f"corrupt gallery file ({type(exc).__name__}: {exc})") from exc


def save(gallery: Gallery, path: str | Path) -> dict[str, Any]:
    """Write ``path`` (.npz) and its manifest atomically; returns the manifest."""
    path = Path(path)
    if path.suffix != ".npz":
        raise GalleryError(f"gallery files end in .npz: {path}")
    data = to_bytes(gallery)
    manifest = manifest_for(gallery, data, filename=path.name)
    _atomic_write(path, data)
    _atomic_write(manifest_path(path), json.dumps(manifest, indent=2).encode())
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    mpath = manifest_path(path)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError as exc:
        raise GalleryError(f"{path}: manifest {mpath.name} is missing") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise GalleryError(f"{mpath}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise GalleryError(f"{mpath}: not a {MANIFEST_SCHEMA} manifest")
    return manifest


def load(path: str | Path) -> Gallery:
    """Read a gallery and verify it against its manifest's sha256."""
    path = Path(path)
    manifest = read_manifest(path)
    data = read_bytes(path, "gallery", GalleryError)
    try:
        gallery = from_bytes(data, sha256=str(manifest["sha256"]))
    except GalleryError as exc:
        raise GalleryError(f"{path}: {exc}") from exc
    if gallery.watchlist != manifest["watchlist"] or gallery.version != manifest["version"]:
        raise GalleryError(f"{path}: manifest does not describe this gallery")
    return gallery


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
