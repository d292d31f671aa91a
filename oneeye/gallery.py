"""Galleries: who we look for, how we decide, and how a gallery travels.

A :class:`Gallery` is one watchlist (``customers`` or ``missing``) at one version:
float32 encodings grouped by ``person_id`` plus the :class:`DecisionRule` for that
watchlist. It holds no names or photos — only ids and encodings (docs/architecture.md §3).

Deciding. Plain face_recognition takes the closest encoding under 0.6. That
announces strangers as whoever they happen to resemble. OneEye takes, per
identity, the distance to its closest enrolled encoding; the best identity is
accepted only if that distance is under ``max_distance`` *and* the runner-up
identity is at least ``min_margin`` further away. The margin catches the
"looks a bit like two people" stranger that a threshold alone lets through.

Distances are computed as ``sqrt(|q|² − 2 q·e + |e|²)`` in float32 with one
matrix product per batch (dlib encodings are not unit length, so a plain dot
product would be wrong); this reproduces ``face_recognition.face_distance``
to ~1e-6 at a fraction of its time and memory.

Files. ``save()`` writes ``NAME.npz`` (arrays, no pickle) and a manifest
``NAME.json`` holding the npz's sha256; ``load()`` refuses a file whose hash does
not match, so a truncated download or a tampered gallery fails loudly.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import EnrolmentRejected, GalleryError, ImageError, OneEyeError

log = logging.getLogger(__name__)

Watchlist = Literal["customers", "missing"]
WATCHLISTS: tuple[str, ...] = ("customers", "missing")
MANIFEST_SCHEMA = "oneeye.gallery-manifest/1"
ENCODING_DIM = 128
#: Margins are capped here; a one-identity gallery (no runner-up) reports this value.
MAX_MARGIN = 1.0
_PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def check_person_id(person_id: str) -> str:
    """Person ids are opaque, path- and topic-safe tokens (no spaces, slashes or '+#')."""
    if not isinstance(person_id, str) or not _PERSON_ID.match(person_id):
        raise GalleryError(f"invalid person_id {person_id!r}: use letters, digits and _.@:-")
    return person_id


def check_watchlist(name: str) -> str:
    if name not in WATCHLISTS:
        raise GalleryError(f"unknown watchlist {name!r}: expected one of {', '.join(WATCHLISTS)}")
    return name


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class DecisionRule:
    """Accept the nearest identity when ``distance <= max_distance`` and
    ``margin >= min_margin`` (margin = runner-up identity's distance − best)."""

    max_distance: float = 0.525
    min_margin: float = 0.08

    def __post_init__(self) -> None:
        if not 0.0 < self.max_distance <= 1.5:
            raise GalleryError(f"max_distance must be in (0, 1.5], got {self.max_distance}")
        if not 0.0 <= self.min_margin <= MAX_MARGIN:
            raise GalleryError(f"min_margin must be in [0, {MAX_MARGIN}], got {self.min_margin}")

    def accepts(self, distance: float, margin: float) -> bool:
        return distance <= self.max_distance and margin >= self.min_margin


#: The per-watchlist defaults, chosen on lfw_dev by the rule documented in bench/accuracy.py
#: (highest TAR with false matches ≤ 0.5 % on the dev trials; 5-fold cross-validated over
#: identities: TAR 87 %, FMR 0.5 %). Plain face_recognition's 0.6 with no margin announces
#: 43 % of the dev set's strangers. Both watchlists share it until one has its own data.
DEFAULT_RULES: dict[str, DecisionRule] = {
    "customers": DecisionRule(),
    "missing": DecisionRule(),
}


@dataclass(frozen=True)
class Candidate:
    """The nearest identity for one query, accepted or not."""

    person_id: str | None
    watchlist: str
    distance: float
    margin: float


@dataclass(frozen=True)
class Match:
    """An accepted identification."""

    person_id: str
    watchlist: str
    distance: float
    margin: float


# --------------------------------------------------------------------------- gallery


@dataclass(frozen=True)
class Gallery:
    """One watchlist's encodings at one version. Immutable: edits return a new gallery."""

    watchlist: str
    version: int
    rule: DecisionRule
    person_ids: NDArray[np.str_]
    encodings: NDArray[np.float32]
    created_at: str = field(default_factory=lambda: _now())
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_watchlist(self.watchlist)
        if self.version < 0:
            raise GalleryError("version must be >= 0")
        enc = np.ascontiguousarray(self.encodings, dtype=np.float32).reshape(-1, ENCODING_DIM)
        ids = np.asarray(self.person_ids, dtype=np.str_).reshape(-1)
        if len(ids) != len(enc):
            raise GalleryError(f"{len(ids)} person ids for {len(enc)} encodings")
        if not np.isfinite(enc).all():
            raise GalleryError("gallery contains non-finite encodings")
        # Group entries by identity so per-identity minima are one reduceat.
        order = np.argsort(ids, kind="stable")
        enc, ids = enc[order], ids[order]
        object.__setattr__(self, "encodings", enc)
        object.__setattr__(self, "person_ids", ids)
        object.__setattr__(self, "_index", _Index.build(ids, enc))

    # -- construction ---------------------------------------------------------------

    @classmethod
    def empty(
        cls, watchlist: str, *, rule: DecisionRule | None = None, version: int = 0
    ) -> Gallery:
        check_watchlist(watchlist)
        return cls(
            watchlist=watchlist,
            version=version,
            rule=rule or DEFAULT_RULES[watchlist],
            person_ids=np.empty(0, dtype=np.str_),
            encodings=np.empty((0, ENCODING_DIM), dtype=np.float32),
        )

    @classmethod
    def from_entries(
        cls,
        watchlist: str,
        entries: Iterable[tuple[str, NDArray[Any]]],
        *,
        rule: DecisionRule | None = None,
        version: int = 1,
    ) -> Gallery:
        check_watchlist(watchlist)
        pairs = [(check_person_id(p), np.asarray(e, dtype=np.float32)) for p, e in entries]
        if not pairs:
            return cls.empty(watchlist, rule=rule, version=version)
        return cls(
            watchlist=watchlist,
            version=version,
            rule=rule or DEFAULT_RULES[watchlist],
            person_ids=np.array([p for p, _ in pairs], dtype=np.str_),
            encodings=np.stack([e.reshape(ENCODING_DIM) for _, e in pairs]),
        )

    def with_person(self, person_id: str, encodings: Iterable[NDArray[Any]]) -> Gallery:
        """A new version with ``person_id``'s encodings replaced by ``encodings``."""
        check_person_id(person_id)
        new = [np.asarray(e, dtype=np.float32).reshape(ENCODING_DIM) for e in encodings]
        keep = self.person_ids != person_id
        ids = np.concatenate([self.person_ids[keep], np.array([person_id] * len(new), np.str_)])
        encs = np.concatenate([self.encodings[keep], np.array(new, np.float32).reshape(-1, 128)])
        return replace(self, version=self.version + 1, person_ids=ids, encodings=encs,
                       created_at=_now())

    def without_person(self, person_id: str) -> Gallery:
        """A new version without ``person_id`` (unchanged content if absent, still bumped)."""
        keep = self.person_ids != person_id
        return replace(self, version=self.version + 1, person_ids=self.person_ids[keep],
                       encodings=self.encodings[keep], created_at=_now())

    # -- inspection -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.encodings)

    def identities(self) -> dict[str, int]:
        """person_id → number of enrolled encodings."""
        return dict(zip(self._index.ids.tolist(), np.diff(
            np.append(self._index.starts, len(self.encodings))).tolist(), strict=True))

    def __contains__(self, person_id: object) -> bool:
        return bool(np.any(self._index.ids == person_id))

    # -- matching -------------------------------------------------------------------

    def nearest(self, queries: NDArray[Any]) -> list[Candidate]:
        """Nearest identity and margin for each query row (no decision applied)."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        best_i, best_d, margin = self._index.nearest(q)
        ids = self._index.ids
        return [
            Candidate(
                person_id=str(ids[i]) if i >= 0 else None,
                watchlist=self.watchlist,
                distance=float(d),
                margin=float(m),
            )
            for i, d, m in zip(best_i.tolist(), best_d.tolist(), margin.tolist(), strict=True)
        ]

    def match(self, encoding: NDArray[Any]) -> Match | None:
        """The accepted identity for one encoding, or None for an unknown face."""
        return self.decide(self.nearest(encoding))[0]

    def decide(self, candidates: list[Candidate]) -> list[Match | None]:
        out: list[Match | None] = []
        for c in candidates:
            if c.person_id is not None and self.rule.accepts(c.distance, c.margin):
                out.append(Match(c.person_id, c.watchlist, c.distance, c.margin))
            else:
                out.append(None)
        return out

    def distances(self, queries: NDArray[Any]) -> NDArray[np.float32]:
        """Distances from each query to every stored encoding, shape ``(k, len(self))``."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        out: NDArray[np.float32] = np.sqrt(self._index.sq_distances(q))
        return out


@dataclass(frozen=True)
class _Index:
    ids: NDArray[np.str_]           # unique identities, sorted
    starts: NDArray[np.intp]        # first entry of each identity
    enc: NDArray[np.float32]
    sq_norms: NDArray[np.float32]

    @classmethod
    def build(cls, ids: NDArray[np.str_], enc: NDArray[np.float32]) -> _Index:
        if len(ids):
            change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
            starts = np.concatenate([[0], change]).astype(np.intp)
        else:
            starts = np.empty(0, dtype=np.intp)
        return cls(ids=ids[starts] if len(ids) else ids, starts=starts, enc=enc,
                   sq_norms=np.einsum("ij,ij->i", enc, enc))

    def sq_distances(self, q: NDArray[np.float32]) -> NDArray[np.float32]:
        qn = np.einsum("ij,ij->i", q, q)
        d2 = qn[:, None] - 2.0 * (q @ self.enc.T) + self.sq_norms[None, :]
        np.maximum(d2, 0.0, out=d2)
        return np.asarray(d2, dtype=np.float32)

    def nearest(
        self, q: NDArray[np.float32]
    ) -> tuple[NDArray[np.intp], NDArray[np.float32], NDArray[np.float32]]:
        k = len(q)
        if len(self.ids) == 0:
            return (np.full(k, -1, np.intp), np.full(k, np.inf, np.float32),
                    np.full(k, MAX_MARGIN, np.float32))
        per_id = np.minimum.reduceat(self.sq_distances(q), self.starts, axis=1)  # (k, P)
        best = np.argmin(per_id, axis=1)
        best_d = np.sqrt(per_id[np.arange(k), best])
        if per_id.shape[1] > 1:
            second = np.sqrt(np.partition(per_id, 1, axis=1)[:, 1])
            margin = np.minimum(second - best_d, MAX_MARGIN)
        else:
            margin = np.full(k, MAX_MARGIN, np.float32)
        return best.astype(np.intp), best_d.astype(np.float32), margin.astype(np.float32)


# --------------------------------------------------------------------------- several watchlists


class Matcher:
    """Matches against several watchlists at once, each with its own rule.

    When a face is accepted on more than one watchlist the closest wins
    (a missing person who is also a customer is reported once, as the closer).
    """

    def __init__(self, galleries: Iterable[Gallery] = ()) -> None:
        self._galleries: dict[str, Gallery] = {}
        for g in galleries:
            if g.watchlist in self._galleries:
                raise GalleryError(f"two galleries for watchlist {g.watchlist!r}")
            self._galleries[g.watchlist] = g

    @property
    def galleries(self) -> Mapping[str, Gallery]:
        return dict(self._galleries)

    def versions(self) -> dict[str, int]:
        return {w: g.version for w, g in self._galleries.items()}

    def replaced(self, gallery: Gallery) -> Matcher:
        return Matcher([*(g for w, g in self._galleries.items() if w != gallery.watchlist),
                        gallery])

    def __len__(self) -> int:
        return sum(len(g) for g in self._galleries.values())

    def identify(self, queries: NDArray[Any]) -> list[tuple[Match | None, Candidate | None]]:
        """Per query: the accepted match (or None) and the overall nearest candidate."""
        q = np.asarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        results: list[tuple[Match | None, Candidate | None]] = [(None, None)] * len(q)
        for g in self._galleries.values():
            if not len(g):
                continue
            cands = g.nearest(q)
            for i, (c, m) in enumerate(zip(cands, g.decide(cands), strict=True)):
                best_m, best_c = results[i]
                if best_c is None or c.distance < best_c.distance:
                    best_c = c
                if m is not None and (best_m is None or m.distance < best_m.distance):
                    best_m = m
                results[i] = (best_m, best_c)
        return results

    def match(self, encoding: NDArray[Any]) -> Match | None:
        return self.identify(encoding)[0][0]


class GalleryHolder:
    """The edge's current :class:`Matcher`, swappable atomically while frames flow.

    Readers call :meth:`current` once per frame and keep that snapshot; a swap
    never blocks or tears a frame in progress.
    """

    def __init__(self, matcher: Matcher | None = None) -> None:
        self._matcher = matcher or Matcher()
        self._lock = threading.Lock()
        self._listeners: list[Any] = []

    def current(self) -> Matcher:
        return self._matcher

    def swap(self, gallery: Gallery) -> None:
        with self._lock:
            old = self._matcher.galleries.get(gallery.watchlist)
            if old is not None and gallery.version < old.version:
                raise GalleryError(
                    f"refusing to replace {gallery.watchlist} v{old.version} with older"
                    f" v{gallery.version}"
                )
            self._matcher = self._matcher.replaced(gallery)
        log.info("gallery %s v%d in use (%d encodings)", gallery.watchlist, gallery.version,
                 len(gallery))


# --------------------------------------------------------------------------- files


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
    }
    buf = io.BytesIO()
    np.savez(buf, encodings=gallery.encodings, person_ids=gallery.person_ids,
             meta=np.array(json.dumps(meta)))
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
            enc = npz["encodings"]
            ids = npz["person_ids"]
        rule = DecisionRule(**meta["rule"])
        return Gallery(watchlist=meta["watchlist"], version=int(meta["version"]), rule=rule,
                       person_ids=ids, encodings=enc, created_at=str(meta["created_at"]))
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
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read ({exc.strerror or exc})") from exc
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- enrolment


