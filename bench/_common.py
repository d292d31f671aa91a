"""Shared helpers for the benches: the lfw_dev layout and a cache of face encodings.

Encoding ~570 photos takes about a minute per variant on this CPU (more with
jitters), so detections, quality figures and encodings are cached in a JSON file
keyed by each file's sha256 and the encoding variant. A changed photo or a new
variant is encoded again; everything else is read back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye.types import BBox

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "lfw_dev"
CACHE_DIR = Path(os.environ.get("ONEEYE_BENCH_CACHE",
                                Path(tempfile.gettempdir()) / "oneeye-bench-cache"))


@dataclass(frozen=True)
class Variant:
    """How faces are encoded: landmark model and jitters (both dlib/face_recognition knobs)."""

    landmark_model: str = "small"
    jitters: int = 1
    upsample: int = 1

    @property
    def key(self) -> str:
        # "v2": jittered encodings made before oneeye.faces fixed their seed are not reused.
        v2 = "-v2" if self.jitters > 1 else ""
        return f"{self.landmark_model}-j{self.jitters}-u{self.upsample}{v2}"


@dataclass(frozen=True)
class Photo:
    split: str          # gallery | probe | impostor
    path: Path
    identity: str


@dataclass
class Faces:
    """What one photo yields: every detected box with its quality, and the encoding of
    each encoded face (``centre`` is the face nearest the image centre, LFW's convention)."""

    boxes: list[BBox]
    quality: list[tuple[int, float]]           # (size_px, blur) per box
    centre: int                                # index into boxes, -1 without faces
    encodings: dict[int, NDArray[np.float32]]  # box index -> encoding

    def centre_encoding(self) -> NDArray[np.float32] | None:
        return self.encodings.get(self.centre)


def read_dataset(root: Path) -> list[Photo]:
    labels = root / "labels.csv"
    if not labels.is_file():
        raise SystemExit(f"{root}: no labels.csv (expected gallery/, probes/, impostors/)")
    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [Photo(r["split"], root / r["path"], r["identity"]) for r in rows]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _encode_one(args: tuple[str, Variant, bool]) -> dict[str, Any]:
    """Detect and encode one photo (runs in a worker process)."""
    from oneeye import faces

    path, variant, encode_all = args
    image = faces.load_image(path)
    boxes = faces.detect(image, upsample=variant.upsample)
    quals = [faces.quality(image, b) for b in boxes]
    h, w = image.shape[:2]
    centre = -1
    if boxes:
        centre = int(np.argmin([((top + bot) / 2 - h / 2) ** 2 + ((lft + rgt) / 2 - w / 2) ** 2
                                for top, rgt, bot, lft in boxes]))
    todo = list(range(len(boxes))) if encode_all else ([centre] if centre >= 0 else [])
    encs = faces.encode(image, [boxes[i] for i in todo], jitters=variant.jitters,
                        model=variant.landmark_model)  # type: ignore[arg-type]
    return {
        "boxes": [list(b) for b in boxes],
        "quality": [[q.size_px, q.blur] for q in quals],
        "centre": centre,
        "encodings": {str(i): e.tolist() for i, e in zip(todo, encs, strict=True)},
    }


def _from_json(d: dict[str, Any]) -> Faces:
    return Faces(
        boxes=[(int(a), int(b), int(c), int(e)) for a, b, c, e in d["boxes"]],
        quality=[(int(s), float(bl)) for s, bl in d["quality"]],
        centre=int(d["centre"]),
        encodings={int(k): np.asarray(v, dtype=np.float32) for k, v in d["encodings"].items()},
    )


def _cached(cache_file: Path, keys: dict[Path, str], jobs: dict[Path, Any],
            work: Any, *, workers: int, chunksize: int, label: str, verbose: bool,
            ) -> dict[str, Any]:
    """Run ``work`` over the jobs whose key is not yet in ``cache_file`` (in a
    process pool), store the results atomically and return the whole cache."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    if cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    missing = [p for p in jobs if keys[p] not in cache]
    if missing:
        t0 = time.perf_counter()
        if verbose:
            print(f"  {label} {len(missing)} photos (cached in {cache_file}) …", flush=True)
        todo = [jobs[p] for p in missing]
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(work, todo, chunksize=chunksize))
        else:
            results = [work(j) for j in todo]
        for p, r in zip(missing, results, strict=True):
            cache[keys[p]] = r
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
        if verbose:
            print(f"  … done in {time.perf_counter() - t0:.0f} s", flush=True)
    return cache


def encode_photos(photos: Iterable[Photo], variant: Variant, *, workers: int = 2,
                  verbose: bool = True) -> dict[Path, Faces]:
    """Faces of each photo under ``variant``, from the cache where possible.

    Gallery photos get every face encoded (enrolment must judge background faces);
    probes and impostors only the centre face.
    """
    photos = list(photos)
    keys = {p.path: _sha256(p.path) + (":all" if p.split == "gallery" else ":centre")
            for p in photos}
    jobs = {p.path: (str(p.path), variant, p.split == "gallery") for p in photos}
    cache = _cached(CACHE_DIR / f"encodings-{variant.key}.json", keys, jobs, _encode_one,
                    workers=workers, chunksize=4, label=f"encoding ({variant.key})",
                    verbose=verbose)
    return {p.path: _from_json(cache[keys[p.path]]) for p in photos}


# Measured on lfw_dev (small landmarks, 1 jitter): the mean encoding has norm ≈ 1.30,
# identity centres sit ≈ 0.48 from it and one photo ≈ 0.32 from its identity's centre;
# encodings' norms span 1.22–1.68 (median 1.42). Isotropic noise with these sizes gives
# same-person distances ≈ 0.45 and different-person ≈ 0.8, like the real encodings.
MEAN_NORM, IDENTITY_SPREAD, PHOTO_NOISE = 1.30, 0.48, 0.32


def synthetic_gallery(n_entries: int, per_identity: int = 4, *, seed: int = 0,
                      ) -> tuple[NDArray[np.str_], NDArray[np.float32], NDArray[np.float32]]:
    """``n_entries`` dlib-like encodings (identities + noise): ids, encodings and the
    identity centres (to draw fresh photos of enrolled people as queries)."""
    rng = np.random.default_rng(seed)
    n_ids = max(1, n_entries // per_identity)
    mean = rng.normal(size=128)
    mean *= MEAN_NORM / np.linalg.norm(mean)
    centres = (mean + rng.normal(scale=IDENTITY_SPREAD / np.sqrt(128), size=(n_ids, 128))
               ).astype(np.float32)
    owner = np.arange(n_entries) % n_ids
    enc = centres[owner]
    enc += rng.normal(scale=PHOTO_NOISE / np.sqrt(128), size=enc.shape).astype(np.float32)
    ids = np.char.add("P", owner.astype(str))
    return ids, enc, centres


def synthetic_queries(centres: NDArray[np.float32], n: int, *, seed: int = 1,
                      ) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Fresh photos of ``n`` enrolled identities: (identity index, encoding)."""
    rng = np.random.default_rng(seed)
    who = rng.integers(0, len(centres), size=n)
    q = centres[who] + rng.normal(scale=PHOTO_NOISE / np.sqrt(128),
                                  size=(n, 128)).astype(np.float32)
    return who.astype(np.intp), q.astype(np.float32)


def _enrol_one(args: tuple[str, Any]) -> dict[str, Any]:
    from oneeye.errors import EnrolmentRejected
    from oneeye.gallery import encode_enrolment_photo

    path, policy = args
    try:
        return {"encoding": encode_enrolment_photo(path, policy).tolist()}
    except EnrolmentRejected as exc:
        return {"reason": exc.reason, "message": str(exc)}


def enrol_photos(photos: Iterable[Photo], policy: Any, *, workers: int = 2,
                 verbose: bool = True) -> dict[Path, NDArray[np.float32] | str]:
    """OneEye's real enrolment (``encode_enrolment_photo``) of each photo, cached:
    path → encoding, or the rejection reason."""
    photos = list(photos)
    # v2: jittered encodings no longer depend on what a worker encoded before (see
    # oneeye.faces.encode), so results cached by the old code are not reused.
    tag = hashlib.sha256(f"v2 {policy!r}".encode()).hexdigest()[:12]
    keys = {p.path: _sha256(p.path) for p in photos}
    jobs = {p.path: (str(p.path), policy) for p in photos}
    cache = _cached(CACHE_DIR / f"enrol-{tag}.json", keys, jobs, _enrol_one,
                    workers=workers, chunksize=2, label=f"enrolling with {policy}",
                    verbose=verbose)
    out: dict[Path, NDArray[np.float32] | str] = {}
    for p in photos:
        r = cache[keys[p.path]]
        out[p.path] = (np.asarray(r["encoding"], np.float32) if "encoding" in r
                       else str(r["reason"]))
    return out
