"""Approximate nearest-neighbour search for large galleries (bench only; needs ``faiss-cpu``).

Why this lives in bench/ and not in ``oneeye``: no runtime path needs it. A device's
gallery is one branch's customers plus the open missing-person cases (thousands, not
millions); the exact float32 matcher answers that in well under a millisecond, and still
in ~45 ms at 1M (``bench/matcher.py``). faiss is not in the edge's requirements, and an
index that misses the true runner-up reports a larger margin than the exact rule would,
so a device would decide differently from the reference. ``bench/matcher.py`` keeps it
as the measured option for a gallery that one day outgrows exact search.

The exact matcher in :mod:`oneeye.gallery` is the reference and the right choice
up to a few hundred thousand encodings. Beyond that an inverted-file index
(faiss ``IndexIVFScalarQuantizer``, 8-bit codes: a quarter of the float32
memory, 1000 lists at 1M entries, 48 visited) proposes candidates and the
re-ranking settles them in ~1.4 ms per query at 1M with recall@1 ≈ 0.995 on
realistic encodings (``bench/matcher.py``). faiss's OpenMP threads only pay off
for large batches; on a small shared CPU run with ``OMP_NUM_THREADS=1``.

ANN only *proposes*. Every identity that owns one of the ``candidates`` nearest
entries is re-ranked with exact float32 distances over all of its encodings,
and the gallery's own :class:`~oneeye.gallery.DecisionRule` decides — so an
accepted match carries exactly the distance and margin the exact matcher would
report whenever the right identities were proposed. When only one identity was
proposed, the furthest proposed entry's distance stands in for the runner-up's.
If the index misses the true runner-up the margin can come out larger than the
exact one; ``bench/matcher.py`` and ``tests/test_ann.py`` measure how rarely.

faiss is imported lazily (a large native library, and optional): importing this module
never fails; building an index without faiss raises
:class:`AnnUnavailable` saying how to install it.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import GalleryError, Misconfigured
from oneeye.gallery import DecisionRule, Gallery
from oneeye.gallery.rule import ENCODING_DIM, MAX_MARGIN, Candidate, Match

log = logging.getLogger(__name__)

IndexKind = Literal["ivf", "hnsw"]
INSTALL_HINT = "pip install 'oneeye[ann]' (or: pip install faiss-cpu)"


class AnnUnavailable(Misconfigured):
    """faiss is not installed, so no ANN index can be built (fix the install, not the input)."""


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise AnnUnavailable(f"the ANN index needs faiss, which is not installed: "
                             f"{INSTALL_HINT}") from exc
    return faiss


def faiss_available() -> bool:
    try:
        _faiss()
    except AnnUnavailable:
        return False
    return True


class AnnGallery:
    """A :class:`Gallery` with an ANN index in front; same ``nearest``/``match``/``decide``.

    ``candidates`` entries are proposed per query; ``nprobe`` (IVF lists visited) or
    ``ef_search`` (HNSW) trade speed for recall — the defaults reach recall@1 ≥ 0.99
    on realistic (clustered) encodings at 1M entries (see ``bench/matcher.py``).
    """

    def __init__(
        self,
        gallery: Gallery,
        *,
        kind: IndexKind = "ivf",
        candidates: int = 32,
        nprobe: int = 48,
        ef_search: int = 96,
        seed: int = 0,
    ) -> None:
        if kind not in ("ivf", "hnsw"):
            raise GalleryError(f"unknown ANN index kind {kind!r}: expected 'ivf' or 'hnsw'")
        if candidates < 1:
            raise GalleryError("candidates must be >= 1")
        faiss = _faiss()
        self.gallery = gallery
        self.kind = kind
        self.candidates = candidates
        enc = gallery.encodings
        self._enc = enc
        self._sq_norms = np.einsum("ij,ij->i", enc, enc)
        ids, starts = np.unique(gallery.person_ids, return_index=True)
        # Gallery keeps entries grouped by identity, so each identity is one slice.
        self._ids = ids
        self._starts = starts.astype(np.intp)
        self._ends = np.append(self._starts[1:], len(enc)).astype(np.intp)
        self._owner = np.repeat(np.arange(len(ids)), self._ends - self._starts)
        self._index = self._build(faiss, kind, enc, nprobe=nprobe, ef_search=ef_search,
                                  seed=seed)

    # -- construction ---------------------------------------------------------------

    @staticmethod
    def _build(faiss: Any, kind: IndexKind, enc: NDArray[np.float32], *, nprobe: int,
               ef_search: int, seed: int) -> Any:
        n = len(enc)
        if kind == "hnsw":
            index = faiss.IndexHNSWSQ(ENCODING_DIM, faiss.ScalarQuantizer.QT_8bit, 32)
            index.hnsw.efConstruction = 64
            if n:
                index.train(enc)
                index.add(enc)
            index.hnsw.efSearch = max(ef_search, 1)
            return index
        # sqrt(n) lists: 1M entries → 1000 lists of ~1000, so nprobe lists cost well under a
        # millisecond; k-means on 64 points per list trains in seconds on two cores.
        nlist = max(1, min(int(math.sqrt(max(n, 1))), n // 39 or 1))
        quantizer = faiss.IndexFlatL2(ENCODING_DIM)
        index = faiss.IndexIVFScalarQuantizer(quantizer, ENCODING_DIM, nlist,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
        index.cp.seed = seed
        index.cp.niter = 15
        if n:
            rng = np.random.default_rng(seed)
            n_train = min(n, 64 * nlist)
            sample = enc if n_train == n else enc[rng.choice(n, n_train, replace=False)]
            index.train(sample)
            index.add(enc)
        index.nprobe = min(max(nprobe, 1), nlist)
        return index

    # -- gallery shape --------------------------------------------------------------

    @property
    def watchlist(self) -> str:
        return self.gallery.watchlist

    @property
    def version(self) -> int:
        return self.gallery.version

    @property
    def rule(self) -> DecisionRule:
        return self.gallery.rule

    def __len__(self) -> int:
        return len(self.gallery)

    def memory_bytes(self) -> int:
        """Approximate extra memory of the index (codes + lists or graph), not the gallery."""
        faiss = _faiss()
        try:
            return int(faiss.serialize_index(self._index).nbytes)
        except (RuntimeError, AttributeError):  # pragma: no cover - very old faiss
            return 0

    # -- matching -------------------------------------------------------------------

    def nearest(self, queries: NDArray[Any]) -> list[Candidate]:
        """Nearest identity and margin per query, re-ranked with exact distances."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        if not np.isfinite(q).all():
            raise GalleryError("query encodings must be finite")
        if len(self._ids) == 0 or len(q) == 0:
            return self.gallery.nearest(q)
        k = min(self.candidates, len(self._enc))
        approx_d2, entries = self._index.search(q, k)
        out: list[Candidate] = []
        for row in range(len(q)):
            found = entries[row][entries[row] >= 0]
            if not len(found):
                # The index proposed nothing (e.g. all visited lists empty): be exact.
                out.extend(self.gallery.nearest(q[row]))
                continue
            out.append(self._rerank(q[row], found, float(approx_d2[row][len(found) - 1])))
        return out

    def _rerank(self, q: NDArray[np.float32], found: NDArray[np.int64],
                furthest_d2: float) -> Candidate:
        owners = np.unique(self._owner[found])
        lengths = self._ends[owners] - self._starts[owners]
        seg = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
        idx = np.repeat(self._starts[owners] - seg, lengths) + np.arange(int(lengths.sum()))
        d2 = float(q @ q) - 2.0 * (self._enc[idx] @ q) + self._sq_norms[idx]
        per_id = np.sqrt(np.maximum(np.minimum.reduceat(d2, seg), 0.0))
        order = np.argsort(per_id)
        best = float(per_id[order[0]])
        if len(owners) > 1:
            second = float(per_id[order[1]])
        elif len(self._ids) > 1:
            second = max(best, math.sqrt(max(furthest_d2, 0.0)))
        else:
            second = best + MAX_MARGIN
        return Candidate(person_id=str(self._ids[owners[order[0]]]), watchlist=self.watchlist,
                         distance=best, margin=min(second - best, MAX_MARGIN))

    def decide(self, candidates: list[Candidate]) -> list[Match | None]:
        return self.gallery.decide(candidates)

    def match(self, encoding: NDArray[Any]) -> Match | None:
        """The accepted identity for one encoding, or None for an unknown face."""
        return self.decide(self.nearest(encoding))[0]