@dataclass(frozen=True)
class EnrolmentPolicy:
    """What makes a photo fit to enrol. ``min_face_px`` is the box's shorter side;
    ``min_blur`` the Laplacian variance of the face resized to 96x96.

    Calibrated on lfw_dev (``bench/accuracy.py`` prints the figures): HOG boxes the
    subjects' faces at 43–90 px and cannot find faces under ~40 px at upsample 1,
    so 40 px rejects no real subject. Real faces score ≥ 23 for sharpness (1st
    percentile 61); the gallery faces blurred with a Gaussian of σ = 2 px score 13.5
    (median) and at σ = 3 px 7.5 — so 20 keeps every real photo and refuses most
    visibly blurred ones.
    """

    min_face_px: int = 40
    min_blur: float = 20.0
    #: 10 jitters (≈ 0.8 s per photo, enrolment only) raise the cross-validated TAR at
    #: FMR ≤ 1 % from 81 % to 87 % on lfw_dev (3 jitters: 81 %; 5: 83 % but CV FMR 1.1 %);
    #: the large landmark model adds nothing. Queries stay at 1 jitter, small landmarks.
    jitters: int = 10
    upsample: int = 1
    landmark_model: Literal["small", "large"] = "small"


@dataclass(frozen=True)
class Rejection:
    source: str
    person_id: str | None
    reason: str
    message: str


