"""The one decision path: which nearest identity is announced, and how a track's looks fuse.

Plain face_recognition takes the closest encoding under 0.6. That announces
strangers as whoever they happen to resemble. OneEye takes, per identity, the
distance to its closest enrolled encoding; the best identity is accepted only if
that distance is under ``max_distance`` *and* the runner-up identity is at least
``min_margin`` further away. The margin catches the "looks a bit like two
people" stranger that a threshold alone lets through.

Everything that decides — the edge pipeline, ``oneeye identify``/``analyze`` and the
cloud indexer — goes through :func:`effective_rule` (a watchlist's gallery rule with
the device's per-watchlist override applied) and, for a track of several looks,
:func:`fuse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import GalleryError

#: Margins are capped here; a one-identity gallery (no runner-up) reports this value.
MAX_MARGIN = 1.0
ENCODING_DIM = 128


@dataclass(frozen=True)
class DecisionRule:
    """Accept the nearest identity when ``distance <= max_distance`` and
    ``margin >= min_margin`` (margin = runner-up identity's distance − best).
    Distances are Euclidean between 128-d dlib encodings (unitless)."""

    max_distance: float = 0.525
    min_margin: float = 0.085

    def __post_init__(self) -> None:
        if not 0.0 < self.max_distance <= 1.5:
            raise GalleryError(f"max_distance must be in (0, 1.5], got {self.max_distance}")
        if not 0.0 <= self.min_margin <= MAX_MARGIN:
            raise GalleryError(f"min_margin must be in [0, {MAX_MARGIN}], got {self.min_margin}")

    def accepts(self, distance: float, margin: float) -> bool:
        return distance <= self.max_distance and margin >= self.min_margin


#: The per-watchlist defaults, chosen on lfw_dev by the rule documented in bench/accuracy.py
#: (highest TAR with false matches ≤ 0.5 % on the dev trials; 5-fold cross-validated over
#: identities: TAR 86 %, FMR 0.7 %). The same rule decides a track's fused encoding
#: (``bench/accuracy.py`` prints the fused trials too). Plain face_recognition's 0.6 with no
#: margin announces 43 % of the dev set's strangers. Both watchlists share it until one
#: has its own data.
DEFAULT_RULES: dict[str, DecisionRule] = {
    "customers": DecisionRule(),
    "missing": DecisionRule(),
}


class Override(Protocol):
    """A per-watchlist override (the edge settings' ``thresholds`` entries): None keeps
    the gallery's value."""

    @property
    def max_distance(self) -> float | None: ...

    @property
    def min_margin(self) -> float | None: ...


Overrides = Mapping[str, Override]


def effective_rule(rule: DecisionRule, override: Override | None) -> DecisionRule:
    """``rule`` with the fields ``override`` sets replaced: the one threshold-override merge."""
    if override is None or (override.max_distance is None and override.min_margin is None):
        return rule
    return DecisionRule(
        max_distance=rule.max_distance if override.max_distance is None
        else override.max_distance,
        min_margin=rule.min_margin if override.min_margin is None else override.min_margin)


@dataclass(frozen=True)
class Candidate:
    """The nearest identity for one query, accepted or not."""

    person_id: str | None
    watchlist: str
    distance: float
    margin: float
    #: within the negative-template distance of a "Not this person" look of this identity
    #: (:class:`~oneeye.gallery.templates.LearningRule`): never accepted
    vetoed: bool = False


@dataclass(frozen=True)
class Match:
    """An accepted identification."""

    person_id: str
    watchlist: str
    distance: float
    margin: float


def decide(rule: DecisionRule, candidates: list[Candidate]) -> list[Match | None]:
    """Apply ``rule`` to each candidate: a :class:`Match` or None (unknown face)."""
    return [Match(c.person_id, c.watchlist, c.distance, c.margin)
            if c.person_id is not None and not c.vetoed and rule.accepts(c.distance, c.margin)
            else None
            for c in candidates]


def fuse(encodings: NDArray[Any]) -> NDArray[np.float32]:
    """One encoding for a track's looks, shape ``(k, 128)`` → ``(128,)``: their mean.

    Why the plain mean: a look's encoding is the person's "true" encoding plus
    per-frame noise (pose, blur, light). Averaging k looks shrinks the noise by
    ~√k, which moves a genuine track towards its enrolled encodings more than it
    moves a stranger towards anyone (a stranger's true distance is large, so noise
    adds little to it). dlib encodings are not unit length and the gallery is
    compared in raw Euclidean distance, so the looks are averaged unnormalised:
    the fused encoding lives in the same space as the gallery and one
    :class:`DecisionRule` decides both single looks and tracks.
    """
    enc = np.asarray(encodings, dtype=np.float32).reshape(-1, ENCODING_DIM)
    if not len(enc):
        raise ValueError("fuse() needs at least one encoding")
    out: NDArray[np.float32] = enc.mean(axis=0, dtype=np.float64).astype(np.float32)
    return out
