"""Templates: where each gallery encoding came from, negatives, and the learning rule.

A *template* is one encoding of a person (128 float32) with its source:

* ``photo``    — an enrolment photo (``source`` = the photo's path or S3 key);
* ``sighting`` — a camera's fused track encoding the desk confirmed (``source`` = the
  match event id, ``by``/``at`` = who confirmed it and when);
* ``negative`` — a look the desk marked "Not this person": looks within
  :attr:`LearningRule.negative_distance` of it are not announced as that person.

A template's id is the first 16 hex digits of the sha256 of its float32 bytes: stable
across versions and files (nothing to store), and the same encoding is one template.

:class:`LearningRule` holds the numbers learning decides by (chosen on lfw_dev by
``bench/learning.py``; the procedure is in that module's docstring). It travels in the
gallery file (``meta.learning``), so the indexer's setting reaches every edge with the
signed gallery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from oneeye.errors import GalleryError

TemplateKind = Literal["photo", "sighting", "negative"]
TEMPLATE_KINDS: tuple[TemplateKind, ...] = ("photo", "sighting", "negative")


@dataclass(frozen=True)
class LearningRule:
    """How a gallery learns from verdicts, and how near-duplicate identities are treated.

    Distances are Euclidean between 128-d dlib encodings (unitless), like
    :class:`~oneeye.gallery.rule.DecisionRule`'s. Values from ``bench/learning.py`` on
    lfw_dev (see its docstring for the procedure):

    * ``negative_distance`` 0.40: a look this close to a "Not this person" template, and
      nearer to it than to any of the person's own templates, is not announced as that
      person. In the bench's sweep (0.2–0.6) no genuine visit is lost and the replayed false
      match never repeats; 0.40 is the smaller side of that plateau (lfw_dev's closest pair
      of different people is 0.408), so a negative reaches only looks of the same face.
    * ``far_template_distance`` 0.45: a confirmed sighting further than this from all of
      the person's templates is held for review, not learnt. Accepted matches are within
      0.525; lfw_dev's one false match sits at 0.525, so 0.45 holds it and 12 of 74
      genuine first visits (16 %) — a second look costs a click, a wrong template costs
      every later visit. lfw_dev has too few false matches to choose this finer; the bench
      prints the sweep.
    * ``photo_review_distance`` 0.60: a new enrolment photo further than this from every
      template of the same person needs a second look (a different person's photo under
      an existing id); lfw_dev's same-person photo pairs are 99 % under it.
    * ``duplicate_distance`` 0.42: two ids with templates this close are reported as the
      same face, and are one identity group for the margin (their runner-up is the
      nearest identity *outside* the group). Of lfw_dev's 159,218 pairs of different
      people's photos the closest is 0.408; 19 % of same-person pairs are under 0.38.
    * ``max_sighting_templates`` 10 per person: beyond it the oldest sighting template
      is dropped (photo templates are never dropped by the cap).
    * ``enabled``: whether this watchlist learns from verdicts (opt-in, the indexer's
      ``LEARN_WATCHLISTS``); edges send a track's encoding only for a watchlist that learns.
    """

    enabled: bool = False
    negative_distance: float = 0.40
    far_template_distance: float = 0.45
    photo_review_distance: float = 0.60
    duplicate_distance: float = 0.38
    max_sighting_templates: int = 10

    def __post_init__(self) -> None:
        for name in ("negative_distance", "far_template_distance", "photo_review_distance",
                     "duplicate_distance"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.5:
                raise GalleryError(f"{name} must be in [0, 1.5], got {value}")
        if not 1 <= self.max_sighting_templates <= 1000:
            raise GalleryError("max_sighting_templates must be in [1, 1000], "
                               f"got {self.max_sighting_templates}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LearningRule:
        """From a file's ``meta.learning`` (unknown keys ignored, missing ones default)."""
        if not isinstance(data, dict):
            return cls()
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        try:
            return cls(**known)
        except TypeError as exc:
            raise GalleryError(f"invalid learning rule: {exc}") from exc


DEFAULT_LEARNING = LearningRule()


@dataclass(frozen=True)
class TemplateSource:
    """Where a template came from (see the module docstring): ``source`` is a photo
    path/key or an event id; ``by`` and ``at`` (ISO UTC) say who confirmed it and when."""

    kind: TemplateKind = "photo"
    source: str = ""
    by: str | None = None
    at: str | None = None

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TemplateSource:
        """One stored source; an empty string (a file from before templates) is a photo."""
        if not text:
            return cls()
        try:
            data = json.loads(text)
            kind = data.get("kind", "photo")
            if kind not in TEMPLATE_KINDS:
                raise GalleryError(f"unknown template kind {kind!r}")
            return cls(kind=kind, source=str(data.get("source", "")), by=data.get("by"),
                       at=data.get("at"))
        except (json.JSONDecodeError, AttributeError) as exc:
            raise GalleryError(f"invalid template source {text[:80]!r}") from exc


@dataclass(frozen=True)
class Template:
    """One template of one person, as listed to the desk (no encoding)."""

    template_id: str
    person_id: str
    kind: TemplateKind
    source: str
    by: str | None
    at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def template_id(encoding: NDArray[Any]) -> str:
    """The stable id of an encoding (sha256 of its 128 float32, first 16 hex digits)."""
    data = np.ascontiguousarray(encoding, dtype=np.float32).reshape(-1).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def sources_array(sources: Iterable[TemplateSource]) -> NDArray[np.str_]:
    return np.array([s.to_json() for s in sources], dtype=np.str_).reshape(-1)


@dataclass(frozen=True)
class DuplicatePair:
    """Two ids whose closest templates are within the duplicate distance: one face?"""

    person_a: str
    person_b: str
    distance: float

    def message(self) -> str:
        return (f"{self.person_b} looks like {self.person_a} ({self.distance:.2f}) — "
                "the same person under two ids?")


def duplicate_pairs(ids: NDArray[np.str_], enc: NDArray[np.float32], limit: float,
                    *, chunk: int = 1024) -> list[DuplicatePair]:
    """Pairs of different ids with two templates within ``limit`` (closest distance per
    pair), sorted by id. Rows are compared ``chunk`` at a time, so memory stays
    ``chunk × len(enc)`` floats whatever the gallery's size."""
    best: dict[tuple[str, str], float] = {}
    if len(enc) < 2 or limit <= 0:
        return []
    norms = np.einsum("ij,ij->i", enc, enc)
    for lo in range(0, len(enc), chunk):
        q = enc[lo:lo + chunk]
        d2 = norms[lo:lo + chunk, None] - 2.0 * (q @ enc.T) + norms[None, :]
        rows, cols = np.nonzero(d2 <= limit * limit)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = str(ids[lo + r]), str(ids[c])
            if a < b:
                d = float(np.sqrt(max(float(d2[r, c]), 0.0)))
                best[(a, b)] = min(d, best.get((a, b), d))
    return [DuplicatePair(a, b, round(d, 4)) for (a, b), d in sorted(best.items())]


def identity_groups(unique_ids: NDArray[np.str_], pairs: list[DuplicatePair]
                    ) -> NDArray[np.intp]:
    """A group label per identity (``unique_ids`` order): ids joined by ``pairs`` (and
    chains of them) share one label; every other id is its own group."""
    index = {str(p): i for i, p in enumerate(unique_ids.tolist())}
    parent = list(range(len(unique_ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in pairs:
        a, b = root(index[pair.person_a]), root(index[pair.person_b])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(len(unique_ids))], dtype=np.intp)
