"""A watchlist's encodings and the exact nearest-identity search over them.

A :class:`Gallery` is one watchlist (``customers`` or ``missing``) at one version:
float32 encodings grouped by ``person_id`` plus the :class:`DecisionRule` for that
watchlist. It holds no names or photos — only ids and encodings. A :class:`Matcher`
searches several watchlists at once, each decided by its (possibly overridden) rule.

Distances are computed as ``sqrt(|q|² − 2 q·e + |e|²)`` in float32 with one
matrix product per batch (dlib encodings are not unit length, so a plain dot
product would be wrong); this reproduces ``face_recognition.face_distance``
to ~1e-6 at a fraction of its time and memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import GalleryError
from oneeye.gallery import rule as decision
from oneeye.gallery.rule import ENCODING_DIM, Candidate, DecisionRule, Match, Overrides
from oneeye.types import WATCHLISTS, id_refusal, utc_now


def check_person_id(person_id: str) -> str:
    """Person ids follow the one id grammar (:data:`oneeye.types.ID_PATTERN`); a refusal
    (:class:`GalleryError`) names the id and the rule it breaks."""
    refusal = id_refusal("person id", person_id)
    if refusal is not None:
        raise GalleryError(refusal)
    return person_id


def check_watchlist(name: str) -> str:
    if name not in WATCHLISTS:
        raise GalleryError(f"unknown watchlist {name!r}: expected one of {', '.join(WATCHLISTS)}")
    return name


@dataclass(frozen=True)
class Gallery:
    """One watchlist's encodings at one version. Immutable: edits return a new gallery."""

    watchlist: str
    version: int
    rule: DecisionRule
    person_ids: NDArray[np.str_]
    encodings: NDArray[np.float32]
    created_at: str = field(default_factory=utc_now)
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
            rule=rule or decision.DEFAULT_RULES[watchlist],
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
            rule=rule or decision.DEFAULT_RULES[watchlist],
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
                       created_at=utc_now())

    def without_person(self, person_id: str) -> Gallery:
        """A new version without ``person_id`` (unchanged content if absent, still bumped)."""
        keep = self.person_ids != person_id
        return replace(self, version=self.version + 1, person_ids=self.person_ids[keep],
                       encodings=self.encodings[keep], created_at=utc_now())

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
        """The gallery's own rule applied to ``candidates`` (no device override)."""
        return decision.decide(self.rule, candidates)

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
                    np.full(k, decision.MAX_MARGIN, np.float32))
        per_id = np.minimum.reduceat(self.sq_distances(q), self.starts, axis=1)  # (k, P)
        best = np.argmin(per_id, axis=1)
        best_d = np.sqrt(per_id[np.arange(k), best])
        if per_id.shape[1] > 1:
            second = np.sqrt(np.partition(per_id, 1, axis=1)[:, 1])
            margin = np.minimum(second - best_d, decision.MAX_MARGIN)
        else:
            margin = np.full(k, decision.MAX_MARGIN, np.float32)
        return best.astype(np.intp), best_d.astype(np.float32), margin.astype(np.float32)


# --------------------------------------------------------------------------- several watchlists

#: The order in which watchlists that all accept one face are announced: first wins. The
#: missing-person alert is a safety alert, so it is never hidden behind a customer arrival.
WATCHLIST_PRECEDENCE: tuple[str, ...] = tuple(sorted(WATCHLISTS, key=lambda w: w != "missing"))


def _outranks(m: Match, other: Match) -> bool:
    """Whether accepted match ``m`` is announced instead of ``other`` (another watchlist's)."""
    rank = {w: i for i, w in enumerate(WATCHLIST_PRECEDENCE)}
    mine, theirs = rank.get(m.watchlist, len(rank)), rank.get(other.watchlist, len(rank))
    return mine < theirs or (mine == theirs and m.distance < other.distance)



class Matcher:
    """Matches against several watchlists at once, each decided separately by its own rule.

    Watchlists are decided separately and then ranked by :data:`WATCHLIST_PRECEDENCE`, not
    by distance: a face accepted on ``missing`` is always the ``missing`` match, whatever
    else it also matches (a missing person who is also a customer raises the amber alert;
    no customer arrival goes out for that face — README "Both watchlists"). Within one
    watchlist the nearest identity is the candidate, as before.
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

    def rules(self, overrides: Overrides | None = None) -> dict[str, DecisionRule]:
        """watchlist → the rule that decides it: the gallery's, with ``overrides`` applied."""
        return {w: decision.effective_rule(g.rule, (overrides or {}).get(w))
                for w, g in self._galleries.items()}

    def identify(self, queries: NDArray[Any], overrides: Overrides | None = None
                 ) -> list[tuple[Match | None, Candidate | None]]:
        """Per query row of ``queries`` (shape ``(k, 128)``): the accepted match (or None)
        and the overall nearest candidate. ``overrides`` (watchlist → override, the edge's
        ``thresholds``) replace fields of a gallery's rule.

        Each watchlist accepts or refuses on its own rule; among the accepted ones the
        watchlist first in :data:`WATCHLIST_PRECEDENCE` is the match (``missing`` before
        ``customers``), so a closer customer photo never hides a missing person."""
        q = np.asarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        results: list[tuple[Match | None, Candidate | None]] = [(None, None)] * len(q)
        rules = self.rules(overrides)
        for w, g in self._galleries.items():
            if not len(g):
                continue
            cands = g.nearest(q)
            for i, (c, m) in enumerate(zip(cands, decision.decide(rules[w], cands), strict=True)):
                best_m, best_c = results[i]
                if best_c is None or c.distance < best_c.distance:
                    best_c = c
                if m is not None and (best_m is None or _outranks(m, best_m)):
                    best_m = m
                results[i] = (best_m, best_c)
        return results

    def identify_track(self, encodings: NDArray[Any], overrides: Overrides | None = None
                       ) -> tuple[Match | None, Candidate | None]:
        """A track's looks (shape ``(k, 128)``) fused (:func:`~oneeye.gallery.rule.fuse`)
        and decided as one query: the one decision for a track."""
        return self.identify(decision.fuse(encodings)[None, :], overrides)[0]

    def match(self, encoding: NDArray[Any]) -> Match | None:
        return self.identify(encoding)[0][0]
