"""Galleries: who we look for, how we decide, and how a gallery travels.

* :mod:`~oneeye.gallery.rule` — the decision rule, per-watchlist overrides, track fusion.
* :mod:`~oneeye.gallery.index` — :class:`Gallery` (one watchlist's encodings) and
  :class:`Matcher` (several watchlists, exact search).
* :mod:`~oneeye.gallery.files` — ``.npz`` + sha256 manifest, atomic save, verified load.
* :mod:`~oneeye.gallery.enrol` — photos → gallery with quality checks.

The edge's swappable holder lives in :mod:`oneeye.edge.gallery.holder`.
"""

from oneeye.gallery.enrol import (
    LOW_RESOLUTION,
    EnrolledPhoto,
    EnrolmentPolicy,
    EnrolmentReport,
    Rejection,
    encode_enrolment_photo,
    enrol,
    enrol_photo,
    iter_photo_dir,
    policy_for,
)
from oneeye.gallery.files import (
    MANIFEST_SCHEMA,
    from_bytes,
    load,
    manifest_for,
    manifest_path,
    read_manifest,
    save,
    to_bytes,
)
from oneeye.gallery.index import Gallery, Matcher, check_person_id, check_watchlist
from oneeye.gallery.rule import (
    DEFAULT_RULES,
    ENCODING_DIM,
    MAX_MARGIN,
    Candidate,
    DecisionRule,
    Match,
    Override,
    Overrides,
    decide,
    effective_rule,
    fuse,
)

__all__ = [
    "DEFAULT_RULES", "ENCODING_DIM", "LOW_RESOLUTION", "MANIFEST_SCHEMA", "MAX_MARGIN",
    "Candidate", "DecisionRule", "EnrolledPhoto", "EnrolmentPolicy", "EnrolmentReport",
    "Gallery", "Match", "Matcher",
    "Override", "Overrides", "Rejection", "check_person_id", "check_watchlist", "decide",
    "effective_rule", "encode_enrolment_photo", "enrol", "enrol_photo", "from_bytes", "fuse",
    "iter_photo_dir", "load", "manifest_for", "manifest_path", "policy_for", "read_manifest",
    "save",
    "to_bytes",
]
