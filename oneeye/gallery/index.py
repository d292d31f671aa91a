# Long module: the gallery, its learnt templates and the search over them are one invariant.
"""A watchlist's encodings and the exact nearest-identity search over them.

Over 400 lines because the gallery, its learnt templates (sources, negatives, the
duplicate groups of the margin) and the search over them are one invariant: every
edit returns a new consistent version, and the one decision path reads all of it.

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
from oneeye.gallery.templates import (
    DEFAULT_LEARNING,
    DuplicatePair,
    LearningRule,
    Template,
    TemplateSource,
    duplicate_pairs,
    identity_groups,
    sources_array,
    template_id,
)
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


def _str_array(values: Any, n: int | None = None) -> NDArray[np.str_]:
    arr = np.asarray(values if values is not None else [], dtype=np.str_).reshape(-1)
    if n is not None and values is None:
        arr = np.full(n, "", dtype=np.str_)
    return arr


def _enc_array(values: Any) -> NDArray[np.float32]:
    enc = np.ascontiguousarray(values if values is not None else np.empty((0, ENCODING_DIM)),
                               dtype=np.float32).reshape(-1, ENCODING_DIM)
    if not np.isfinite(enc).all():
        raise GalleryError("gallery contains non-finite encodings")
    return enc


@dataclass(frozen=True)
class Gallery:
    """One watchlist's encodings at one version. Immutable: edits return a new gallery.

    ``person_ids``/``encodings`` are the positive templates (shape ``(n,)``/``(n, 128)``),
    ``sources`` their :class:`~oneeye.gallery.templates.TemplateSource` JSON (``""``: an
    enrolment photo from before templates had sources); ``neg_*`` the negative templates
    ("Not this person"); ``learning`` the :class:`LearningRule` (negative veto distance,
    duplicate groups, review thresholds, cap, opt-in)."""

    watchlist: str
    version: int
    rule: DecisionRule
    person_ids: NDArray[np.str_]
    encodings: NDArray[np.float32]
    created_at: str = field(default_factory=utc_now)
    sources: NDArray[np.str_] | None = None
    neg_person_ids: NDArray[np.str_] | None = None
    neg_encodings: NDArray[np.float32] | None = None
    neg_sources: NDArray[np.str_] | None = None
    learning: LearningRule = DEFAULT_LEARNING
    _index: _Index = field(init=False, repr=False, compare=False)
    _groups: list[NDArray[np.intp]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_watchlist(self.watchlist)
        if self.version < 0:
            raise GalleryError("version must be >= 0")
        enc = _enc_array(self.encodings)
        ids = np.asarray(self.person_ids, dtype=np.str_).reshape(-1)
        if len(ids) != len(enc):
            raise GalleryError(f"{len(ids)} person ids for {len(enc)} encodings")
        src = _str_array(self.sources, len(enc))
        if len(src) != len(enc):
            raise GalleryError(f"{len(src)} template sources for {len(enc)} encodings")
        nenc = _enc_array(self.neg_encodings)
        nids = np.asarray(self.neg_person_ids if self.neg_person_ids is not None else [],
                          dtype=np.str_).reshape(-1)
        nsrc = _str_array(self.neg_sources, len(nenc))
        if not len(nids) == len(nenc) == len(nsrc):
            raise GalleryError(f"{len(nids)} negative ids, {len(nenc)} negative encodings and "
                               f"{len(nsrc)} sources")
        # Group entries by identity so per-identity minima are one reduceat.
        order = np.argsort(ids, kind="stable")
        for name, value in (("encodings", enc[order]), ("person_ids", ids[order]),
                            ("sources", src[order]), ("neg_person_ids", nids),
                            ("neg_encodings", nenc), ("neg_sources", nsrc)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_index", _Index.build(ids[order], enc[order]))
        object.__setattr__(self, "_groups", [])   # computed at the first search

    # -- construction ---------------------------------------------------------------

    @classmethod
    def empty(
        cls, watchlist: str, *, rule: DecisionRule | None = None, version: int = 0,
        learning: LearningRule = DEFAULT_LEARNING,
    ) -> Gallery:
        check_watchlist(watchlist)
        return cls(
            watchlist=watchlist,
            version=version,
            rule=rule or decision.DEFAULT_RULES[watchlist],
            person_ids=np.empty(0, dtype=np.str_),
            encodings=np.empty((0, ENCODING_DIM), dtype=np.float32),
            learning=learning,
        )

    @classmethod
    def from_entries(
        cls,
        watchlist: str,
        entries: Iterable[tuple[str, NDArray[Any]]],
        *,
        rule: DecisionRule | None = None,
        version: int = 1,
        sources: Iterable[TemplateSource] | None = None,
        learning: LearningRule = DEFAULT_LEARNING,
    ) -> Gallery:
        """From (person_id, encoding) pairs, each a photo template (``sources`` aligned
        with ``entries`` when given)."""
        check_watchlist(watchlist)
        pairs = [(check_person_id(p), np.asarray(e, dtype=np.float32)) for p, e in entries]
        if not pairs:
            return cls.empty(watchlist, rule=rule, version=version, learning=learning)
        return cls(
            watchlist=watchlist,
            version=version,
            rule=rule or decision.DEFAULT_RULES[watchlist],
            person_ids=np.array([p for p, _ in pairs], dtype=np.str_),
            encodings=np.stack([e.reshape(ENCODING_DIM) for _, e in pairs]),
            sources=sources_array(sources) if sources is not None else None,
            learning=learning,
        )

    def _next(self, **changes: Any) -> Gallery:
        return replace(self, version=self.version + 1, created_at=utc_now(), **changes)

    def with_person(self, person_id: str, encodings: Iterable[NDArray[Any]],
                    sources: Iterable[TemplateSource] | None = None) -> Gallery:
        """A new version with ``person_id``'s templates replaced by ``encodings`` (photo
        templates unless ``sources`` says otherwise); their negatives are kept."""
        check_person_id(person_id)
        new = [np.asarray(e, dtype=np.float32).reshape(ENCODING_DIM) for e in encodings]
        src = (sources_array(sources) if sources is not None
               else np.full(len(new), "", dtype=np.str_))
        keep = self.person_ids != person_id
        return self._next(
            person_ids=np.concatenate([self.person_ids[keep],
                                       np.array([person_id] * len(new), np.str_)]),
            encodings=np.concatenate([self.encodings[keep],
                                      np.array(new, np.float32).reshape(-1, ENCODING_DIM)]),
            sources=np.concatenate([self._sources()[keep], src]))

    def with_learning(self, learning: LearningRule) -> Gallery:
        """A new version deciding by ``learning`` (same templates)."""
        return self._next(learning=learning)

    def with_template(self, person_id: str, encoding: NDArray[Any],
                      source: TemplateSource) -> Gallery:
        """A new version with one more template of ``person_id`` (a negative one when
        ``source.kind`` is ``negative``). Beyond ``learning.max_sighting_templates``
        sighting (or negative) templates, the oldest of that kind is dropped; photo
        templates are never dropped. The same encoding twice is one template: the gallery
        is returned unchanged (same version)."""
        check_person_id(person_id)
        enc = np.asarray(encoding, dtype=np.float32).reshape(ENCODING_DIM)
        if not np.isfinite(enc).all():
            raise GalleryError("template encoding is not finite")
        tid = template_id(enc)
        if any(t.template_id == tid for t in self.templates(person_id)):
            return self
        negative = source.kind == "negative"
        ids = self._neg_ids() if negative else self.person_ids
        encs = self._neg_enc() if negative else self.encodings
        srcs = self._neg_src() if negative else self._sources()
        ids = np.concatenate([ids, np.array([person_id], np.str_)])
        encs = np.concatenate([encs, enc[None, :]])
        srcs = np.concatenate([srcs, np.array([source.to_json()], np.str_)])
        drop = self._over_cap(ids, srcs, person_id, source.kind)
        keep = np.ones(len(ids), bool)
        keep[drop] = False
        if negative:
            return self._next(neg_person_ids=ids[keep], neg_encodings=encs[keep],
                              neg_sources=srcs[keep])
        return self._next(person_ids=ids[keep], encodings=encs[keep], sources=srcs[keep])

    def _over_cap(self, ids: NDArray[np.str_], srcs: NDArray[np.str_], person_id: str,
                  kind: str) -> list[int]:
        """Rows of ``person_id``'s ``kind`` templates beyond the cap, oldest first."""
        if kind == "photo":
            return []
        rows = [i for i in np.flatnonzero(ids == person_id).tolist()
                if TemplateSource.from_json(str(srcs[i])).kind == kind]
        excess = len(rows) - self.learning.max_sighting_templates
        if excess <= 0:
            return []
        rows.sort(key=lambda i: TemplateSource.from_json(str(srcs[i])).at or "")
        return rows[:excess]

    def without_template(self, person_id: str, template: str) -> Gallery:
        """A new version without ``person_id``'s template ``template`` (an id from
        :meth:`templates`); the same gallery (same version) if it has no such template."""
        pos = np.array([p == person_id and template_id(e) == template
                        for p, e in zip(self.person_ids, self.encodings, strict=True)], bool)
        neg = np.array([p == person_id and template_id(e) == template
                        for p, e in zip(self._neg_ids(), self._neg_enc(), strict=True)], bool)
        if not pos.any() and not neg.any():
            return self
        return self._next(person_ids=self.person_ids[~pos], encodings=self.encodings[~pos],
                          sources=self._sources()[~pos], neg_person_ids=self._neg_ids()[~neg],
                          neg_encodings=self._neg_enc()[~neg],
                          neg_sources=self._neg_src()[~neg])

    def without_person(self, person_id: str) -> Gallery:
        """A new version without ``person_id`` and their negatives (unchanged content if
        absent, still bumped)."""
        keep = self.person_ids != person_id
        nkeep = self._neg_ids() != person_id
        return self._next(person_ids=self.person_ids[keep], encodings=self.encodings[keep],
                          sources=self._sources()[keep],
                          neg_person_ids=self._neg_ids()[nkeep],
                          neg_encodings=self._neg_enc()[nkeep],
                          neg_sources=self._neg_src()[nkeep])

    # The optional arrays are always set by __post_init__; these give them typed.
    def _sources(self) -> NDArray[np.str_]:
        assert self.sources is not None
        return self.sources

    def _neg_ids(self) -> NDArray[np.str_]:
        assert self.neg_person_ids is not None
        return self.neg_person_ids

    def _neg_enc(self) -> NDArray[np.float32]:
        assert self.neg_encodings is not None
        return self.neg_encodings

    def _neg_src(self) -> NDArray[np.str_]:
        assert self.neg_sources is not None
        return self.neg_sources

    def template_arrays(self) -> dict[str, NDArray[Any]]:
        """The template metadata and negatives as the file stores them (format 2)."""
        return {"sources": self._sources(), "neg_person_ids": self._neg_ids(),
                "neg_encodings": self._neg_enc(), "neg_sources": self._neg_src()}

    # -- inspection -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.encodings)

    def identities(self) -> dict[str, int]:
        """person_id → number of enrolled encodings."""
        return dict(zip(self._index.ids.tolist(), np.diff(
            np.append(self._index.starts, len(self.encodings))).tolist(), strict=True))

    def __contains__(self, person_id: object) -> bool:
        return bool(np.any(self._index.ids == person_id))

    def templates(self, person_id: str) -> list[Template]:
        """``person_id``'s templates, positive ones first (in stored order), then the
        negatives; each with its id and source."""
        out: list[Template] = []
        for ids, encs, srcs in ((self.person_ids, self.encodings, self._sources()),
                                (self._neg_ids(), self._neg_enc(), self._neg_src())):
            for row in np.flatnonzero(ids == person_id).tolist():
                s = TemplateSource.from_json(str(srcs[row]))
                out.append(Template(template_id(encs[row]), person_id, s.kind, s.source,
                                    s.by, s.at))
        return out

    def negatives(self) -> int:
        """How many negative templates the gallery holds."""
        return len(self._neg_ids())

    def distance_to(self, person_id: str, encoding: NDArray[Any]) -> float:
        """Distance from ``encoding`` to ``person_id``'s nearest positive template (inf
        when they have none)."""
        rows = self.person_ids == person_id
        if not rows.any():
            return float("inf")
        q = np.asarray(encoding, dtype=np.float32).reshape(1, ENCODING_DIM)
        return float(np.sqrt(self._index.sq_distances(q)[0, rows].min()))

    def duplicates(self) -> list[DuplicatePair]:
        """Pairs of different ids with templates within ``learning.duplicate_distance``."""
        return duplicate_pairs(self.person_ids, self.encodings,
                               self.learning.duplicate_distance)

    def groups(self) -> NDArray[np.intp]:
        """The identity group of each identity (sorted id order) for the margin rule:
        near-duplicate ids (:meth:`duplicates`) share one. Computed once per version."""
        if not self._groups:
            self._groups.append(identity_groups(self._index.ids, self.duplicates()))
        return self._groups[0]

    # -- matching -------------------------------------------------------------------

    def nearest(self, queries: NDArray[Any]) -> list[Candidate]:
        """Nearest identity and margin for each query row (no decision applied).

        The margin is to the nearest identity of another identity group (so a face
        enrolled under two ids does not cancel itself out); ``vetoed`` is set when the
        query is within ``learning.negative_distance`` of a negative template of the
        nearest identity and nearer to it than to that identity's own templates."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, ENCODING_DIM)
        groups = self.groups() if len(self._index.ids) > 1 else None
        best_i, best_d, margin = self._index.nearest(q, groups)
        ids = self._index.ids
        vetoed = np.zeros(len(q), bool)
        if self.negatives() and len(ids):
            best_ids = np.where(best_i >= 0, ids[np.maximum(best_i, 0)], "")
            nd = np.sqrt(np.maximum(_Index.build(self._neg_ids(), self._neg_enc())
                                    .sq_distances(q), 0.0))
            own = self._neg_ids()[None, :] == best_ids[:, None]
            # Vetoed: within the distance of a negative *and* nearer to it than to any of
            # the person's templates, so a negative never hides their own photos' looks.
            near = (nd <= self.learning.negative_distance) & (nd < best_d[:, None])
            vetoed = np.any(own & near, axis=1)
        return [
            Candidate(
                person_id=str(ids[i]) if i >= 0 else None,
                watchlist=self.watchlist,
                distance=float(d),
                margin=float(m),
                vetoed=bool(v),
            )
            for i, d, m, v in zip(best_i.tolist(), best_d.tolist(), margin.tolist(),
                                  vetoed.tolist(), strict=True)
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
        self, q: NDArray[np.float32], groups: NDArray[np.intp] | None = None
    ) -> tuple[NDArray[np.intp], NDArray[np.float32], NDArray[np.float32]]:
        """Best identity, its distance and the margin per query. With ``groups`` (a label
        per identity), the runner-up is the nearest identity of *another* group."""
        k = len(q)
        if len(self.ids) == 0:
            return (np.full(k, -1, np.intp), np.full(k, np.inf, np.float32),
                    np.full(k, decision.MAX_MARGIN, np.float32))
        per_id = np.minimum.reduceat(self.sq_distances(q), self.starts, axis=1)  # (k, P)
        best = np.argmin(per_id, axis=1)
        best_d = np.sqrt(per_id[np.arange(k), best])
        if groups is not None and len(np.unique(groups)) < len(groups):
            others = np.where(groups[None, :] == groups[best][:, None], np.inf, per_id)
            second = np.sqrt(others.min(axis=1))
            margin = np.minimum(second - best_d, decision.MAX_MARGIN)
        elif per_id.shape[1] > 1:
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