@dataclass
class EnrolmentReport:
    accepted: list[tuple[str, str]] = field(default_factory=list)   # (person_id, source)
    rejected: list[Rejection] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": [{"person_id": p, "source": s} for p, s in self.accepted],
            "rejected": [r.__dict__ for r in self.rejected],
        }


def encode_enrolment_photo(
    source: bytes | str | Path, policy: EnrolmentPolicy | None = None
) -> NDArray[np.float32]:
    """The one encoding of a photo fit for enrolment, or :class:`EnrolmentRejected`.

    Faces smaller than ``min_face_px`` are ignored when counting (a tiny face in
    the background does not make a portrait a group photo); if only tiny faces
    are found the reason is ``face_too_small``.
    """
    from oneeye import faces

    policy = policy or EnrolmentPolicy()
    try:
        image = faces.load_image(source)
    except ImageError as exc:
        raise EnrolmentRejected("unreadable", str(exc)) from exc
    boxes = faces.detect(image, upsample=policy.upsample)
    if not boxes:
        raise EnrolmentRejected("no_face", "no face found — use a photo where the face is "
                                           "clearly visible")
    quals = [faces.quality(image, b) for b in boxes]
    usable = [(b, q) for b, q in zip(boxes, quals, strict=True) if q.size_px >= policy.min_face_px]
    if not usable:
        biggest = max(q.size_px for q in quals)
        raise EnrolmentRejected("face_too_small", f"face too small ({biggest} px; need at least "
                                                  f"{policy.min_face_px} px) — use a closer photo")
    if len(usable) > 1:
        raise EnrolmentRejected("several_faces", f"{len(usable)} faces found — crop the photo "
                                                 "to one person")
    box, qual = usable[0]
    if qual.blur < policy.min_blur:
        raise EnrolmentRejected("too_blurred", f"face too blurred (sharpness {qual.blur:.0f} < "
                                               f"{policy.min_blur:.0f}) — use a sharper photo")
    return faces.encode(image, [box], jitters=policy.jitters, model=policy.landmark_model)[0]


def iter_photo_dir(src: str | Path) -> Iterator[tuple[str, Path]]:
    """``SRC/<person_id>/*.jpg|png`` → (person_id, path), sorted for reproducible builds."""
    root = Path(src)
    if not root.is_dir():
        raise OneEyeError(f"{root}: not a directory")
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for photo in sorted(person_dir.iterdir()):
            if photo.is_file() and photo.suffix.lower() in IMAGE_SUFFIXES:
                yield person_dir.name, photo


def enrol(
    photos: Iterable[tuple[str, str | Path]],
    *,
    watchlist: str,
    policy: EnrolmentPolicy | None = None,
    rule: DecisionRule | None = None,
    version: int = 1,
    progress: Any = None,
) -> tuple[Gallery, EnrolmentReport]:
    """Build a gallery from (person_id, photo) pairs; bad photos are reported, never fatal."""
    check_watchlist(watchlist)
    report = EnrolmentReport()
    entries: list[tuple[str, NDArray[np.float32]]] = []
    for person_id, photo in photos:
        src = str(photo)
        try:
            check_person_id(person_id)
            entries.append((person_id, encode_enrolment_photo(photo, policy)))
            report.accepted.append((person_id, src))
        except EnrolmentRejected as exc:
            report.rejected.append(Rejection(src, person_id, exc.reason, str(exc)))
        except GalleryError as exc:
            report.rejected.append(Rejection(src, person_id, "invalid_person_id", str(exc)))
        if progress is not None:
            progress(person_id, src)
    gallery = Gallery.from_entries(watchlist, entries, rule=rule, version=version)
    return gallery, report
